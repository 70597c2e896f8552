"""Opening the store a process serves from: the one way `verdict serve` and `verdict forward` both use.

A store is named by a URL (`--store`; `--data DIR` and `--rules-dir DIR` are shorthands, see
ServeConfig.store_url): PostgreSQL for a fleet, the embedded SQLite file, or a read-only folder of documents.
"""

from __future__ import annotations

from ..store import Store, StoreError, open_store, parse_store_url
from .seed import seed_examples


def open_serving_store(store_url: str, *, seed: bool) -> Store:
    """Opens the configured store, seeding it from examples/ when it is brand new and `seed` is on.

    A store that cannot be opened (bad URL, missing database, refused credentials, unreadable file) ends the start
    with one line saying what to fix. A PostgreSQL server that does not answer yet is not such a failure: the store
    opens, and the server reports NOT_SERVING until the first load.
    """
    try:
        url = parse_store_url(store_url)
        existed = url.path is not None and url.path.exists()
        if url.scheme == "sqlite":
            url.path.parent.mkdir(parents=True, exist_ok=True)
        store = open_store(url)
        is_new = getattr(store, "created", False) if url.scheme == "postgresql" else not existed
        if is_new and seed and url.scheme != "dir":
            seed_examples(store)
    except (StoreError, OSError) as err:
        raise SystemExit(f"verdict: cannot open the store: {err}") from None
    return store
