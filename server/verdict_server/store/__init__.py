"""Versioned document storage (SQLite by default, PostgreSQL for a fleet, or a read-only folder) and the poller that notices changes.

See docs/storage.md for the exact semantics every backend shares.
"""

from .directory import DirectoryStore
from .errors import (
    DocumentTooLarge,
    NotFound,
    ReadOnlyStore,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreUnreachable,
    VersionConflict,
)
from .poller import ChangePoller
from .record import ANY_VERSION, NO_LIVE_VERSION, DocumentRecord, Store
from .sqlite import SqliteStore
from .url import StoreUrlError, open_store, parse_store_url, redact

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
    "StoreUnreachable",
    "StoreUrlError",
    "VersionConflict",
    "open_store",
    "parse_store_url",
    "redact",
]
