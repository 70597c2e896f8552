"""The shared store: one PostgreSQL database for a fleet of replicas, with every write pushed to all of them.

Same semantics as the SQLite store (docs/storage.md): rows are only appended, a delete is a tombstone, a rollback is
a copy. Every write is one transaction that first takes the row lock of the change counter (`UPDATE verdict_meta`),
so writers from every replica are serialised: exactly one of two concurrent writes with the same
`expected_version` wins, and change numbers are handed out in commit order. In the same transaction the write
updates `verdict_heads` (the head of each document and the change number that last moved it, which is how a
replica fetches only what changed) and sends `NOTIFY verdict_changes`, delivered at commit.

A replica LISTENs on a dedicated connection (`listen()`); the pool (psycopg_pool) serves every other call.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from .errors import NotFound, StoreError, StoreUnreachable
from .record import DEFAULT_MAX_DOCUMENT_BYTES, DocumentRecord, check_size, describe
from .semantics import check_expected, check_key, require_content, require_live, require_next
from .url import StoreUrlError, redact

log = logging.getLogger(__name__)
# The pool logs every failed reconnection attempt; the store's own errors (and the server's verdict_store_up gauge
# and its one log line per outage) already say the database is unreachable.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

SCHEMA_VERSION = 1
CHANNEL = "verdict_changes"
CONNECT_TIMEOUT_S = 5  # libpq's connect_timeout when the URL gives none: an unreachable host fails, not hangs
POOL_TIMEOUT_S = 5.0  # how long a call waits for a connection before it fails with StoreUnreachable
_SCHEMA_LOCK = 0x76657264  # pg_advisory_xact_lock key: one replica creates the schema, the others wait and see it

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdict_schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS verdict_meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdict_documents (
    kind       TEXT NOT NULL CHECK (kind <> ''),
    name       TEXT NOT NULL CHECK (name <> ''),
    version    INTEGER NOT NULL CHECK (version >= 1),
    content    TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    deleted    BOOLEAN NOT NULL,
    PRIMARY KEY (kind, name, version)
);
CREATE TABLE IF NOT EXISTS verdict_heads (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    deleted    BOOLEAN NOT NULL,
    generation BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE INDEX IF NOT EXISTS verdict_heads_by_generation ON verdict_heads (generation);
INSERT INTO verdict_meta (key, value) VALUES ('generation', 0) ON CONFLICT DO NOTHING
"""

_COLUMNS = "d.kind, d.name, d.version, d.content, d.author, d.created_at, d.deleted, h.version"
_ORDER = 'd.kind COLLATE "C", d.name COLLATE "C"'  # byte order, like Python's sort and SQLite


