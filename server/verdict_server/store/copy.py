"""`verdict store copy FROM_URL TO_URL`: every version of every document, with its author and time, into an empty
store (e.g. SQLite → PostgreSQL, to move an existing deployment to a fleet)."""

from __future__ import annotations

from .errors import StoreError
from .url import open_store, parse_store_url


def copy_store(source_url: str, target_url: str) -> int:
    """Copies every version (tombstones included, numbers kept); returns how many. The target must hold no
    documents, so a copy never mixes two histories; the source is only read."""
    source_parsed, target_parsed = parse_store_url(source_url), parse_store_url(target_url)
    if target_parsed.scheme == "dir":
        raise StoreError(f"cannot copy into {target_parsed.redacted}: a dir:// store is read-only")
    source = open_store(source_parsed, create=False)
    try:
        # A folder keeps no history (git does): its documents are copied as they are now, each as version 1.
        versions = source.all_versions() if hasattr(source, "all_versions") else source.heads()
    finally:
        source.close()
    target = open_store(target_parsed)
    try:
        present = target.all_versions()
        if present:
            raise StoreError(
                f"{target_parsed.redacted} already holds {len(present)} versions; copy needs an empty store"
                " (nothing was copied)"
            )
        for record in versions:
            target.restore(record)
        problems = target.integrity_check()
        if problems:
            raise StoreError(f"the copy in {target_parsed.redacted} failed its check: {'; '.join(problems)}")
    finally:
        target.close()
    return len(versions)
