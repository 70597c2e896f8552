"""Versioned document storage (SQLite by default, or a read-only folder) and the poller that notices changes.

See docs/storage.md for the exact semantics every backend shares.
"""

from .directory import DirectoryStore
from .errors import DocumentTooLarge, NotFound, ReadOnlyStore, StoreBusy, StoreError, StoreFull, VersionConflict
from .poller import ChangePoller
from .record import ANY_VERSION, NO_LIVE_VERSION, DocumentRecord, Store
from .sqlite import SqliteStore

__all__ = [
    "ANY_VERSION",
    "NO_LIVE_VERSION",
    "ChangePoller",
    "DirectoryStore",
    "DocumentRecord",
    "DocumentTooLarge",
    "NotFound",
    "ReadOnlyStore",
    "SqliteStore",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreFull",
    "VersionConflict",
]
