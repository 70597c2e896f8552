"""What only SqliteStore has: its file (quota, schema, size limit), several processes on it, fork. The contract it shares
with PostgreSQL is in test_store_contract.py."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from store.store_support import rule_set

from verdict_server.store import (
    SqliteStore,
    StoreError,
    StoreFull,
)


def test_a_full_database_fails_cleanly_and_keeps_what_it_had(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "v.db", max_db_bytes=64 * 1024) as small:
        small.put("RuleSet", "a", rule_set("a"))
        with pytest.raises(StoreFull, match="nothing was written"):
            for n in range(100):
                small.put("RuleSet", f"big{n}", "x" * 8000)
        assert small.get("RuleSet", "a").content == rule_set("a")
        assert small.integrity_check() == []


def test_an_in_memory_database_is_refused() -> None:
    with pytest.raises(StoreError):
        SqliteStore(":memory:")


def test_a_database_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "v.db").close()
    with sqlite3.connect(tmp_path / "v.db") as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteStore(tmp_path / "v.db")


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


def test_a_forked_child_writes_with_its_own_connections(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
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
