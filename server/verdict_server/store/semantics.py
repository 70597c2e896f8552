"""The checks every writable backend makes, in the same words: key, liveness, content, `expected_version`."""

from __future__ import annotations

from .errors import NotFound, VersionConflict
from .record import ANY_VERSION, NO_LIVE_VERSION, DocumentRecord, describe


def check_key(kind: str, name: str) -> None:
    if not kind or not name:
        raise ValueError(f"a document needs a kind and a name (got kind={kind!r}, name={name!r})")


def require_live(kind: str, name: str, head: DocumentRecord | None) -> None:
    if head is None:
        raise NotFound(f"{describe(kind, name)} does not exist", kind=kind, name=name)
    if head.deleted:
        raise NotFound(f"{describe(kind, name)} was deleted (version {head.version})", kind=kind, name=name)


def require_content(
    kind: str, name: str, version: int, target: DocumentRecord | None, head: DocumentRecord | None
) -> None:
    """`version` must exist and hold content (a tombstone has none to read or activate)."""
    if head is None:
        raise NotFound(f"{describe(kind, name)} does not exist", kind=kind, name=name, version=version)
    if target is None:
        raise NotFound(
            f"{describe(kind, name)} has no version {version} (versions are 1 to {head.version})",
            kind=kind,
            name=name,
            version=version,
        )
    if target.deleted:
        raise NotFound(
            f"version {version} of {describe(kind, name)} records its deletion and has no content",
            kind=kind,
            name=name,
            version=version,
        )


def check_expected(kind: str, name: str, expected: int, head: DocumentRecord | None) -> None:
    """Optimistic concurrency. The head's version counts even when it is a tombstone (a deletion is a version)."""
    if expected == ANY_VERSION:
        return
    actual = head.version if head else 0
    if expected == NO_LIVE_VERSION:
        if head is None or head.deleted:
            return
        wanted = "no live document"
    elif expected > 0:
        if expected == actual:
            return
        wanted = f"version {expected}"
    else:
        wanted = f"an impossible version ({expected}; use 0 for no check, -1 for 'must not exist')"
    raise VersionConflict(
        f"{describe(kind, name)}: expected {wanted}, but the head is {describe_head(head)}",
        kind=kind,
        name=name,
        expected=expected,
        actual=actual,
    )


def describe_head(head: DocumentRecord | None) -> str:
    if head is None:
        return "nothing (the document does not exist)"
    return f"version {head.version}" + (" (a deletion)" if head.deleted else "")


def require_next(record: DocumentRecord, head: DocumentRecord | None) -> None:
    """A copied version must be the next one of its document: copies keep the numbers, so none may be skipped."""
    actual = head.version if head else 0
    if record.version != actual + 1:
        raise VersionConflict(
            f"{describe(record.kind, record.name)}: cannot copy version {record.version} onto {describe_head(head)}"
            f" (the next version is {actual + 1})",
            kind=record.kind,
            name=record.name,
            expected=record.version - 1,
            actual=actual,
        )
