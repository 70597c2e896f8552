"""SqliteStore: optimistic concurrency, rollback, limits, durability, and no version handed out twice."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from store.store_support import rule_set

from verdict_server.store import (
    ANY_VERSION,
    NO_LIVE_VERSION,
    DocumentTooLarge,
    NotFound,
    SqliteStore,
    StoreError,
    StoreFull,
    VersionConflict,
)


def snapshot(store: SqliteStore) -> tuple[object, list]:
    """Everything observable about the store, to show that a failed write changed nothing."""
    rows = [(r.kind, r.name) for r in store.list()]
    histories = [store.history(kind, name) for kind, name in rows]
    return store.change_marker(), histories


def test_put_records_author_and_time(store: SqliteStore) -> None:
    record = store.put("RuleSet", "a", rule_set("a"), author="alice")
    assert (record.version, record.author, record.active) == (1, "alice", True)
    assert record.created_at > 0
    assert store.get("RuleSet", "a") == record


def test_expected_version_must_match_the_head(store: SqliteStore) -> None:
    store.put("RuleSet", "a", rule_set("a", "one"))
    store.put("RuleSet", "a", rule_set("a", "two"), expected_version=1)
    before = snapshot(store)
    with pytest.raises(VersionConflict, match="expected version 1, but the head is version 2") as caught:
        store.put("RuleSet", "a", rule_set("a", "stale"), expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert snapshot(store) == before


def test_expected_version_zero_means_no_check(store: SqliteStore) -> None:
    assert ANY_VERSION == 0
    store.put("RuleSet", "a", rule_set("a"))
    assert store.put("RuleSet", "a", rule_set("a", "x"), expected_version=ANY_VERSION).version == 2


def test_expected_version_on_a_document_that_does_not_exist_conflicts(store: SqliteStore) -> None:
    with pytest.raises(VersionConflict, match="does not exist"):
        store.put("RuleSet", "a", rule_set("a"), expected_version=1)
    with pytest.raises(NotFound):
        store.get("RuleSet", "a")


def test_no_live_version_means_create_only(store: SqliteStore) -> None:
    store.put("RuleSet", "a", rule_set("a"), expected_version=NO_LIVE_VERSION)
    with pytest.raises(VersionConflict, match="expected no live document"):
        store.put("RuleSet", "a", rule_set("a", "again"), expected_version=NO_LIVE_VERSION)
    store.delete("RuleSet", "a")
    assert store.put("RuleSet", "a", rule_set("a", "restored"), expected_version=NO_LIVE_VERSION).version == 3


def test_other_negative_expected_versions_are_refused(store: SqliteStore) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    with pytest.raises(VersionConflict, match="impossible version"):
        store.put("RuleSet", "a", rule_set("a"), expected_version=-5)


def test_a_deletion_counts_as_a_version_for_expected_version(store: SqliteStore) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    tombstone = store.delete("RuleSet", "a", expected_version=1, author="bob")
    assert (tombstone.version, tombstone.deleted, tombstone.author, tombstone.content) == (2, True, "bob", "")
    with pytest.raises(VersionConflict):
        store.put("RuleSet", "a", rule_set("a"), expected_version=1)
    assert store.put("RuleSet", "a", rule_set("a"), expected_version=2).version == 3


def test_stale_delete_writes_nothing(store: SqliteStore) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    store.put("RuleSet", "a", rule_set("a", "two"))
    before = snapshot(store)
    with pytest.raises(VersionConflict):
        store.delete("RuleSet", "a", expected_version=1)
    assert snapshot(store) == before


def test_deleting_what_is_not_live_is_not_found(store: SqliteStore) -> None:
    with pytest.raises(NotFound):
        store.delete("RuleSet", "never")
    store.put("RuleSet", "a", rule_set("a"))
    store.delete("RuleSet", "a")
    with pytest.raises(NotFound, match="was deleted"):
        store.delete("RuleSet", "a")
    assert len(store.history("RuleSet", "a")) == 2


def test_activate_copies_an_old_version_as_the_new_head(store: SqliteStore) -> None:
    store.put("RuleSet", "a", rule_set("a", "one"))
    store.put("RuleSet", "a", rule_set("a", "two"))
    rolled_back = store.activate("RuleSet", "a", 1, expected_version=2, author="carol")
    assert (rolled_back.version, rolled_back.content, rolled_back.author) == (3, rule_set("a", "one"), "carol")
    assert store.get("RuleSet", "a") == rolled_back
    assert [r.version for r in store.history("RuleSet", "a")] == [3, 2, 1]
    assert store.get("RuleSet", "a", 2).content == rule_set("a", "two")


def test_activate_restores_a_deleted_document(store: SqliteStore) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    store.delete("RuleSet", "a")
    restored = store.activate("RuleSet", "a", 1)
    assert (restored.version, restored.active, restored.content) == (3, True, rule_set("a"))


def test_activating_the_active_version_writes_nothing(store: SqliteStore) -> None:
    store.put("RuleSet", "a", rule_set("a"))
    before = snapshot(store)
    assert store.activate("RuleSet", "a", 1).version == 1
    assert snapshot(store) == before


def test_activate_refuses_tombstones_unknown_versions_and_stale_heads(store: SqliteStore) -> None:
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


def test_kinds_keep_separate_version_sequences(store: SqliteStore) -> None:
    store.put("RuleSet", "same", rule_set("same"))
    store.put("RuleSet", "same", rule_set("same", "2"))
    assert store.put("RouteTable", "same", "kind: RouteTable\nname: same\n").version == 1
    assert [r.kind for r in store.list()] == ["RouteTable", "RuleSet"]


def test_a_document_above_the_size_limit_is_refused(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "v.db", max_document_bytes=100) as small:
        with pytest.raises(DocumentTooLarge, match="at most 100 bytes") as caught:
            small.put("RuleSet", "a", "x" * 101)
        assert caught.value.size == 101
        assert small.list() == []
        small.put("RuleSet", "a", "é" * 50)  # 100 bytes in UTF-8: exactly at the limit


def test_a_full_database_fails_cleanly_and_keeps_what_it_had(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "v.db", max_db_bytes=64 * 1024) as small:
        small.put("RuleSet", "a", rule_set("a"))
        with pytest.raises(StoreFull, match="nothing was written"):
            for n in range(100):
                small.put("RuleSet", f"big{n}", "x" * 8000)
        assert small.get("RuleSet", "a").content == rule_set("a")
        assert small.integrity_check() == []


def test_bad_arguments_are_refused(store: SqliteStore) -> None:
    with pytest.raises(ValueError):
        store.put("", "a", "text")
    with pytest.raises(TypeError):
        store.put("RuleSet", "a", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        SqliteStore(":memory:")


def test_everything_survives_reopening(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "v.db") as first:
        first.put("RuleSet", "a", rule_set("a", "one"), author="alice")
        first.delete("RuleSet", "a")
        first.put("RuleSet", "a", rule_set("a", "three"))
        history = first.history("RuleSet", "a")
    with SqliteStore(tmp_path / "v.db") as second:
        assert second.history("RuleSet", "a") == history
        assert second.put("RuleSet", "a", rule_set("a", "four")).version == 4


def test_a_database_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "v.db").close()
    with sqlite3.connect(tmp_path / "v.db") as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(tmp_path / "v.db")


def test_the_change_marker_sees_writes_of_another_connection(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "v.db") as reader, SqliteStore(tmp_path / "v.db") as writer:
        before = reader.change_marker()
        writer.put("RuleSet", "a", rule_set("a"))
        assert reader.change_marker() != before
        assert reader.get("RuleSet", "a").version == 1


def test_a_closed_store_refuses_calls(tmp_path: Path) -> None:
    closed = SqliteStore(tmp_path / "v.db")
    closed.close()
    with pytest.raises(StoreError, match="closed"):
        closed.list()


# --------------------------------------------------------------------------------------------------- concurrency


def test_threads_never_get_the_same_version(store: SqliteStore) -> None:
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


def test_compare_and_swap_loses_no_update(store: SqliteStore) -> None:
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


_WORKER = """
import json, sys
from verdict_server.store import SqliteStore
store = SqliteStore(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # start together, so the two processes really contend for the write lock
versions = [store.put("RuleSet", "shared", f"{sys.argv[2]}-{n}", author=sys.argv[2]).version for n in range(int(sys.argv[3]))]
print(json.dumps(versions), flush=True)
"""


def test_two_processes_never_get_the_same_version(tmp_path: Path) -> None:
    db, puts = tmp_path / "shared.db", 60
    SqliteStore(db).close()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), name, str(puts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        results.append(json.loads(out))
    assert sorted(results[0] + results[1]) == list(range(1, 2 * puts + 1))
    with SqliteStore(db) as check:
        history = check.history("RuleSet", "shared")
        assert {r.author for r in history} == {"p1", "p2"}
        for name, versions in zip(("p1", "p2"), results, strict=True):
            assert [check.get("RuleSet", "shared", v).author for v in versions] == [name] * puts
        assert check.integrity_check() == []


def test_a_forked_child_writes_with_its_own_connections(store: SqliteStore) -> None:
    """`verdict serve --processes N` may fork after the store was used: the child must not share connections."""
    store.put("RuleSet", "a", rule_set("a", "parent"))
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if its write got the next version; never return into pytest
        code = 1
        try:
            code = 0 if store.put("RuleSet", "a", rule_set("a", "child")).version == 2 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("RuleSet", "a").content == rule_set("a", "child")
    assert store.put("RuleSet", "a", rule_set("a", "parent again")).version == 3
    assert store.integrity_check() == []


_FILE_SIZE_WORKER = """
import resource, sys
from verdict_server.store import SqliteStore, StoreError
store = SqliteStore(sys.argv[1])
store.put("RuleSet", "kept", "safe")
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))  # CPython ignores SIGXFSZ
try:
    for n in range(100):
        store.put("RuleSet", f"big{n}", "y" * 10_000)
except StoreError as err:
    print(type(err).__name__, err)
"""


def test_a_file_size_limit_fails_the_write_and_says_why(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_WORKER, str(tmp_path / "v.db")], capture_output=True, text=True, timeout=120
    ).stdout
    assert out.startswith("StoreError ") and "file size limit" in out and "nothing was written" in out
    with SqliteStore(tmp_path / "v.db") as check:
        assert check.get("RuleSet", "kept").content == "safe"
        assert check.integrity_check() == []
