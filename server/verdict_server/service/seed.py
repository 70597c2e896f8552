"""Filling a brand-new store from examples/, so a first `verdict serve` answers `pharmacist.otc_block` at once."""

from __future__ import annotations

import logging
from pathlib import Path

from ..document import DocumentInvalid, load_document
from ..store import Store, StoreError, open_store, parse_store_url
from .config import ServeConfig

log = logging.getLogger(__name__)

# examples/ sits at the repository root, beside client/ and server/ (an editable or source install).
EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"


def seed_examples(store: Store, examples_dir: Path = EXAMPLES_DIR) -> int:
    """Stores every example document; returns how many. A missing folder (a wheel install) seeds nothing."""
    if not examples_dir.is_dir():
        log.info("no examples folder at %s; starting with an empty store", examples_dir)
        return 0
    count = 0
    for path in sorted(examples_dir.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        try:
            doc = load_document(text)
        except DocumentInvalid as err:
            log.error("example %s is invalid, not seeded: %s", path, err)
            continue
        store.put(doc.kind, doc.name, text, author="verdict (example)")
        count += 1
    log.info("seeded %d example documents from %s", count, examples_dir)
    return count


def open_serving_store(config: ServeConfig) -> Store:
    """Opens the configured store, seeding it from examples/ when it is brand new and `seed` is on.

    A store that cannot be opened (bad URL, missing database, refused credentials, unreadable file) ends the start
    with one line saying what to fix. A PostgreSQL server that does not answer yet is not such a failure: the store
    opens, and the server reports NOT_SERVING until the first load.
    """
    try:
        url = parse_store_url(config.store_url())
        existed = url.path is not None and url.path.exists()
        if url.scheme == "sqlite":
            url.path.parent.mkdir(parents=True, exist_ok=True)
        store = open_store(url)
        is_new = getattr(store, "created", False) if url.scheme == "postgresql" else not existed
        if is_new and config.seed and url.scheme != "dir":
            seed_examples(store)
    except (StoreError, OSError) as err:
        raise SystemExit(f"verdict: cannot open the store: {err}") from None
    return store
