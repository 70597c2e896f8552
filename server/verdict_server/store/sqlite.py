"""The embedded default store: one SQLite file in WAL mode, shared safely by threads and by processes.

Every write is one `BEGIN IMMEDIATE` transaction that reads the head, checks `expected_version`, inserts the new
version and bumps the change counter, so concurrent writers (threads or processes) are serialised by SQLite's write
lock and no version number is ever handed out twice. `synchronous=FULL` makes a write durable (fsynced) before put()
returns. Rows are never updated or deleted: a delete is a tombstone row, a rollback is a copy.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from .errors import NotFound, StoreBusy, StoreError, StoreFull
from .record import DEFAULT_MAX_DOCUMENT_BYTES, DocumentRecord, check_size, describe
from .semantics import check_expected, check_key, require_content, require_live, require_next

SCHEMA_VERSION = 1

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    kind       TEXT    NOT NULL CHECK (kind <> ''),
    name       TEXT    NOT NULL CHECK (name <> ''),
    version    INTEGER NOT NULL CHECK (typeof(version) = 'integer' AND version >= 1),
    content    TEXT    NOT NULL,
    author     TEXT    NOT NULL,
    created_at REAL    NOT NULL,
    deleted    INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    UNIQUE (kind, name, version)
);
"""

_COLUMNS = "kind, name, version, content, author, created_at, deleted"

# SQLite primary result codes (the low byte of an extended code).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_FULL = 13
_SQLITE_IOERR = 10


