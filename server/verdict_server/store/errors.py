"""Store errors. Each names the document (kind, name, version) so the service can pass the message on unchanged.

The service maps them to gRPC status codes: NotFound → NOT_FOUND, VersionConflict → ABORTED,
ReadOnlyStore → FAILED_PRECONDITION, StoreFull → RESOURCE_EXHAUSTED, DocumentTooLarge → INVALID_ARGUMENT,
StoreBusy, StoreUnreachable and any other StoreError → UNAVAILABLE (see docs/storage.md).
"""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked. Nothing was written unless the call returned."""


class NotFound(StoreError):
    """The document, or the requested version of it, does not exist (or was deleted)."""

    def __init__(self, message: str, *, kind: str, name: str, version: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.version = version


class VersionConflict(StoreError):
    """`expected_version` did not match the document's head; nothing was written."""

    def __init__(self, message: str, *, kind: str, name: str, expected: int, actual: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.expected = expected
        self.actual = actual


class ReadOnlyStore(StoreError):
    """A write was sent to a store that cannot be written through Verdict (the directory backend)."""


class StoreFull(StoreError):
    """The disk, or the configured database size limit, is full. Data already stored is intact."""


class DocumentTooLarge(StoreError):
    """The document is bigger than the store's per-document limit."""

    def __init__(self, message: str, *, kind: str, name: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.size = size
        self.limit = limit


class StoreBusy(StoreError):
    """Another writer held the database lock for longer than the busy timeout. Safe to retry."""


class StoreUnreachable(StoreError):
    """The database server did not answer (down, restarting, network). Nothing was written; safe to retry."""