class PostgresStore:
    """Versioned documents in a PostgreSQL database shared by every replica. Thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        pool_size: int = 4,
    ) -> None:
        """Connects and checks (or creates) the schema.

        A wrong URL, a missing database or refused credentials raise StoreError at once. An unreachable server does
        not: the store is returned, every call raises StoreUnreachable until the server answers, and the schema is
        checked on the first call that reaches it (a replica may start before its database).
        """
        self.url = url
        self.name = redact(url)
        self.max_document_bytes = max_document_bytes
        self.created = False  # this process created the schema (a brand-new store: the caller may seed it)
        self._create = create
        self._ready = False
        self._ready_lock = threading.Lock()
        self._conninfo = _conninfo(url)
        reachable = self._probe()
        self._pool = ConnectionPool(
            self._conninfo,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=POOL_TIMEOUT_S,
            check=ConnectionPool.check_connection,  # a connection broken by a database restart is replaced, not used
            reconnect_timeout=60.0,
            name="verdict-store",
        )
        self._pool.open(wait=False)
        if reachable:
            try:
                self._ensure_ready()
            except BaseException:
                self._pool.close()
                raise

    def _probe(self) -> bool:
        """One direct connection: a server that answers with an error (no such database, bad password) is a
        configuration to fix, raised now; a server that does not answer may come up later (False)."""
        try:
            psycopg.connect(self._conninfo).close()
        except psycopg.OperationalError as err:
            message = _first_line(err)
            if "FATAL:" in str(err):
                reason = str(err).split("FATAL:", 1)[1].strip().splitlines()[0]
                raise StoreError(f"store {self.name}: {reason}") from None
            log.warning("store %s is unreachable (%s); serving starts once it answers", self.name, message)
            return False
        return True

    # ----------------------------------------------------------------------------------------------- writes

    def put(self, kind: str, name: str, content: str, *, expected_version: int = 0, author: str = "") -> DocumentRecord:
        check_key(kind, name)
        if not isinstance(content, str):
            raise TypeError(f"content must be str, not {type(content).__name__}")
        check_size(kind, name, content, self.max_document_bytes)

        def write(cur: psycopg.Cursor) -> DocumentRecord:
            head = _head(cur, kind, name)
            check_expected(kind, name, expected_version, head)
            return _next_record(kind, name, content, author, deleted=False, head=head)

        return self._write(f"put {describe(kind, name)}", write)

    def delete(self, kind: str, name: str, *, expected_version: int = 0, author: str = "") -> DocumentRecord:
        check_key(kind, name)

        def write(cur: psycopg.Cursor) -> DocumentRecord:
            head = _head(cur, kind, name)
            require_live(kind, name, head)
            check_expected(kind, name, expected_version, head)
            return _next_record(kind, name, "", author, deleted=True, head=head)

        return self._write(f"delete {describe(kind, name)}", write)

    def activate(
        self, kind: str, name: str, version: int, *, expected_version: int = 0, author: str = ""
    ) -> DocumentRecord:
        check_key(kind, name)

        def write(cur: psycopg.Cursor) -> DocumentRecord:
            head = _head(cur, kind, name)
            target = _version(cur, kind, name, version)
            require_content(kind, name, version, target, head)
            check_expected(kind, name, expected_version, head)
            assert head is not None and target is not None  # both checked above
            if head.active and head.version == version:
                raise _NothingToWrite(head)  # already the active version: activating again writes nothing
            return _next_record(kind, name, target.content, author, deleted=False, head=head)

        return self._write(f"activate version {version} of {describe(kind, name)}", write)

    def restore(self, record: DocumentRecord) -> None:
        """Append an exact copy of a version from another store (author, time, tombstone); it must be the next one."""
        check_key(record.kind, record.name)

        def write(cur: psycopg.Cursor) -> DocumentRecord:
            require_next(record, _head(cur, record.kind, record.name))
            return record

        self._write(f"copy version {record.version} of {describe(record.kind, record.name)}", write)

    # ------------------------------------------------------------------------------------------------ reads

    def get(self, kind: str, name: str, version: int = 0) -> DocumentRecord:
        def read(cur: psycopg.Cursor) -> DocumentRecord:
            if version == 0:
                head = _head(cur, kind, name)
                require_live(kind, name, head)
                assert head is not None
                return head
            head_version, target = _version_and_head(cur, kind, name, version)
            if head_version is None:
                raise NotFound(f"{describe(kind, name)} does not exist", kind=kind, name=name, version=version)
            require_content(kind, name, version, target, _placeholder_head(kind, name, head_version))
            assert target is not None
            return target

        return self._read(f"get {describe(kind, name)}", read)

    def list(self, kind: str | None = None) -> builtins.list[DocumentRecord]:
        where = "NOT h.deleted" + (" AND h.kind = %s" if kind is not None else "")
        sql = f"""
            SELECT {_COLUMNS} FROM verdict_heads AS h
            JOIN verdict_documents AS d ON d.kind = h.kind AND d.name = h.name AND d.version = h.version
            WHERE {where} ORDER BY {_ORDER}
        """
        params = (kind,) if kind is not None else ()
        return self._read("list documents", lambda cur: [_record(row) for row in cur.execute(sql, params)])

    def heads(self) -> builtins.list[DocumentRecord]:
        return self.list(None)

    def history(self, kind: str, name: str) -> builtins.list[DocumentRecord]:
        sql = f"""
            SELECT {_COLUMNS} FROM verdict_documents AS d
            JOIN verdict_heads AS h ON h.kind = d.kind AND h.name = d.name
            WHERE d.kind = %s AND d.name = %s ORDER BY d.version DESC
        """

        def read(cur: psycopg.Cursor) -> builtins.list[DocumentRecord]:
            records = [_record(row) for row in cur.execute(sql, (kind, name))]
            if not records:
                raise NotFound(f"{describe(kind, name)} does not exist", kind=kind, name=name)
            return records

        return self._read(f"read the history of {describe(kind, name)}", read)

    def all_versions(self) -> builtins.list[DocumentRecord]:
        """Every version of every document, tombstones included, by (kind, name, version): what a copy reads."""
        sql = f"""
            SELECT {_COLUMNS} FROM verdict_documents AS d
            JOIN verdict_heads AS h ON h.kind = d.kind AND h.name = d.name
            ORDER BY {_ORDER}, d.version
        """
        return self._read("read every version", lambda cur: [_record(row) for row in cur.execute(sql)])

    def change_marker(self) -> int:
        """The change counter: bumped by every write, in commit order, by whichever replica wrote."""
        return self._read("read the change marker", _generation)

    def changes_since(self, position: object | None) -> tuple[int, builtins.list[tuple[str, str]] | None]:
        """The documents written since `position` (a change number this method returned), and the new position.

        Change numbers are handed out under the counter's row lock, so they commit in order: once a number is
        visible, every smaller one is too, and nothing is missed. With no position yet the answer is None (load all).
        """

        def read(cur: psycopg.Cursor) -> tuple[int, builtins.list[tuple[str, str]] | None]:
            if position is None:
                return _generation(cur), None
            rows = cur.execute(
                "SELECT generation, kind, name FROM verdict_heads WHERE generation > %s", (position,)
            ).fetchall()
            newest = max((row[0] for row in rows), default=position)
            return int(newest), sorted((kind, name) for _, kind, name in rows)

        return self._read("read the changed documents", read)

    def reload(self) -> None:
        """Nothing to do: every read sees the latest committed state."""

    def listen(self, on_notify: Callable[[str], None], stopping: threading.Event, *, poll_s: float = 0.5) -> None:
        """Blocks until `stopping` is set: LISTENs on a dedicated connection and calls on_notify(payload) for every
        change committed by any replica. Raises StoreUnreachable when the connection is lost (the caller
        reconnects); calls on_notify("") once LISTEN is in place, since changes made before it were not heard."""
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as err:
            raise self._unreachable("listen for changes", err) from err
        try:
            conn.execute(f"LISTEN {CHANNEL}")
            on_notify("")
            while not stopping.is_set():
                for notify in conn.notifies(timeout=poll_s):
                    on_notify(notify.payload)
                    if stopping.is_set():
                        break
        except psycopg.Error as err:
            raise self._unreachable("listen for changes", err) from err
        finally:
            conn.close()

    # ------------------------------------------------------------------------------------------- operations

    def integrity_check(self) -> list[str]:
        """Verdict's invariants (versions 1..n without gaps, heads that match, tombstones empty); empty = healthy."""
        return self._read("check integrity", _integrity_problems)

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------- internals

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            self._translated("open the store", self._initialise)
            self._ready = True

    def _initialise(self) -> None:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            exists = cur.execute("SELECT to_regclass('verdict_schema_version') IS NOT NULL").fetchone()[0]
            if not exists and not self._create:
                raise StoreError(f"store {self.name} holds no Verdict store (no table verdict_schema_version)")
            if not exists:
                for statement in _SCHEMA.split(";"):
                    cur.execute(statement)
            found = cur.execute("SELECT MAX(version) FROM verdict_schema_version").fetchone()[0]
            if found is None:
                cur.execute("INSERT INTO verdict_schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
                self.created = True
                found = SCHEMA_VERSION
            if found != SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.name} has schema version {found}; this Verdict understands version"
                    f" {SCHEMA_VERSION} (was it written by a newer Verdict?)"
                )

    def _write(self, action: str, write: Callable[[psycopg.Cursor], DocumentRecord]) -> DocumentRecord:
        """Runs `write` in one transaction holding the change counter's lock, then appends what it returned.

        The caller gets the record only after COMMIT returned: an acknowledged write is durable.
        """

        def run() -> DocumentRecord:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                generation = cur.execute(
                    "UPDATE verdict_meta SET value = value + 1 WHERE key = 'generation' RETURNING value"
                ).fetchone()[0]
                record = write(cur)
                _append(cur, record, generation)
            return record

        try:
            return self._guard(action, run)
        except _NothingToWrite as nothing:  # rolled back: the counter did not move
            return nothing.record

    def _read(self, action: str, read: Callable[[psycopg.Cursor], T]) -> T:
        def run() -> T:
            with self._pool.connection() as conn, conn.cursor() as cur:
                return read(cur)

        return self._guard(action, run)

    def _guard(self, action: str, run: Callable[[], T]) -> T:
        """Checks the schema once it can be reached, then runs `run` (see _translated)."""
        if self._pool.closed:
            raise StoreError("the store is closed")
        self._ensure_ready()
        return self._translated(action, run)

    def _translated(self, action: str, run: Callable[[], T]) -> T:
        """Runs `run`, turning psycopg's exceptions into StoreErrors that name the store and what failed."""
        try:
            return run()
        except (StoreError, _NothingToWrite):
            raise
        except PoolTimeout as err:
            raise self._unreachable(action, err) from err
        except psycopg.errors.UniqueViolation as err:
            # The counter's lock serialises writers, so this is a safety net, never the normal path.
            raise StoreError(f"cannot {action}: the database rejected the write ({err}); nothing was written") from err
        except psycopg.OperationalError as err:
            if err.sqlstate is None or err.sqlstate.startswith(("08", "57P")):  # connection lost, server shut down
                raise self._unreachable(action, err) from err
            raise StoreError(f"cannot {action}: store {self.name}: {_first_line(err)}") from err
        except psycopg.DataError as err:
            raise ValueError(f"cannot {action}: PostgreSQL refused the text ({_first_line(err)})") from err
        except UnicodeEncodeError as err:
            raise ValueError(f"cannot {action}: the text is not valid Unicode ({err.reason})") from err
        except psycopg.Error as err:
            raise StoreError(f"cannot {action}: store {self.name}: {_first_line(err)}") from err

    def _unreachable(self, action: str, err: BaseException) -> StoreUnreachable:
        reason = _first_line(err)
        if isinstance(err, PoolTimeout):
            reason = f"no connection within {POOL_TIMEOUT_S:g} s"
        return StoreUnreachable(f"cannot {action}: store {self.name} is unreachable ({reason})")


