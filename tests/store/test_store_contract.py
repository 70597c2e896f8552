"""The contract of every writable store (docs/storage.md), run against SQLite and PostgreSQL alike.

Optimistic concurrency, rollback, limits, durability, change tracking, and no version handed out twice.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from store.conftest import Backend
from store.store_support import rule_set

from verdict_server.store import (
    ANY_VERSION,
    NO_LIVE_VERSION,
    DocumentRecord,
    DocumentTooLarge,
    NotFound,
    SqliteStore,
    Store,
    StoreError,
    VersionConflict,
)
from verdict_server.store.postgres import PostgresStore


def snapshot(store: Store) -> tuple[object, list]:
    """Everything observable about the store, to show that a failed write changed nothing."""
    rows = [(r.kind, r.name) for r in store.list()]
    histories = [store.history(kind, name) for kind, name in rows]
    return store.change_marker(), histories


def test_put_records_author_and_time(store: Store) -> None:
    record = store.put("RuleSet", "a", rule_set("a"), author="alice")
    assert (record.version, record.author, record.active) == (1, "alice", True)
    assert record.created_at > 0
    assert store.get("RuleSet", "a") == record


def test_expected_version_must_match_the_head(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a", "one"))
    store.put("RuleSet", "a", rule_set("a", "two"), expected_version=1)
    before = snapshot(store)
    with pytest.raises(VersionConflict, match="expected version 1, but the head is version 2") as caught:
        store.put("RuleSet", "a", rule_set("a", "stale"), expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert snapshot(store) == before


def test_expected_version_zero_means_no_check(store: Store) -> None:
    assert ANY_VERSION == 0
    store.put("RuleSet", "a", rule_set("a"))
    assert store.put("RuleSet", "a", rule_set("a", "x"), expected_version=ANY_VERSION).version == 2


def test_expected_version_on_a_document_that_does_not_exist_conflicts(store: Store) -> None:
    with pytest.raises(VersionConflict, match="does not exist"):
        store.put("RuleSet", "a", rule_set("a"), expected_version=1)
    with pytest.raises(NotFound):
        store.get("RuleSet", "a")


def test_no_live_version_means_create_only(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a"), expected_version=NO_LIVE_VERSION)
    with pytest.raises(VersionConflict, match="expected no live document"):
        store.put("RuleSet", "a", rule_set("a", "again"), expected_version=NO_LIVE_VERSION)
    store.delete("RuleSet", "a")
    assert store.put("RuleSet", "a", rule_set("a", "restored"), expected_version=NO_LIVE_VERSION).version == 3


def test_other_negative_expected_versions_are_refused(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    with pytest.raises(VersionConflict, match="impossible version"):
        store.put("RuleSet", "a", rule_set("a"), expected_version=-5)


def test_a_deletion_counts_as_a_version_for_expected_version(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    tombstone = store.delete("RuleSet", "a", expected_version=1, author="bob")
    assert (tombstone.version, tombstone.deleted, tombstone.author, tombstone.content) == (2, True, "bob", "")
    with pytest.raises(VersionConflict):
        store.put("RuleSet", "a", rule_set("a"), expected_version=1)
    assert store.put("RuleSet", "a", rule_set("a"), expected_version=2).version == 3


def test_stale_delete_writes_nothing(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    store.put("RuleSet", "a", rule_set("a", "two"))
    before = snapshot(store)
    with pytest.raises(VersionConflict):
        store.delete("RuleSet", "a", expected_version=1)
    assert snapshot(store) == before


def test_deleting_what_is_not_live_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.delete("RuleSet", "never")
    store.put("RuleSet", "a", rule_set("a"))
    store.delete("RuleSet", "a")
    with pytest.raises(NotFound, match="was deleted"):
        store.delete("RuleSet", "a")
    assert len(store.history("RuleSet", "a")) == 2


def test_activate_copies_an_old_version_as_the_new_head(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a", "one"))
    store.put("RuleSet", "a", rule_set("a", "two"))
    rolled_back = store.activate("RuleSet", "a", 1, expected_version=2, author="carol")
    assert (rolled_back.version, rolled_back.content, rolled_back.author) == (3, rule_set("a", "one"), "carol")
    assert store.get("RuleSet", "a") == rolled_back
    assert [r.version for r in store.history("RuleSet", "a")] == [3, 2, 1]
    assert store.get("RuleSet", "a", 2).content == rule_set("a", "two")


def test_activate_restores_a_deleted_document(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    store.delete("RuleSet", "a")
    restored = store.activate("RuleSet", "a", 1)
    assert (restored.version, restored.active, restored.content) == (3, True, rule_set("a"))


def test_activating_the_active_version_writes_nothing(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    before = snapshot(store)
    assert store.activate("RuleSet", "a", 1).version == 1
    assert snapshot(store) == before


def test_activate_refuses_tombstones_unknown_versions_and_stale_heads(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a", "one"))
    store.delete("RuleSet", "a")
    store.put("RuleSet", "a", rule_set("a", "three"))
    before = snapshot(store)
    with pytest.raises(NotFound, match="records its deletion"):
        store.activate("RuleSet", "a", 2)
    with pytest.raises(NotFound, match="no version 9"):
        store.activate("RuleSet", "a", 9)
    with pytest.raises(NotFound):
        store.activate("RuleSet", "other", 1)
    with pytest.raises(VersionConflict):
        store.activate("RuleSet", "a", 1, expected_version=2)
    assert snapshot(store) == before


def test_kinds_keep_separate_version_sequences(store: Store) -> None:
    store.put("RuleSet", "same", rule_set("same"))
    store.put("RuleSet", "same", rule_set("same", "2"))
    assert store.put("RouteTable", "same", "kind: RouteTable\nname: same\n").version == 1
    assert [r.kind for r in store.list()] == ["RouteTable", "RuleSet"]


def test_a_document_above_the_size_limit_is_refused(backend: Backend) -> None:
    with backend.open(max_document_bytes=100) as small:
        with pytest.raises(DocumentTooLarge, match="at most 100 bytes") as caught:
            small.put("RuleSet", "a", "x" * 101)
        assert caught.value.size == 101
        assert small.list() == []
        small.put("RuleSet", "a", "é" * 50)  # 100 bytes in UTF-8: exactly at the limit


def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        store.put("", "a", "text")
    with pytest.raises(TypeError):
        store.put("RuleSet", "a", b"bytes")  # type: ignore[arg-type]


def test_everything_survives_reopening(backend: Backend) -> None:
    with backend.open() as first:
        first.put("RuleSet", "a", rule_set("a", "one"), author="alice")
        first.delete("RuleSet", "a")
        first.put("RuleSet", "a", rule_set("a", "three"))
        history = first.history("RuleSet", "a")
    with backend.open() as second:
        assert second.history("RuleSet", "a") == history
        assert second.put("RuleSet", "a", rule_set("a", "four")).version == 4


def test_the_change_marker_sees_writes_of_another_connection(backend: Backend) -> None:
    with backend.open() as reader, backend.open() as writer:
        before = reader.change_marker()
        writer.put("RuleSet", "a", rule_set("a"))
        assert reader.change_marker() != before
        assert reader.get("RuleSet", "a").version == 1


def test_a_closed_store_refuses_calls(backend: Backend) -> None:
    closed = backend.open()
    closed.close()
    with pytest.raises(StoreError, match="closed"):
        closed.list()


def test_threads_never_get_the_same_version(store: Store) -> None:
    threads, puts = 8, 25
    versions: list[int] = []
    lock = threading.Lock()

    def write() -> None:
        for n in range(puts):
            version = store.put("RuleSet", "shared", rule_set("shared", str(n))).version
            with lock:
                versions.append(version)

    workers = [threading.Thread(target=write) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(versions) == list(range(1, threads * puts + 1))
    assert store.integrity_check() == []


def test_compare_and_swap_loses_no_update(store: Store) -> None:
    """Each thread increments a counter in the document with read-then-write-if-unchanged; no increment is lost."""
    store.put("RuleSet", "counter", "0")
    threads, increments = 6, 15
    conflicts = []

    def increment() -> None:
        for _ in range(increments):
            while True:
                head = store.get("RuleSet", "counter")
                try:
                    store.put("RuleSet", "counter", str(int(head.content) + 1), expected_version=head.version)
                    break
                except VersionConflict:
                    conflicts.append(1)

    workers = [threading.Thread(target=increment) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert int(store.get("RuleSet", "counter").content) == threads * increments
    assert store.get("RuleSet", "counter").version == threads * increments + 1


def test_changes_since_names_exactly_the_documents_written(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    position, everything = store.changes_since(None)
    assert everything is None  # no position yet: the caller loads everything
    assert store.changes_since(position) == (position, [])
    store.put("RuleSet", "b", rule_set("b"))
    store.put("RouteTable", "t", "kind: RouteTable\nname: t\n")
    store.delete("RuleSet", "a")
    later, changed = store.changes_since(position)
    assert sorted(changed) == [("RouteTable", "t"), ("RuleSet", "a"), ("RuleSet", "b")]
    assert store.changes_since(later) == (later, [])
    store.activate("RuleSet", "a", 1)
    assert store.changes_since(later)[1] == [("RuleSet", "a")]


def test_a_failed_write_is_not_a_change(store: Store) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    position, _ = store.changes_since(None)
    with pytest.raises(VersionConflict):
        store.put("RuleSet", "a", rule_set("a", "stale"), expected_version=7)
    store.activate("RuleSet", "a", 1)  # already active: writes nothing
    assert store.changes_since(position) == (position, [])


def test_restore_copies_versions_exactly_and_only_in_order(backend: Backend) -> None:
    target = backend.open()
    written = [
        DocumentRecord("RuleSet", "a", 1, rule_set("a", "one"), "alice", 1_600_000_000.25, active=False, deleted=False),
        DocumentRecord("RuleSet", "a", 2, "", "bob", 1_600_000_100.5, active=False, deleted=True),
        DocumentRecord(
            "RuleSet", "a", 3, rule_set("a", "three"), "carol", 1_600_000_200.75, active=True, deleted=False
        ),
    ]
    with pytest.raises(VersionConflict, match="next version is 1"):
        target.restore(written[1])
    for record in written:
        target.restore(record)
    assert target.history("RuleSet", "a") == written[::-1]
    assert target.all_versions() == written
    with pytest.raises(VersionConflict):
        target.restore(written[2])
    assert target.integrity_check() == []


def test_store_copy_moves_every_version_from_sqlite_to_postgresql(tmp_path, postgres_url: str) -> None:
    """`verdict store copy` as an operator runs it, then the copy read back through the PostgreSQL store."""
    source = SqliteStore(tmp_path / "old.db")
    source.put("RuleSet", "a", rule_set("a", "one"), author="alice")
    source.put("RuleSet", "a", rule_set("a", "two"), author="bob")
    source.put("RuleSet", "b", rule_set("b"))
    source.delete("RuleSet", "b", author="carol")
    source.put("RouteTable", "t", "kind: RouteTable\nname: t\n", author="dave")
    expected = source.all_versions()
    source.close()
    copy = [sys.executable, "-m", "verdict_server", "store", "copy", f"sqlite://{tmp_path}/old.db", postgres_url]
    done = subprocess.run(copy, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("copied 5 versions")
    with PostgresStore(postgres_url) as copied:
        assert copied.all_versions() == expected
        assert copied.put("RuleSet", "a", rule_set("a", "three")).version == 3  # numbering continues
    again = subprocess.run(copy, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "copy needs an empty store" in again.stderr
    missing = subprocess.run([*copy[:-2], f"sqlite://{tmp_path}/none.db", postgres_url], capture_output=True, text=True)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
