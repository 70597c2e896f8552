"""What every store hands out (DocumentRecord) and the interface every backend implements (Store)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import DocumentTooLarge

# `expected_version` values with a special meaning (any positive value must equal the head's version).
ANY_VERSION = 0  # no check
NO_LIVE_VERSION = -1  # write only if the document does not exist or is deleted ("create", "restore")

DEFAULT_MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DocumentRecord:
    """One stored version of one document."""

    kind: str
    name: str
    version: int
    content: str  # empty for a deletion tombstone
    author: str
    created_at: float  # unix seconds
    active: bool  # this version is the head and not deleted
    deleted: bool  # this version is a deletion tombstone


@runtime_checkable
class Store(Protocol):
    """Versioned storage of document text. See docs/storage.md for the exact semantics."""

    def put(self, kind: str, name: str, content: str, *, expected_version: int = 0, author: str = "") -> DocumentRecord:
        """Store `content` as a new head version (max version + 1; numbers are never reused)."""
        ...

    def get(self, kind: str, name: str, version: int = 0) -> DocumentRecord:
        """Version 0 = the active head. Old versions stay readable after a delete; tombstones are not readable."""
        ...

    def list(self, kind: str | None = None) -> list[DocumentRecord]:
        """Active heads (not deleted), sorted by (kind, name)."""
        ...

    def history(self, kind: str, name: str) -> list[DocumentRecord]:
        """Every version including tombstones, newest first."""
        ...

    def delete(self, kind: str, name: str, *, expected_version: int = 0, author: str = "") -> DocumentRecord:
        """Write a tombstone version; returns it."""
        ...

    def activate(
        self, kind: str, name: str, version: int, *, expected_version: int = 0, author: str = ""
    ) -> DocumentRecord:
        """Rollback: copy the content of `version` into a new head version."""
        ...

    def change_marker(self) -> object:
        """A cheap value that changes whenever anything was written (also by other processes)."""
        ...

    def reload(self) -> None:
        """Bring in-memory state up to date with the backing storage (no-op where reads are always fresh)."""
        ...

    def heads(self) -> list[DocumentRecord]:
        """Active heads of every kind: the input of a serving snapshot. Same as list(None)."""
        ...

    def close(self) -> None: ...


def describe(kind: str, name: str) -> str:
    """How messages name a document: RuleSet 'pharmacist.otc_block'."""
    return f"{kind} {name!r}"


def check_size(kind: str, name: str, content: str, limit: int) -> None:
    size = len(content.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        raise DocumentTooLarge(
            f"{describe(kind, name)} is {size} bytes; the store accepts at most {limit} bytes per document",
            kind=kind,
            name=name,
            size=size,
            limit=limit,
        )


@runtime_checkable
class TracksChanges(Protocol):
    """A store that can say which documents moved, so a replica reloads only those (SQLite, PostgreSQL)."""

    def changes_since(self, position: object | None) -> tuple[object, list[tuple[str, str]] | None]:
        """(new position, the (kind, name) written since `position`); None for the list means "reload everything"."""
        ...


@runtime_checkable
class PushesChanges(Protocol):
    """A store that tells every replica about a write as it commits (PostgreSQL's LISTEN/NOTIFY)."""

    def listen(self, on_notify: Callable[[str], None], stopping: threading.Event) -> None:
        """Blocks until `stopping` is set, calling on_notify for each change; raises StoreError when cut off."""
        ...
