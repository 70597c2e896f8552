"""Gray rollout: let a stable share of messages through to a system, plus explicit allow and deny lists.

The share is decided by a bucket, never by chance, so the same key always gets the same answer, in every process and
after every restart:

    bucket   = hash_bucket(f"{table}/{system}/{value}", 10000)     # SHA-256, first 8 bytes big-endian, mod 10000
    included = bucket < round(percent * 100)

The table and system names are part of the hashed text so that each system's rollout picks its own keys (10% for
pharmacy is not the same 10% as for crm), and adding, removing or reordering other systems or tables moves nothing.
Raising the percentage only adds keys: whoever was in at 10% is still in at 20%. Renaming the table or the system
does re-deal the buckets.

Precedence: a value on the allow list is always included, then a value on the deny list is always excluded, then the
percentage decides. A message without the value (empty key, missing property) is excluded unless percent is 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..ql.stdlib import hash_bucket

BUCKETS = 10_000
BY_KEY = "key"
PROPERTY_PREFIX = "properties."


@dataclass(frozen=True)
class GrayRule:
    percent: float
    by: str  # "key" or "properties.NAME"
    allow: frozenset[str]
    deny: frozenset[str]
    salt: str  # "table/system/": keeps each system's rollout independent and stable
    threshold: int = field(init=False)  # buckets below this are in the rollout

    def __post_init__(self) -> None:
        object.__setattr__(self, "threshold", round(self.percent * BUCKETS / 100))

    def value_of(self, key: str, properties: Mapping[str, str]) -> str:
        if self.by == BY_KEY:
            return key
        return properties.get(self.by[len(PROPERTY_PREFIX) :], "")

    def bucket(self, value: str) -> int:
        return hash_bucket(self.salt + value, BUCKETS)

    def exclusion(self, key: str, properties: Mapping[str, str]) -> str | None:
        """Why the message is left out of the rollout, or None when it is let through."""
        value = self.value_of(key, properties)
        if value in self.allow:
            return None
        if value in self.deny:
            return f"{self.by} {value!r} is on the deny list"
        if self.threshold >= BUCKETS:
            return None
        if not value:
            return f"the message has no {self.by}, needed for the {self.percent:g}% rollout"
        bucket = self.bucket(value)
        if bucket < self.threshold:
            return None
        return (
            f"{self.by} {value!r} is in bucket {bucket} of {BUCKETS}, outside the {self.percent:g}% rollout "
            f"(buckets below {self.threshold})"
        )


def gray_salt(table: str, system: str) -> str:
    return f"{table}/{system}/"


def valid_by(by: str) -> bool:
    return by == BY_KEY or (by.startswith(PROPERTY_PREFIX) and len(by) > len(PROPERTY_PREFIX))