class SqliteStore:
    """Versioned documents in one SQLite file. Thread-safe; several processes may open the same file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        busy_timeout_s: float = 10.0,
        max_db_bytes: int | None = None,
    ) -> None:
        """Open (creating if needed) the store at `path`.

        busy_timeout_s: how long a write waits for another writer's lock before failing with StoreBusy.
        max_db_bytes: a quota on the database file; writes beyond it fail with StoreFull like a full disk.
        """
        self.path = Path(path)
        self.max_document_bytes = max_document_bytes
        self._busy_timeout_s = busy_timeout_s
        self._max_db_bytes = max_db_bytes
        if str(path) == ":memory:":
            raise StoreError("SqliteStore needs a file: an in-memory database cannot be shared by connections")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pool = _ConnectionPool(self._open_connection)
        self._guard("open the store", self._initialise)

    # ----------------------------------------------------------------------------------------------- writes

    def put(self, kind: str, name: str, content: str, *, expected_version: int = 0, author: str = "") -> DocumentRecord:
        check_key(kind, name)
        if not isinstance(content, str):
            raise TypeError(f"content must be str, not {type(content).__name__}")
        check_size(kind, name, content, self.max_document_bytes)

        def write(conn: sqlite3.Connection) -> DocumentRecord:
            head = _head(conn, kind, name)
            check_expected(kind, name, expected_version, head)
            return _append(conn, kind, name, content, author, deleted=False, head=head)

        return self._write(f"put {describe(kind, name)}", write)

    def delete(self, kind: str, name: str, *, expected_version: int = 0, author: str = "") -> DocumentRecord:
        check_key(kind, name)

        def write(conn: sqlite3.Connection) -> DocumentRecord:
            head = _head(conn, kind, name)
            require_live(kind, name, head)
            check_expected(kind, name, expected_version, head)
            return _append(conn, kind, name, "", author, deleted=True, head=head)

        return self._write(f"delete {describe(kind, name)}", write)

    def activate(
        self, kind: str, name: str, version: int, *, expected_version: int = 0, author: str = ""
    ) -> DocumentRecord:
        check_key(kind, name)

        def write(conn: sqlite3.Connection) -> DocumentRecord:
            head = _head(conn, kind, name)
            target = _version(conn, kind, name, version)
            require_content(kind, name, version, target, head)
            check_expected(kind, name, expected_version, head)
            assert head is not None and target is not None  # both checked above
            if head.active and head.version == version:
                return head  # already the active version: activating again changes nothing
            return _append(conn, kind, name, target.content, author, deleted=False, head=head)

        return self._write(f"activate version {version} of {describe(kind, name)}", write)

    # ------------------------------------------------------------------------------------------------ reads

    def get(self, kind: str, name: str, version: int = 0) -> DocumentRecord:
        def read(conn: sqlite3.Connection) -> DocumentRecord:
            head = _head(conn, kind, name)
            if version == 0:
                require_live(kind, name, head)
                assert head is not None
                return head
            target = _version(conn, kind, name, version)
            require_content(kind, name, version, target, head)
            assert target is not None
            return target

        return self._read(f"get {describe(kind, name)}", read)

    def list(self, kind: str | None = None) -> list[DocumentRecord]:
        where = "WHERE d.deleted = 0" + (" AND d.kind = ?" if kind is not None else "")
        sql = f"""
            SELECT d.kind, d.name, d.version, d.content, d.author, d.created_at, d.deleted, h.version
            FROM (SELECT kind, name, MAX(version) AS version FROM documents GROUP BY kind, name) AS h
            JOIN documents AS d ON d.kind = h.kind AND d.name = h.name AND d.version = h.version
            {where}
            ORDER BY d.kind, d.name
        """
        params = (kind,) if kind is not None else ()
        return self._read("list documents", lambda conn: [_record(row) for row in conn.execute(sql, params)])

    def heads(self) -> list[DocumentRecord]:
        return self.list(None)

    def history(self, kind: str, name: str) -> list[DocumentRecord]:
        sql = f"""
            SELECT {_COLUMNS}, MAX(version) OVER () FROM documents
            WHERE kind = ? AND name = ? ORDER BY version DESC
        """

        def read(conn: sqlite3.Connection) -> list[DocumentRecord]:
            records = [_record(row) for row in conn.execute(sql, (kind, name))]
            if not records:
                raise NotFound(f"{describe(kind, name)} does not exist", kind=kind, name=name)
            return records

        return self._read(f"read the history of {describe(kind, name)}", read)

    def change_marker(self) -> int:
        """The write counter: bumped in the same transaction as every write, so it sees other processes' writes."""
        return self._read("read the change marker", _generation)

    def reload(self) -> None:
        """Nothing to do: every read sees the latest committed state of the file."""

    def changes_since(self, position: object | None) -> tuple[int, builtins.list[tuple[str, str]] | None]:
        """The documents written since `position` (a value this method returned), and the new position.

        The position is the highest row id: rows are only ever appended, one writer at a time, so row ids grow in
        commit order. With no position yet the answer is None: the caller loads everything.
        """

        def read(conn: sqlite3.Connection) -> tuple[int, builtins.list[tuple[str, str]] | None]:
            if position is None:
                return conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM documents").fetchone()[0], None
            rows = conn.execute("SELECT rowid, kind, name FROM documents WHERE rowid > ?", (position,)).fetchall()
            newest = max((row[0] for row in rows), default=position)
            return newest, sorted({(kind, name) for _, kind, name in rows})

        return self._read("read the changed documents", read)

    def all_versions(self) -> builtins.list[DocumentRecord]:
        """Every version of every document, tombstones included, by (kind, name, version): what a copy reads."""
        sql = f"""
            SELECT {_COLUMNS}, MAX(version) OVER (PARTITION BY kind, name) FROM documents
            ORDER BY kind, name, version
        """
        return self._read("read every version", lambda conn: [_record(row) for row in conn.execute(sql)])

    def restore(self, record: DocumentRecord) -> None:
        """Append an exact copy of a version from another store (author, time, tombstone); it must be the next one."""
        check_key(record.kind, record.name)

        def write(conn: sqlite3.Connection) -> DocumentRecord:
            head = _head(conn, record.kind, record.name)
            require_next(record, head)
            _insert(conn, record)
            return record

        self._write(f"copy version {record.version} of {describe(record.kind, record.name)}", write)

    # ------------------------------------------------------------------------------------------- operations

    def integrity_check(self) -> list[str]:
        """SQLite's own check plus Verdict's invariants. Returns the problems found; empty means healthy."""
        return self._read("check integrity", _integrity_problems)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- internals

    def _open_connection(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so each write is exactly the transaction we wrote.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False)
        try:
            # FULL: in WAL mode NORMAL may lose the last commits on power loss; an acknowledged write must survive.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA trusted_schema = OFF")
            if self._max_db_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {max(1, self._max_db_bytes // page_size)}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _initialise(self) -> None:
        with self._pool.connection() as conn:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"cannot use {self.path}: SQLite refused WAL journal mode (got {mode!r})")
            with _transaction(conn):
                # One statement at a time: executescript() would COMMIT our transaction first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', 0)")
                found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
            if found != SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {found}; this Verdict understands version {SCHEMA_VERSION}"
                    " (was it written by a newer Verdict?)"
                )

    def _write(self, action: str, write: Callable[[sqlite3.Connection], DocumentRecord]) -> DocumentRecord:
        def run() -> DocumentRecord:
            with self._pool.connection() as conn, _transaction(conn):
                return write(conn)

        return self._guard(action, run)

    def _read(self, action: str, read: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            with self._pool.connection() as conn:
                return read(conn)

        return self._guard(action, run)

    def _guard(self, action: str, run: Callable[[], T]) -> T:
        """Run `run`, turning SQLite's exceptions into StoreErrors that say what failed and what it means."""
        try:
            return run()
        except sqlite3.IntegrityError as exc:
            # BEGIN IMMEDIATE serialises writers, so this is a safety net, never the normal path.
            raise StoreError(f"cannot {action}: the database rejected the write ({exc}); nothing was written") from exc
        except sqlite3.Error as exc:
            raise _translate(exc, action, self.path) from exc


class _ConnectionPool:
    """Hands each caller its own connection (SQLite connections must not be used by two threads at once).

    Connections are reused, so a thread pool needs at most one per concurrent caller. After a fork the child never
    touches (not even closes) the parent's connections: closing one could checkpoint or remove the parent's WAL.
    """

    def __init__(self, open_connection: Callable[[], sqlite3.Connection]) -> None:
        self._open = open_connection
        self._lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []  # kept referenced so they are never closed by GC
        self._pid = os.getpid()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        conn = self._take()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            if os.getpid() != self._pid:
                self._inherited.extend(self._idle)
                self._idle = []
                self._pid = os.getpid()
            if self._idle:
                return self._idle.pop()
        return self._open()

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            reusable = not self._closed and not conn.in_transaction and os.getpid() == self._pid
            if reusable:
                self._idle.append(conn)
                return
        if os.getpid() == self._pid:
            conn.close()


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front: reading the head and inserting the next version cannot interleave
    # with another writer, and a waiting writer waits in busy_timeout instead of failing on upgrade.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            # SQLite may have rolled back already (e.g. after SQLITE_FULL); the pool drops the connection if not.
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _head(conn: sqlite3.Connection, kind: str, name: str) -> DocumentRecord | None:
    row = conn.execute(
        f"SELECT {_COLUMNS}, version FROM documents WHERE kind = ? AND name = ? ORDER BY version DESC LIMIT 1",
        (kind, name),
    ).fetchone()
    return _record(row) if row else None


def _version(conn: sqlite3.Connection, kind: str, name: str, version: int) -> DocumentRecord | None:
    row = conn.execute(
        f"""SELECT {_COLUMNS}, (SELECT MAX(version) FROM documents WHERE kind = ? AND name = ?)
            FROM documents WHERE kind = ? AND name = ? AND version = ?""",
        (kind, name, kind, name, version),
    ).fetchone()
    return _record(row) if row else None


def _record(row: tuple[str, str, int, str, str, float, int, int]) -> DocumentRecord:
    """Build a record from (_COLUMNS..., head_version)."""
    kind, name, version, content, author, created_at, deleted, head_version = row
    return DocumentRecord(
        kind=kind,
        name=name,
        version=version,
        content=content,
        author=author,
        created_at=created_at,
        active=version == head_version and not deleted,
        deleted=bool(deleted),
    )


def _append(
    conn: sqlite3.Connection,
    kind: str,
    name: str,
    content: str,
    author: str,
    *,
    deleted: bool,
    head: DocumentRecord | None,
) -> DocumentRecord:
    record = DocumentRecord(
        kind=kind,
        name=name,
        version=(head.version if head else 0) + 1,
        content=content,
        author=author,
        created_at=time.time(),
        active=not deleted,
        deleted=deleted,
    )
    _insert(conn, record)
    return record


def _insert(conn: sqlite3.Connection, record: DocumentRecord) -> None:
    conn.execute(
        f"INSERT INTO documents ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.kind,
            record.name,
            record.version,
            record.content,
            record.author,
            record.created_at,
            int(record.deleted),
        ),
    )
    # Same transaction as the insert, so a reader that sees the new counter also sees the new version.
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")


