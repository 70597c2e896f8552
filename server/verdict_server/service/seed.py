"""Filling a brand-new store from examples/, so a first `verdict serve` answers `pharmacist.otc_block` at once."""

from __future__ import annotations

import logging
from pathlib import Path

from ..document import DocumentInvalid, load_document
from ..store import Store

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
