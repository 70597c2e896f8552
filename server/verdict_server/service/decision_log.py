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
        # A rule may copy a masked fact into its result ('pharmacist ' + pin): scrub it wherever it shows.
        for secret in sorted(secrets, key=len, reverse=True):
            line = line.replace(secret, MASK)
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
        elif isinstance(value, dict):
            result[key] = _mask_level(value, masked, path + ".")
        else:
            result[key] = value
    return result


def now_iso() -> str:
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
