"""Opening the store a process serves from: the one way `verdict serve` and `verdict forward` both use.

A store is named by a URL (`--store`; `--data DIR` and `--rules-dir DIR` are shorthands, see
ServeConfig.store_url): PostgreSQL for a fleet, the embedded SQLite file, or a read-only folder of documents.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..store import Store, StoreError, open_store, parse_store_url
from ..store.url import StoreUrl
from .seed import seed_examples

log = logging.getLogger(__name__)


def open_serving_store(store_url: str, *, seed: bool) -> Store:
    """Opens the configured store, seeding it from examples/ when it is brand new and `seed` is on.

    A store that cannot be opened (bad URL, missing database, refused credentials, unreadable or corrupt file) ends
    the start with one line saying what to fix. A PostgreSQL server that does not answer yet is not such a failure:
    the store opens, and the server reports NOT_SERVING until the first load.
    """
    try:
        url = parse_store_url(store_url)
    except StoreError as err:
        raise SystemExit(f"verdict: cannot open the store: {err}") from None
    if url.scheme == "sqlite":
        return _open_sqlite(url, seed)
    try:
        store = open_store(url)
    except (StoreError, OSError) as err:
        raise SystemExit(f"verdict: cannot open the store: {err}") from None
    if seed and url.scheme == "postgresql" and getattr(store, "created", False):
        seed_examples(store)
    return store


def _open_sqlite(url: StoreUrl, seed: bool) -> Store:
    db = url.path
    assert db is not None
    _private_directory(db.parent)
    # A 0-byte file is what an interrupted first start (or `touch`) leaves: SQLite reads it as an empty database,
    # so it is treated as new and seeded rather than served empty.
    is_new = not db.exists() or db.stat().st_size == 0
    try:
        store = open_store(url)
    except (StoreError, OSError) as err:
        raise SystemExit(
            f"verdict: cannot open the database {db}: {_reason(err)} (restore it from a backup, or move it away "
            "to start with a new one)"
        ) from None
    _private_files(db)
    if is_new and seed and not store.heads():
        seed_examples(store)
    return store


def _private_directory(path: Path) -> None:
    """The data directory holds every rule and the admin token: created 0700; an existing one open to other users
    is reported (its owner chose it; the database and token inside are 0600 anyway)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = path.stat().st_mode
    except OSError as err:
        raise SystemExit(f"verdict: cannot create the data directory {path}: {err.strerror}") from None
    if mode & 0o077:
        log.warning("the data directory %s is open to other users (mode %o); chmod 700 it", path, mode & 0o777)


def _private_files(db: Path) -> None:
    """SQLite creates its files with the umask (often 0644: any local user could read every whitelist)."""
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except FileNotFoundError:
            continue
        except OSError as err:
            raise SystemExit(f"verdict: cannot make {path} private (chmod 600): {err.strerror}") from None


def _reason(err: Exception) -> str:
    text = str(err)
    prefix = "cannot open the store: "
    return text[len(prefix) :] if text.startswith(prefix) else text
