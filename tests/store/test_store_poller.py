"""ChangePoller: calls on_change when the marker moved, survives failures, stops promptly."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from store.store_support import rule_set

from verdict_server.store import ChangePoller, DirectoryStore, SqliteStore, Store


class Recorder:
    """An on_change that counts its calls and fails the first `fail_times` of them."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls = 0
        self.fail_times = fail_times
        self._changed = threading.Condition()

    def __call__(self) -> None:
        with self._changed:
            self.calls += 1
            self._changed.notify_all()
            if self.calls <= self.fail_times:
                raise RuntimeError(f"reload failed #{self.calls}")

    def wait_for_calls(self, count: int) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.calls >= count, timeout=30)


def test_the_first_poll_reports_then_only_real_changes(store: Store) -> None:
    recorder = Recorder()
    poller = ChangePoller(store, recorder)
    assert poller.poll_once() is True  # nothing is known about what the caller loaded before
    assert poller.poll_once() is False
    store.put("RuleSet", "a", rule_set("a"))
    assert poller.poll_once() is True
    assert poller.poll_once() is False
    assert recorder.calls == 2


def test_a_write_by_another_store_on_the_same_file_is_seen(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "v.db") as watched, SqliteStore(tmp_path / "v.db") as other:
        recorder = Recorder()
        poller = ChangePoller(watched, recorder)
        poller.poll_once()
        other.put("RuleSet", "a", rule_set("a"))
        assert poller.poll_once() is True


def test_the_directory_store_is_rescanned_by_the_poll(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    store = DirectoryStore(folder)
    seen: list[list[str]] = []
    poller = ChangePoller(store, lambda: seen.append([r.name for r in store.heads()]))
    poller.poll_once()
    (folder / "a.yaml").write_text(rule_set("a"))
    assert poller.poll_once() is True
    assert seen == [[], ["a"]]


def test_a_failing_on_change_is_logged_and_retried(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(fail_times=2)
    poller = ChangePoller(store, recorder)
    with caplog.at_level(logging.ERROR, logger="verdict_server.store.poller"):
        assert poller.poll_once() is False
        assert poller.poll_once() is False  # the marker was not taken as seen, so the change is offered again
        assert poller.poll_once() is True
    assert recorder.calls == 3
    assert "reload failed #1" in caplog.text
    assert "reload failed #2" in caplog.text


def test_a_failing_store_is_logged_once_and_does_not_stop_polling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    store = DirectoryStore(folder)
    recorder = Recorder()
    poller = ChangePoller(store, recorder)
    poller.poll_once()
    folder.rename(tmp_path / "gone")
    with caplog.at_level(logging.ERROR, logger="verdict_server.store.poller"):
        assert poller.poll_once() is False
        assert poller.poll_once() is False
    assert caplog.text.count("cannot poll the store") == 1
    (tmp_path / "gone").rename(folder)
    (folder / "a.yaml").write_text(rule_set("a"))
    assert poller.poll_once() is True


def test_the_thread_reacts_to_writes_and_stops(store: Store) -> None:
    recorder = Recorder(fail_times=1)  # the first call fails: the thread must survive it
    poller = ChangePoller(store, recorder, interval_s=0.01)
    poller.start()
    try:
        assert poller.running
        assert recorder.wait_for_calls(2)  # the failed first call is retried by the thread
        store.put("RuleSet", "a", rule_set("a"))
        assert recorder.wait_for_calls(3)
    finally:
        poller.stop()
    assert not poller.running
    calls = recorder.calls
    store.put("RuleSet", "a", rule_set("a", "after stop"))
    assert recorder.calls == calls


def test_stop_does_not_wait_for_the_interval(store: Store) -> None:
    recorder = Recorder()
    poller = ChangePoller(store, recorder, interval_s=3600)
    poller.start()
    assert recorder.wait_for_calls(1)
    poller.stop(timeout_s=30)
    assert not poller.running  # an hour-long sleep would still be running here
    poller.stop()  # twice is fine


def test_stop_from_on_change_does_not_deadlock(store: Store) -> None:
    holder: list[ChangePoller] = []
    stopped = threading.Event()

    def stop_myself() -> None:
        holder[0].stop()
        stopped.set()

    poller = ChangePoller(store, stop_myself, interval_s=0.01)
    holder.append(poller)
    poller.start()
    assert stopped.wait(30)
    poller.stop(timeout_s=30)
    assert not poller.running


def test_the_interval_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError):
        ChangePoller(store, Recorder(), interval_s=0)
