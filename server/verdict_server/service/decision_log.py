"""The decision log: one JSON line per sampled decision or route, with configured fact fields masked.

Each line carries the decision_id returned to the caller, so a caller's complaint ("decision d-… was wrong") leads
straight to the facts and versions that produced it. Masking happens before anything is written: a masked value
never reaches the file. Names are fact names (`pin`) or dotted paths into nested maps (`patient.phone`).
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from decimal import Decimal
from typing import IO, Any

MASK = "***"


class DecisionLog:
    def __init__(self, target: str, *, sample: float = 1.0, masked: frozenset[str] = frozenset()) -> None:
        self._stream: IO[str] = sys.stdout if target == "-" else open(target, "a", encoding="utf-8")  # noqa: SIM115
        self._owns_stream = target != "-"
        self._sample = sample
        self._masked = masked
        self._lock = threading.Lock()
        self._random = random.Random()

    def sampled(self) -> bool:
        return self._sample >= 1.0 or self._random.random() < self._sample

    def write(self, entry: dict[str, Any]) -> None:
        secrets: set[str] = set()
        if "facts" in entry and self._masked:
            secrets = masked_values(entry["facts"], self._masked)
            entry["facts"] = mask(entry["facts"], self._masked)
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        # A rule may copy a masked fact into its result ('pharmacist ' + pin), and an error message may quote it cut
        # short (its first or last characters): scrub it, and such pieces of it, wherever they show.
        for secret in sorted(secrets, key=len, reverse=True):
            line = scrub(line, secret)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._owns_stream:
            self._stream.close()


def mask(facts: dict[str, Any], masked: frozenset[str]) -> dict[str, Any]:
    """A copy of facts with every masked name (or dotted path) replaced by MASK; facts itself is not changed."""
    if not masked:
        return facts
    return _mask_level(facts, masked, "")


MIN_SCRUBBED_LENGTH = 4  # shorter masked values (a digit, "yes") are masked as facts but not hunted in results
PIECE_LENGTH = 12  # a run of at least this many of a masked value's first (or last) characters is scrubbed too


def scrub(line: str, secret: str) -> str:
    """`line` with every occurrence of `secret` masked, and of any piece of it that starts as it starts or ends as it
    ends and is at least PIECE_LENGTH long (what an error message that shortens a value leaves of it)."""
    line = line.replace(secret, MASK)
    if len(secret) <= PIECE_LENGTH:
        return line
    return _scrub_suffixes(_scrub_prefixes(line, secret), secret)


def _scrub_prefixes(line: str, secret: str) -> str:
    head = secret[:PIECE_LENGTH]
    out, position = [], 0
    found = line.find(head)
    while found >= 0:
        end = found + PIECE_LENGTH
        while end < len(line) and end - found < len(secret) and line[end] == secret[end - found]:
            end += 1
        out += [line[position:found], MASK]
        position = end
        found = line.find(head, end)
    return "".join(out) + line[position:]


def _scrub_suffixes(line: str, secret: str) -> str:
    reversed_line = _scrub_prefixes(line[::-1], secret[::-1])
    return reversed_line[::-1]  # MASK reads the same both ways


def masked_values(facts: dict[str, Any], masked: frozenset[str]) -> set[str]:
    """The text of every scalar under a masked name, as it appears inside a JSON string (long enough to scrub)."""
    found: set[str] = set()
    _collect_masked(facts, masked, "", found, inside=False)
    return {json.dumps(value, ensure_ascii=False)[1:-1] for value in found if len(value) >= MIN_SCRUBBED_LENGTH}


def _collect_masked(value: Any, masked: frozenset[str], path: str, found: set[str], inside: bool) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            _collect_masked(item, masked, child, found, inside or key in masked or child in masked)
    elif isinstance(value, list):
        for item in value:
            _collect_masked(item, masked, path, found, inside)
    elif inside and value is not None and not isinstance(value, bool):
        found.add(str(value))


def _mask_level(level: dict[str, Any], masked: frozenset[str], prefix: str) -> dict[str, Any]:
    result = {}
    for key, value in level.items():
        path = prefix + key
        if key in masked or path in masked:
            result[key] = MASK
        else:
            result[key] = _mask_value(value, masked, path)
    return result


def _mask_value(value: Any, masked: frozenset[str], path: str) -> Any:
    """Maps inside lists are masked too: `patients: [{pin: ...}]` masks `pin` and `patients.pin` in each element."""
    if isinstance(value, dict):
        return _mask_level(value, masked, path + ".")
    if isinstance(value, list):
        return [_mask_value(item, masked, path) for item in value]
    return value


def now_iso() -> str:
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