class _NothingToWrite(Exception):
    """A write that found nothing to do (activating the active version): roll back, answer `record`."""

    def __init__(self, record: DocumentRecord) -> None:
        super().__init__(record)
        self.record = record


def _conninfo(url: str) -> str:
    """The libpq connection string of `url`, with a connect timeout unless the URL sets one."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as err:
        raise StoreUrlError(f"store URL {redact(url)!r} is not a valid PostgreSQL URL: {_first_line(err)}") from None
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    params.setdefault("application_name", "verdict")
    return psycopg.conninfo.make_conninfo(**params)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0].strip()


def _head(cur: psycopg.Cursor, kind: str, name: str) -> DocumentRecord | None:
    row = cur.execute(
        f"""SELECT {_COLUMNS} FROM verdict_heads AS h
            JOIN verdict_documents AS d ON d.kind = h.kind AND d.name = h.name AND d.version = h.version
            WHERE h.kind = %s AND h.name = %s""",
        (kind, name),
    ).fetchone()
    return _record(row) if row else None


def _version(cur: psycopg.Cursor, kind: str, name: str, version: int) -> DocumentRecord | None:
    return _version_and_head(cur, kind, name, version)[1]


def _version_and_head(
    cur: psycopg.Cursor, kind: str, name: str, version: int
) -> tuple[int | None, DocumentRecord | None]:
    """The head's version number (None: no such document) and `version` of it (None: no such version)."""
    row = cur.execute(
        """SELECT h.version, d.kind, d.name, d.version, d.content, d.author, d.created_at, d.deleted
           FROM verdict_heads AS h
           LEFT JOIN verdict_documents AS d ON d.kind = h.kind AND d.name = h.name AND d.version = %s
           WHERE h.kind = %s AND h.name = %s""",
        (version, kind, name),
    ).fetchone()
    if row is None:
        return None, None
    head_version, *columns = row
    if columns[0] is None:
        return head_version, None
    return head_version, _record((*columns, head_version))