def _generation(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]


def _translate(exc: sqlite3.Error, action: str, path: Path) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == _SQLITE_FULL:
        return StoreFull(
            f"cannot {action}: the database {path} is full (disk full or its size limit reached); nothing was"
            " written and stored documents are intact"
        )
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreBusy(f"cannot {action}: {path} stayed locked by another writer beyond the busy timeout ({exc})")
    if code == _SQLITE_IOERR:
        # SQLite reports a write past the file size limit (EFBIG) as an I/O error, not SQLITE_FULL; say what it
        # may mean. The transaction was rolled back, so what was stored before is intact either way.
        return StoreError(
            f"cannot {action}: writing {path} failed ({exc}: the disk may be full, the file size limit reached, or"
            " the device failing); nothing was written and stored documents are intact"
        )
    return StoreError(f"cannot {action}: {path}: {exc}")


def _integrity_problems(conn: sqlite3.Connection) -> list[str]:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
    for kind, name, low, high, count in conn.execute(
        """SELECT kind, name, MIN(version), MAX(version), COUNT(*) FROM documents GROUP BY kind, name
           HAVING MIN(version) <> 1 OR MAX(version) <> COUNT(*)"""
    ):
        problems.append(f"{describe(kind, name)}: versions are not 1..{high} without gaps ({count} rows from {low})")
    for kind, name, version, count in conn.execute(
        "SELECT kind, name, version, COUNT(*) FROM documents GROUP BY kind, name, version HAVING COUNT(*) > 1"
    ):
        problems.append(f"{describe(kind, name)}: version {version} is stored {count} times")
    for kind, name, version in conn.execute(
        """SELECT a.kind, a.name, a.version FROM documents AS a WHERE a.deleted = 1 AND (a.version = 1 OR EXISTS (
               SELECT 1 FROM documents AS b
               WHERE b.kind = a.kind AND b.name = a.name AND b.version = a.version - 1 AND b.deleted = 1))"""
    ):
        problems.append(f"{describe(kind, name)}: version {version} deletes a document that was not live")
    for kind, name, version in conn.execute(
        "SELECT kind, name, version FROM documents WHERE deleted = 1 AND content <> ''"
    ):
        problems.append(f"{describe(kind, name)}: tombstone version {version} has content")
    rows = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    generation = _generation(conn)
    if generation < rows:
        problems.append(f"the change counter ({generation}) is below the number of stored versions ({rows})")
    return problems
