"""Opening the store a process serves from, the one way `verdict serve` and `verdict forward` both use.

A store is named by `--rules-dir DIR` (a read-only folder of documents) or `--data DIR` (the embedded SQLite store,
seeded from examples/ when brand new). Another kind of store gets its option and its branch here.
"""

from __future__ import annotations

from pathlib import Path

from ..store import DirectoryStore, SqliteStore, Store
from .seed import seed_examples

DB_FILE_NAME = "verdict.db"


def open_store(*, data_dir: Path, rules_dir: Path | None = None, seed: bool = True) -> Store:
    if rules_dir is not None:
        return DirectoryStore(rules_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    db = data_dir / DB_FILE_NAME
    is_new = not db.exists()
    store = SqliteStore(db)
    if is_new and seed:
        seed_examples(store)
    return store
