"""Results handed to callers: fresh plain values, so no caller can change what another caller (or thread) sees.

A literal result (`then:`, `default:`) is built once at compile time. Handing out the shared object would let one
caller's `result["action"] = ...` leak into every later answer, so each answer gets a copy; the copy is chosen at
compile time so that immutable results (strings, numbers, null) cost nothing and flat maps cost one `dict.copy`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

MAX_RESULT_DEPTH = 64  # a QL result nested deeper than this is refused (it may even be a list that holds itself)
MAX_RESULT_VALUES = 100_000  # ... and one with more values (a value that shares its parts counts them each time)

_SCALAR_TYPES = (type(None), bool, int, float, Decimal, str)


class NotPlain(ValueError):
    """A value that cannot be a decision result (not JSON-like)."""


def literal_result(value: Any) -> Callable[[], Any]:
    """A function that returns a caller-owned copy of a literal document value each time it is called."""
    value = deep_copy(value)  # the compiled rule set must not depend on the document it came from staying unchanged
    if isinstance(value, _SCALAR_TYPES):
        return partial(_same, value)
    if _is_flat(value):
        return value.copy
    return partial(deep_copy, value)


def deep_copy(value: Any) -> Any:
    """A copy of a document value (nested dicts and lists of scalars); much cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {key: deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [deep_copy(item) for item in value]
    return value


def plain(value: Any) -> Any:
    """A QL value as a fresh plain value (None/bool/int/float/Decimal/str/list/dict with str keys).

    Containers are always rebuilt: a QL result may be a constant's list, shared by every evaluation.
    Raises NotPlain for anything else (a lambda, a non-string key, nesting deeper than MAX_RESULT_DEPTH, more than
    MAX_RESULT_VALUES values).
    """
    if type(value) in _SCALAR_TYPES:
        return value
    return _plain(value, 0, [MAX_RESULT_VALUES])


def _plain(value: Any, depth: int, left: list[int]) -> Any:
    if type(value) in _SCALAR_TYPES:
        return value
    left[0] -= len(value) if isinstance(value, dict | list | tuple) else 1
    if left[0] < 0:
        raise NotPlain(f"result holds more than {MAX_RESULT_VALUES} values")
    if depth >= MAX_RESULT_DEPTH:
        raise NotPlain(f"result nests deeper than {MAX_RESULT_DEPTH} levels")
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotPlain(f"result map key {key!r} is not a string")
            result[str(key)] = _plain(item, depth + 1, left)
        return result
    if isinstance(value, list | tuple):
        return [_plain(item, depth + 1, left) for item in value]
    for scalar in (bool, int, float, Decimal, str):  # subclasses (e.g. a QL number type) become the plain type
        if isinstance(value, scalar):
            return scalar(value)
    raise NotPlain(f"result of type {type(value).__name__} is not a JSON-like value")


def _same(value: Any) -> Any:
    return value


def _is_flat(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(item, _SCALAR_TYPES) for item in value.values())
    return isinstance(value, list) and all(isinstance(item, _SCALAR_TYPES) for item in value)
