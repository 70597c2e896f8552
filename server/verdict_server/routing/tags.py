"""RocketMQ-style tag expressions: `*` (any tag) or `A || B || C` (any of these tags).

As in RocketMQ, tags are compared exactly (case-sensitive) after trimming white space around each alternative. A
message may carry several tags; it matches when any of them is listed. Unlike RocketMQ, which silently drops empty
alternatives, an expression such as `A || || B` is rejected: it is almost always a typing mistake.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ANY_TAG = "*"
SEPARATOR = "||"


class TagExpressionError(ValueError):
    """A tag expression that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class TagFilter:
    text: str
    accepted: frozenset[str] | None  # None: every message, with or without tags

    @classmethod
    def parse(cls, text: str | None) -> TagFilter:
        if text is None or text.strip() in ("", ANY_TAG):
            return cls(ANY_TAG, None)
        alternatives = [part.strip() for part in text.split(SEPARATOR)]
        for position, tag in enumerate(alternatives, 1):
            _check_tag(tag, position)
        return cls(text.strip(), frozenset(alternatives))

    @property
    def accepts_everything(self) -> bool:
        return self.accepted is None

    def matches(self, tags: Iterable[str]) -> bool:
        if self.accepted is None:
            return True
        return not self.accepted.isdisjoint(tags)


def _check_tag(tag: str, position: int) -> None:
    if not tag:
        raise TagExpressionError(f"alternative {position} is empty (write 'A || B', or '*' for any tag)")
    if tag == ANY_TAG:
        raise TagExpressionError("'*' must stand alone: it already means any tag")
    if "|" in tag:
        raise TagExpressionError(
            f"alternative {position} ({tag!r}) has a single '|': alternatives are separated by '||'"
        )