def _placeholder_head(kind: str, name: str, version: int) -> DocumentRecord:
    """Enough of a head for the checks that only read its version number."""
    return DocumentRecord(kind, name, version, "", "", 0.0, active=False, deleted=False)


def _record(row: tuple[Any, ...]) -> DocumentRecord:
    """Build a record from (kind, name, version, content, author, created_at, deleted, head_version)."""
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


def _next_record(
    kind: str, name: str, content: str, author: str, *, deleted: bool, head: DocumentRecord | None
) -> DocumentRecord:
    return DocumentRecord(
        kind=kind,
        name=name,
        version=(head.version if head else 0) + 1,
        content=content,
        author=author,
        created_at=time.time(),
        active=not deleted,
        deleted=deleted,
    )


def _append(cur: psycopg.Cursor, record: DocumentRecord, generation: int) -> None:
    cur.execute(
        """INSERT INTO verdict_documents (kind, name, version, content, author, created_at, deleted)
           VALUES (%s, %s, %s, %s, %s, %s, %s)""",
        (
            record.kind,
            record.name,
            record.version,
            record.content,
            record.author,
            record.created_at,
            record.deleted,
        ),
    )
    cur.execute(
        """INSERT INTO verdict_heads (kind, name, version, deleted, generation) VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (kind, name) DO UPDATE
           SET version = EXCLUDED.version, deleted = EXCLUDED.deleted, generation = EXCLUDED.generation""",
        (record.kind, record.name, record.version, record.deleted, generation),
    )
    # Delivered at COMMIT, and only if it commits: a replica never hears of a write that did not happen.
    payload = json.dumps(
        {"generation": generation, "kind": record.kind, "name": record.name, "version": record.version},
        ensure_ascii=False,
    )
    cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def _generation(cur: psycopg.Cursor) -> int:
    return int(cur.execute("SELECT value FROM verdict_meta WHERE key = 'generation'").fetchone()[0])


def _integrity_problems(cur: psycopg.Cursor) -> list[str]:
    problems = []
    for kind, name, low, high, count in cur.execute(
        """SELECT kind, name, MIN(version), MAX(version), COUNT(*) FROM verdict_documents GROUP BY kind, name
           HAVING MIN(version) <> 1 OR MAX(version) <> COUNT(*)"""
    ).fetchall():
        problems.append(f"{describe(kind, name)}: versions are not 1..{high} without gaps ({count} rows from {low})")
    for kind, name in cur.execute(
        """SELECT d.kind, d.name FROM verdict_documents AS d
           LEFT JOIN verdict_heads AS h ON h.kind = d.kind AND h.name = d.name
           GROUP BY d.kind, d.name, h.version, h.deleted
           HAVING h.version IS DISTINCT FROM MAX(d.version)
               OR h.deleted IS DISTINCT FROM bool_or(d.deleted AND d.version = h.version)"""
    ).fetchall():
        problems.append(f"{describe(kind, name)}: its head row does not match its newest version")
    for kind, name, version in cur.execute(
        "SELECT kind, name, version FROM verdict_documents WHERE deleted AND content <> ''"
    ).fetchall():
        problems.append(f"{describe(kind, name)}: tombstone version {version} has content")
    return problems
