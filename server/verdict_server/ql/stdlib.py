"""Verdict's standard library for QL: the functions and methods that `ql.Engine(stdlib=True)` adds.

QLExpress 4 ships no functions at all (`max(1, 2)` is FUNCTION_NOT_FOUND) and, under its default isolation
strategy, no methods on strings, lists or maps. Rule authors need a few, so Verdict adds a small, safe set:

- FUNCTIONS: name -> callable taking the QL arguments positionally.
- METHODS: method name -> callable taking the receiver first, then the QL arguments.

Every callable takes and returns plain QL values only (None, bool, int, float, Decimal, str, list, dict), never a
Python host object, and fails only with QLRuntimeError: INVALID_ARGUMENT for a bad argument (the message names the
function and the argument), METHOD_NOT_FOUND when a method does not exist for the receiver's type. Results respect
the size caps below, and regular expressions go through the bounded matcher at the end of this module.

The reference for users, with every signature and example, is docs/ql-stdlib.md.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import hashlib
import math
import re
import time
import warnings
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import errors
from .budget import charge, charge_string, charge_value
from .errors import QLRuntimeError
from .runtime import MAX_LIST_LENGTH, MAX_STRING_LENGTH, QLFunction, catchable, index_of_equal, type_name

# ---------------------------------------------------------------------------------------------------------------------
# Argument checking: every failure names the function (or method) and the argument.


def _invalid(name: str, message: str) -> QLRuntimeError:
    return QLRuntimeError(f"{name}: {message}", code=errors.INVALID_ARGUMENT)


def _type_name(value: Any) -> str:
    """Types are named as everywhere else in QL errors: the Java class (`Integer`, `String`, `List`, ...)."""
    if callable(value) and not isinstance(value, type) and not isinstance(value, QLFunction):
        return "Function"  # a host function
    return type_name(value)


def _check_arity(name: str, args: tuple[Any, ...], least: int, most: int) -> None:
    if not least <= len(args) <= most:
        expected = str(least) if least == most else f"{least} to {most}"
        raise _invalid(name, f"expects {expected} argument(s), got {len(args)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _need_number(name: str, position: str, value: Any) -> int | float | Decimal:
    if not _is_number(value):
        raise _invalid(name, f"{position} must be a number, got {_type_name(value)}")
    return value


def _need_int(name: str, position: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(name, f"{position} must be an integer, got {_type_name(value)}")
    return value


def _need_str(name: str, position: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid(name, f"{position} must be a string, got {_type_name(value)}")
    return value


def _need_callable(name: str, position: str, value: Any) -> Callable[..., Any]:
    if not callable(value) or isinstance(value, type):
        raise _invalid(name, f"{position} must be a lambda, got {_type_name(value)}")
    return value


def _checked_string(name: str, value: str) -> str:
    if len(value) > MAX_STRING_LENGTH:
        raise _invalid(name, f"result longer than {MAX_STRING_LENGTH} characters")
    return charge_string(value)


def _check_list_length(name: str, length: int) -> None:
    if length > MAX_LIST_LENGTH:
        raise _invalid(name, f"result longer than {MAX_LIST_LENGTH} elements")


# ---------------------------------------------------------------------------------------------------------------------
# Numbers: max, min, abs, round, floor, ceil.


def _extremum(name: str, args: tuple[Any, ...], pick_left: Callable[[Any, Any], bool]) -> Any:
    values = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not values:
        raise _invalid(name, "needs at least one value")
    charge(len(values))
    if all(_is_number(v) for v in values):
        if any(isinstance(v, float) and math.isnan(v) for v in values):
            raise _invalid(name, "cannot order NaN")
    elif not all(isinstance(v, str) for v in values):
        kinds = sorted({_type_name(v) for v in values})
        raise _invalid(name, f"values must be all numbers or all strings, got {', '.join(kinds)}")
    best = values[0]
    for value in values[1:]:
        if not pick_left(best, value):
            best = value
    return best


def ql_max(*args: Any) -> Any:
    """max(a, b, ...) or max(list): the largest number (or string); ties keep the first."""
    return _extremum("max", args, lambda best, value: not _less(best, value))


def ql_min(*args: Any) -> Any:
    """min(a, b, ...) or min(list): the smallest number (or string); ties keep the first."""
    return _extremum("min", args, lambda best, value: not _less(value, best))


def _less(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, Decimal):
        return Decimal(repr(left)) < right if math.isfinite(left) else left < 0
    if isinstance(left, Decimal) and isinstance(right, float):
        return left < Decimal(repr(right)) if math.isfinite(right) else right > 0
    return left < right


def ql_abs(*args: Any) -> Any:
    """abs(x): the absolute value, of the same kind as x."""
    _check_arity("abs", args, 1, 1)
    return abs(_need_number("abs", "argument 1", args[0]))


_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def ql_round(*args: Any) -> Any:
    """round(x) -> integer, round(x, scale) -> same kind as x; both HALF_UP (halves away from zero)."""
    _check_arity("round", args, 1, 2)
    value = _need_number("round", "argument 1 (x)", args[0])
    if len(args) == 1:
        return _to_long("round", _quantize("round", value, 0, decimal.ROUND_HALF_UP))
    scale = _need_int("round", "argument 2 (scale)", args[1])
    if not -32 <= scale <= 32:
        raise _invalid("round", "argument 2 (scale) must be between -32 and 32")
    rounded = _quantize("round", value, scale, decimal.ROUND_HALF_UP)
    if isinstance(value, int):
        return int(rounded)
    if isinstance(value, float):
        return float(rounded)
    return rounded


def ql_floor(*args: Any) -> Any:
    """floor(x): the largest integral value <= x, of the same kind as x (Decimal stays exact)."""
    return _integral("floor", args, decimal.ROUND_FLOOR, math.floor)


def ql_ceil(*args: Any) -> Any:
    """ceil(x): the smallest integral value >= x, of the same kind as x (Decimal stays exact)."""
    return _integral("ceil", args, decimal.ROUND_CEILING, math.ceil)


def _integral(name: str, args: tuple[Any, ...], rounding: str, float_fn: Callable[[float], int]) -> Any:
    _check_arity(name, args, 1, 1)
    value = _need_number(name, "argument 1", args[0])
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if not math.isfinite(value) else float(float_fn(value))
    return _quantize(name, value, 0, rounding)


def _quantize(name: str, value: int | float | Decimal, scale: int, rounding: str) -> Decimal:
    """`value` rounded to `scale` fractional digits, exactly (floats go through their shortest text, like Java)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _invalid(name, f"cannot round {value!r}")
        exact = Decimal(repr(value))
    else:
        exact = Decimal(value)
    if not exact.is_finite():
        raise _invalid(name, f"cannot round {exact}")
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -scale:
        return exact  # already has no more digits than asked for
    digits = len(exact.as_tuple().digits) + abs(scale) + 2
    return exact.quantize(Decimal(1).scaleb(-scale), rounding=rounding, context=decimal.Context(prec=digits))


def _to_long(name: str, value: Decimal) -> int:
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise _invalid(name, "result is outside the long range")
    return int(value)


# ---------------------------------------------------------------------------------------------------------------------
# Sizes.


def ql_len(*args: Any) -> int:
    """len(x) / size(x): characters of a string, elements of a list, entries of a map."""
    _check_arity("len", args, 1, 1)
    value = args[0]
    if isinstance(value, str | list | dict):
        return len(value)
    raise _invalid("len", f"argument 1 must be a string, list or map, got {_type_name(value)}")


# ---------------------------------------------------------------------------------------------------------------------
# Time. A point in time is an int: milliseconds since 1970-01-01T00:00:00Z. Functions that take a time also accept
# an ISO-8601 string ('2026-11-25' or '2026-11-25T10:00:00+08:00') and read it as parseDate/parseDateTime would.

_MILLIS_PER_DAY = 86_400_000
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})",
    re.ASCII,
)
_MIN_MILLIS = -62135596800000  # 0001-01-01T00:00:00Z
_MAX_MILLIS = 253402300799999  # 9999-12-31T23:59:59.999Z


def ql_now(*args: Any) -> int:
    """now(): the current time in epoch milliseconds."""
    _check_arity("now", args, 0, 0)
    return time.time_ns() // 1_000_000


def ql_today(*args: Any) -> int:
    """today(): the start of the current UTC day in epoch milliseconds."""
    _check_arity("today", args, 0, 0)
    now = time.time_ns() // 1_000_000
    return now - now % _MILLIS_PER_DAY


def ql_parse_date(*args: Any) -> int:
    """parseDate('2026-11-25'): midnight UTC of that day in epoch milliseconds."""
    _check_arity("parseDate", args, 1, 1)
    return _parse_date("parseDate", _need_str("parseDate", "argument 1", args[0]))


def ql_parse_date_time(*args: Any) -> int:
    """parseDateTime('2026-11-25T10:00:00Z'): epoch milliseconds; the offset (Z or +08:00) is required."""
    _check_arity("parseDateTime", args, 1, 1)
    return _parse_date_time("parseDateTime", _need_str("parseDateTime", "argument 1", args[0]))


def _parse_date(name: str, text: str) -> int:
    match = _DATE.fullmatch(text) if len(text) == 10 else None
    if match is None:
        raise _invalid(name, f"expected a date like '2026-11-25', got {text[:40]!r}")
    try:
        day = _dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise _invalid(name, f"{text!r} is not a valid date ({exc})") from None
    return (day - _EPOCH.date()).days * _MILLIS_PER_DAY


def _parse_date_time(name: str, text: str) -> int:
    match = _DATE_TIME.fullmatch(text) if len(text) <= 40 else None
    if match is None:
        raise _invalid(
            name,
            f"expected a date-time like '2026-11-25T10:00:00Z' or '...+08:00' (offset required), got {text[:40]!r}",
        )
    year, month, day, hour, minute = (int(match[i]) for i in range(1, 6))
    second = int(match[6] or 0)
    millis = int((match[7] or "0").ljust(3, "0")[:3])
    try:
        moment = _dt.datetime(year, month, day, hour, minute, second, tzinfo=_dt.UTC)
    except ValueError as exc:
        raise _invalid(name, f"{text!r} is not a valid date-time ({exc})") from None
    offset = _offset_minutes(match[8])
    if abs(offset) > 18 * 60:
        raise _invalid(name, f"offset {match[8]} is outside -18:00..+18:00")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + millis - offset * 60_000


def _offset_minutes(text: str) -> int:
    if text == "Z":
        return 0
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    return -minutes if text[0] == "-" else minutes


def _time_value(name: str, position: str, value: Any) -> int:
    """A time argument: epoch milliseconds (an integral number) or an ISO date / date-time string."""
    if isinstance(value, str):
        return _parse_date(name, value) if len(value) == 10 else _parse_date_time(name, value)
    if _is_number(value) and not isinstance(value, int):
        if not math.isfinite(value) or value != int(value):
            raise _invalid(name, f"{position} must be whole epoch milliseconds, got {value}")
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(name, f"{position} must be epoch milliseconds or an ISO date string, got {_type_name(value)}")
    if not _MIN_MILLIS <= value <= _MAX_MILLIS:
        raise _invalid(name, f"{position} is outside years 1..9999")
    return value


def ql_date_compare(*args: Any) -> int:
    """dateCompare(a, b): -1, 0 or 1 as time a is before, equal to or after time b."""
    _check_arity("dateCompare", args, 2, 2)
    a = _time_value("dateCompare", "argument 1", args[0])
    b = _time_value("dateCompare", "argument 2", args[1])
    return (a > b) - (a < b)


def ql_is_before(*args: Any) -> bool:
    """isBefore(a, b): time a is strictly before time b."""
    _check_arity("isBefore", args, 2, 2)
    return _time_value("isBefore", "argument 1", args[0]) < _time_value("isBefore", "argument 2", args[1])


def ql_is_after(*args: Any) -> bool:
    """isAfter(a, b): time a is strictly after time b."""
    _check_arity("isAfter", args, 2, 2)
    return _time_value("isAfter", "argument 1", args[0]) > _time_value("isAfter", "argument 2", args[1])


def ql_days_between(*args: Any) -> int:
    """daysBetween(a, b): whole days from a to b, truncated toward zero (like Java's ChronoUnit.DAYS.between)."""
    _check_arity("daysBetween", args, 2, 2)
    a = _time_value("daysBetween", "argument 1", args[0])
    b = _time_value("daysBetween", "argument 2", args[1])
    days = abs(b - a) // _MILLIS_PER_DAY
    return days if b >= a else -days


def ql_add_days(*args: Any) -> int:
    """addDays(t, n): time t plus n days (n may be negative), in epoch milliseconds."""
    _check_arity("addDays", args, 2, 2)
    moment = _time_value("addDays", "argument 1", args[0])
    days = _need_int("addDays", "argument 2 (days)", args[1])
    if abs(days) > 4_000_000:  # more than years 1..9999 can span; keeps the arithmetic small
        raise _invalid("addDays", "result is outside years 1..9999")
    return _time_value("addDays", "result", moment + days * _MILLIS_PER_DAY)


def ql_format_date(*args: Any) -> str:
    """formatDate(t): the UTC date of time t as 'YYYY-MM-DD'."""
    _check_arity("formatDate", args, 1, 1)
    return _utc(_time_value("formatDate", "argument 1", args[0])).strftime("%Y-%m-%d")


def ql_format_date_time(*args: Any) -> str:
    """formatDateTime(t): time t as UTC ISO-8601 with milliseconds, 'YYYY-MM-DDTHH:MM:SS.sssZ'."""
    _check_arity("formatDateTime", args, 1, 1)
    moment = _time_value("formatDateTime", "argument 1", args[0])
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment % 1000:03d}Z"


def _utc(millis: int) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(milliseconds=millis)


# ---------------------------------------------------------------------------------------------------------------------
# versionCompare: app version gating.

_VERSION = re.compile(
    r"[vV]?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)
_MAX_VERSION_LENGTH = 128


def ql_version_compare(*args: Any) -> int:
    """versionCompare(a, b): -1, 0 or 1; dotted parts compare as numbers, missing parts are 0, '-pre' sorts first."""
    _check_arity("versionCompare", args, 2, 2)
    left = _parse_version(_need_str("versionCompare", "argument 1", args[0]), "argument 1")
    right = _parse_version(_need_str("versionCompare", "argument 2", args[1]), "argument 2")
    return _compare_versions(left, right)


def _parse_version(text: str, position: str) -> tuple[list[int], list[str] | None]:
    match = _VERSION.fullmatch(text) if len(text) <= _MAX_VERSION_LENGTH else None
    if match is None:
        raise _invalid(
            "versionCompare",
            f"{position} must look like '2.6.8', '2.6.8-beta.1' or '2.6.8+build', got {text[:_MAX_VERSION_LENGTH]!r}",
        )
    numbers = [int(part) for part in match[1].split(".")]
    prerelease = match[2].split(".") if match[2] else None
    return numbers, prerelease


def _compare_versions(left: tuple[list[int], list[str] | None], right: tuple[list[int], list[str] | None]) -> int:
    (left_numbers, left_pre), (right_numbers, right_pre) = left, right
    width = max(len(left_numbers), len(right_numbers))
    left_numbers = left_numbers + [0] * (width - len(left_numbers))
    right_numbers = right_numbers + [0] * (width - len(right_numbers))
    if left_numbers != right_numbers:
        return -1 if left_numbers < right_numbers else 1
    if left_pre is None or right_pre is None:
        # A release is newer than any of its pre-releases: 2.5.0-beta < 2.5.0.
        return (left_pre is None) - (right_pre is None)
    return _compare_prerelease(left_pre, right_pre)


def _compare_prerelease(left: list[str], right: list[str]) -> int:
    """Semantic Versioning 2.0.0 §11: numeric identifiers by value and below alphanumeric ones, then by count."""
    for a, b in zip(left, right, strict=False):
        if a == b:
            continue
        if a.isdigit() and b.isdigit():
            return -1 if int(a) < int(b) else 1
        if a.isdigit() != b.isdigit():
            return -1 if a.isdigit() else 1
        return -1 if a < b else 1
    return (len(left) > len(right)) - (len(left) < len(right))


# ---------------------------------------------------------------------------------------------------------------------
# hashBucket: stable bucketing shared with routing's gray rules.

_MAX_BUCKETS = 2**31 - 1


def hash_bucket(key: str, buckets: int) -> int:
    """The bucket of `key` in [0, buckets): SHA-256 of the UTF-8 key, first 8 bytes as an unsigned big-endian
    integer, modulo `buckets`. Identical in every process, machine and language (see docs/ql-stdlib.md for Java).

    Raises ValueError when `buckets` is not in 1..2^31-1 and TypeError when `key` is not a string.
    """
    if not isinstance(key, str):
        raise TypeError(f"hash_bucket key must be a string, got {type(key).__name__}")
    if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= _MAX_BUCKETS:
        raise ValueError(f"hash_bucket buckets must be an integer in 1..{_MAX_BUCKETS}, got {buckets!r}")
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def ql_hash_bucket(*args: Any) -> int:
    """hashBucket(key, buckets): see hash_bucket; an integer key is hashed as its decimal text."""
    _check_arity("hashBucket", args, 2, 2)
    key, buckets = args
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    key = _need_str("hashBucket", "argument 1 (key)", key)
    buckets = _need_int("hashBucket", "argument 2 (buckets)", buckets)
    if not 1 <= buckets <= _MAX_BUCKETS:
        raise _invalid("hashBucket", f"argument 2 (buckets) must be in 1..{_MAX_BUCKETS}, got {buckets}")
    return hash_bucket(key, buckets)


# ---------------------------------------------------------------------------------------------------------------------
# Bounded regular expressions (String.matches and String.split).
#
# Python's `re` backtracks and cannot be interrupted, so a pattern is accepted only when its worst case is bounded:
# - the pattern is at most 256 characters and uses Java-compatible syntax (no backreferences, no conditionals);
# - no quantifier that repeats more than once contains another variable quantifier or an alternation
#   (`(a+)+`, `(a|ab)*` are refused; these are the exponential cases);
# - the worst-case step count, estimated as the product over variable quantifiers of min(span, n + 1), over
#   alternations of their branch count, and (for split, which searches) n + 1 for the start positions, must stay
#   within _REGEX_STEP_BUDGET for the actual subject length n. Polynomial blow-ups like `.*a.*a.*a.*b` on a long
#   subject are therefore refused instead of run.
# Character classes follow Java's defaults: \d \w \s \b are ASCII only (re.ASCII).

_MAX_PATTERN_LENGTH = 256
_REGEX_STEP_BUDGET = 10**8
_REGEX_CACHE_SIZE = 256


class _RegexRefused(Exception):
    """A pattern the bounded matcher will not run; carries the reason shown to the rule author."""


@functools.lru_cache(maxsize=_REGEX_CACHE_SIZE)
def _compile_bounded(pattern: str) -> tuple[re.Pattern[str] | None, list[int], int]:
    """(compiled, spans of variable quantifiers, product of alternation widths); compiled is None for a literal."""
    if len(pattern) > _MAX_PATTERN_LENGTH:
        raise _RegexRefused(f"pattern longer than {_MAX_PATTERN_LENGTH} characters")
    try:
        with warnings.catch_warnings():
            # Python warns on Java class syntax it reads differently (`[a-z&&[^x]]`, nested sets): refuse those.
            warnings.simplefilter("error")
            compiled = re.compile(pattern, re.ASCII)
            tree = re._parser.parse(pattern, re.ASCII)  # type: ignore[attr-defined]
    except (re.error, FutureWarning, DeprecationWarning, RecursionError, OverflowError) as exc:
        raise _RegexRefused(f"unsupported or invalid pattern ({exc})") from None
    spans: list[int] = []
    branch_width = [1]
    _walk_regex(tree, spans, branch_width, repeated=False)
    is_literal = not tree.state.flags & re.IGNORECASE and all(
        op == re._constants.LITERAL  # type: ignore[attr-defined]
        for op, _ in tree
    )
    return (None if is_literal else compiled), spans, branch_width[0]


def _walk_regex(items: Any, spans: list[int], branch_width: list[int], repeated: bool) -> None:
    constants = re._constants  # type: ignore[attr-defined]
    for op, av in items:
        if op in (constants.GROUPREF, constants.GROUPREF_EXISTS):
            raise _RegexRefused("backreferences and conditional groups are not supported")
        if op in (constants.MAX_REPEAT, constants.MIN_REPEAT, constants.POSSESSIVE_REPEAT):
            low, high, body = av
            variable = high != low
            if repeated and variable:
                raise _RegexRefused("nested quantifiers like (a+)+ can backtrack exponentially")
            if variable:
                spans.append(_MAX_PATTERN_LENGTH * 4096 if high == constants.MAXREPEAT else high - low)
            _walk_regex(body, spans, branch_width, repeated or high > 1)
        elif op == constants.BRANCH:
            if repeated:
                raise _RegexRefused("alternation inside a repeated group like (a|ab)* can backtrack exponentially")
            branch_width[0] = min(branch_width[0] * len(av[1]), _REGEX_STEP_BUDGET)
            for branch in av[1]:
                _walk_regex(branch, spans, branch_width, repeated)
        elif op in (constants.SUBPATTERN, constants.ATOMIC_GROUP):
            _walk_regex(av[-1] if op == constants.SUBPATTERN else av, spans, branch_width, repeated)
        elif op in (constants.ASSERT, constants.ASSERT_NOT):
            _walk_regex(av[1], spans, branch_width, repeated)


def _bounded_regex(name: str, pattern: str, subject: str, searching: bool) -> re.Pattern[str] | None:
    """The compiled pattern after the safety checks (None: a literal, to be handled with str operations)."""
    try:
        compiled, spans, branch_width = _compile_bounded(pattern)
    except _RegexRefused as exc:
        raise _invalid(name, f"regex {pattern[:60]!r} refused: {exc}") from None
    if compiled is None:
        return None
    steps = branch_width * (len(subject) + 1 if searching else 1)
    for span in spans:
        steps *= min(span, len(subject)) + 1
        if steps > _REGEX_STEP_BUDGET:
            raise _invalid(
                name,
                f"regex {pattern[:60]!r} is too expensive for a {len(subject)}-character string "
                "(too many variable quantifiers for this length; simplify the pattern)",
            )
    charge(steps)  # the matcher's worst case, so that the run's clock is read after expensive matches
    return compiled


# ---------------------------------------------------------------------------------------------------------------------
# Methods. Each takes the receiver first. A receiver of the wrong type means the method does not exist for it.


def _no_method(name: str, receiver: Any) -> QLRuntimeError:
    return QLRuntimeError(f"method {name}() not found on {_type_name(receiver)}", code=errors.METHOD_NOT_FOUND)


# Java's String.trim() removes every character up to U+0020, not Unicode whitespace.
_JAVA_TRIM = "".join(chr(code) for code in range(0x21))


def _string_only(name: str, receiver: Any) -> str:
    if not isinstance(receiver, str):
        raise _no_method(name, receiver)
    return receiver


def m_starts_with(receiver: Any, *args: Any) -> bool:
    """s.startsWith(prefix[, offset])"""
    if type(receiver) is str and len(args) == 1 and type(args[0]) is str:  # the common case, checked cheaply
        return receiver.startswith(args[0])
    text = _string_only("startsWith", receiver)
    _check_arity("startsWith", args, 1, 2)
    prefix = _need_str("startsWith", "argument 1 (prefix)", args[0])
    if len(args) == 1:
        return text.startswith(prefix)
    offset = _need_int("startsWith", "argument 2 (offset)", args[1])
    return 0 <= offset <= len(text) and text.startswith(prefix, offset)


def m_ends_with(receiver: Any, *args: Any) -> bool:
    """s.endsWith(suffix)"""
    if type(receiver) is str and len(args) == 1 and type(args[0]) is str:  # the common case, checked cheaply
        return receiver.endswith(args[0])
    text = _string_only("endsWith", receiver)
    _check_arity("endsWith", args, 1, 1)
    return text.endswith(_need_str("endsWith", "argument 1 (suffix)", args[0]))


def m_length(receiver: Any, *args: Any) -> int:
    """s.length(): the number of characters (Unicode code points)."""
    text = _string_only("length", receiver)
    _check_arity("length", args, 0, 0)
    return len(text)


def m_to_upper_case(receiver: Any, *args: Any) -> str:
    """s.toUpperCase()"""
    text = _string_only("toUpperCase", receiver)
    _check_arity("toUpperCase", args, 0, 0)
    return _checked_string("toUpperCase", text.upper())


def m_to_lower_case(receiver: Any, *args: Any) -> str:
    """s.toLowerCase()"""
    text = _string_only("toLowerCase", receiver)
    _check_arity("toLowerCase", args, 0, 0)
    return _checked_string("toLowerCase", text.lower())


def m_trim(receiver: Any, *args: Any) -> str:
    """s.trim(): without leading and trailing characters <= U+0020 (Java's definition)."""
    text = _string_only("trim", receiver)
    _check_arity("trim", args, 0, 0)
    return charge_string(text.strip(_JAVA_TRIM))


def m_substring(receiver: Any, *args: Any) -> str:
    """s.substring(begin[, end]): Java bounds, 0 <= begin <= end <= length, else INDEX_OUT_BOUND."""
    text = _string_only("substring", receiver)
    _check_arity("substring", args, 1, 2)
    begin = _need_int("substring", "argument 1 (begin)", args[0])
    end = _need_int("substring", "argument 2 (end)", args[1]) if len(args) == 2 else len(text)
    if not 0 <= begin <= end <= len(text):
        raise QLRuntimeError(f"substring: begin {begin}, end {end}, length {len(text)}", code=errors.INDEX_OUT_BOUND)
    return charge_string(text[begin:end])


def m_matches(receiver: Any, *args: Any) -> bool:
    """s.matches(regex): the whole string matches the (bounded) regex."""
    text = _string_only("matches", receiver)
    _check_arity("matches", args, 1, 1)
    pattern = _need_str("matches", "argument 1 (regex)", args[0])
    compiled = _bounded_regex("matches", pattern, text, searching=False)
    charge(len(text))
    if compiled is None:
        return text == _literal_text(pattern)
    return compiled.fullmatch(text) is not None


def m_split(receiver: Any, *args: Any) -> list[str]:
    """s.split(regex[, limit]): Java's String.split, trailing empty strings dropped when limit is 0."""
    text = _string_only("split", receiver)
    _check_arity("split", args, 1, 2)
    pattern = _need_str("split", "argument 1 (regex)", args[0])
    limit = _need_int("split", "argument 2 (limit)", args[1]) if len(args) == 2 else 0
    compiled = _bounded_regex("split", pattern, text, searching=True)
    charge(len(text))
    if compiled is None:
        spans = _literal_spans(text, _literal_text(pattern))
    else:
        spans = ((m.start(), m.end()) for m in compiled.finditer(text))
    return _java_split(text, spans, limit)


def _literal_text(pattern: str) -> str:
    return "".join(chr(av) for _, av in re._parser.parse(pattern, re.ASCII))  # type: ignore[attr-defined]


def _literal_spans(text: str, separator: str) -> Any:
    if not separator:
        yield from ((i, i) for i in range(len(text) + 1))
        return
    start = text.find(separator)
    while start != -1:
        yield start, start + len(separator)
        start = text.find(separator, start + len(separator))


def _java_split(text: str, matches: Any, limit: int) -> list[str]:
    """java.util.regex.Pattern.split over the given match spans."""
    parts: list[str] = []
    index = 0
    for start, end in matches:
        if limit > 0 and len(parts) >= limit - 1:
            break
        if index == 0 and start == 0 and end == 0:
            continue  # no empty leading piece for a zero-width match at the beginning
        parts.append(text[index:start])
        index = end
        _check_list_length("split", len(parts))
    if index == 0:
        return charge_value([text])
    parts.append(text[index:])
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    _check_list_length("split", len(parts))
    return charge_value(parts)


def m_index_of(receiver: Any, *args: Any) -> int:
    """s.indexOf(sub[, from]) on strings, l.indexOf(x) on lists; -1 when absent."""
    if isinstance(receiver, list):
        _check_arity("indexOf", args, 1, 1)
        return index_of_equal(receiver, args[0])
    text = _string_only("indexOf", receiver)
    _check_arity("indexOf", args, 1, 2)
    sub = _need_str("indexOf", "argument 1", args[0])
    start = _need_int("indexOf", "argument 2 (from)", args[1]) if len(args) == 2 else 0
    charge(len(text))
    return text.find(sub, max(start, 0))


def m_contains(receiver: Any, *args: Any) -> bool:
    """s.contains(sub) on strings; l.contains(x) on lists (QL == equality)."""
    if isinstance(receiver, list):
        _check_arity("contains", args, 1, 1)
        return index_of_equal(receiver, args[0]) >= 0
    text = _string_only("contains", receiver)
    _check_arity("contains", args, 1, 1)
    sub = _need_str("contains", "argument 1", args[0])
    charge(len(text))
    return sub in text


def m_is_empty(receiver: Any, *args: Any) -> bool:
    """s.isEmpty(), l.isEmpty(), m.isEmpty()"""
    if not isinstance(receiver, str | list | dict):
        raise _no_method("isEmpty", receiver)
    _check_arity("isEmpty", args, 0, 0)
    return len(receiver) == 0


def m_size(receiver: Any, *args: Any) -> int:
    """l.size(), m.size()"""
    if not isinstance(receiver, list | dict):
        raise _no_method("size", receiver)
    _check_arity("size", args, 0, 0)
    return len(receiver)


def _map_only(name: str, receiver: Any) -> dict[Any, Any]:
    if not isinstance(receiver, dict):
        raise _no_method(name, receiver)
    return receiver


def m_contains_key(receiver: Any, *args: Any) -> bool:
    """m.containsKey(key)"""
    mapping = _map_only("containsKey", receiver)
    _check_arity("containsKey", args, 1, 1)
    return _hashable(args[0]) and args[0] in mapping


def m_keys(receiver: Any, *args: Any) -> list[Any]:
    """m.keys(): the keys as a new list, in insertion order."""
    mapping = _map_only("keys", receiver)
    _check_arity("keys", args, 0, 0)
    _check_list_length("keys", len(mapping))
    return charge_value(list(mapping))


def m_values(receiver: Any, *args: Any) -> list[Any]:
    """m.values(): the values as a new list, in insertion order."""
    mapping = _map_only("values", receiver)
    _check_arity("values", args, 0, 0)
    _check_list_length("values", len(mapping))
    return charge_value(list(mapping.values()))


def m_get(receiver: Any, *args: Any) -> Any:
    """m.get(key[, default]): the value or default (null); l.get(i): Java List.get, 0 <= i < size."""
    if isinstance(receiver, list):
        _check_arity("get", args, 1, 1)
        index = _need_int("get", "argument 1 (index)", args[0])
        if not 0 <= index < len(receiver):
            raise QLRuntimeError(f"get: index {index}, size {len(receiver)}", code=errors.INDEX_OUT_BOUND)
        return receiver[index]
    mapping = _map_only("get", receiver)
    _check_arity("get", args, 1, 2)
    default = args[1] if len(args) == 2 else None
    return mapping.get(args[0], default) if _hashable(args[0]) else default


def _hashable(value: Any) -> bool:
    return not isinstance(value, list | dict)


def _list_only(name: str, receiver: Any) -> list[Any]:
    if not isinstance(receiver, list):
        raise _no_method(name, receiver)
    return receiver


def _lambda_method(name: str, receiver: Any, args: tuple[Any, ...]) -> tuple[list[Any], Callable[..., Any]]:
    """`filter`/`map` take exactly one lambda; QLExpress reports any other call as a method it cannot find."""
    items = _list_only(name, receiver)
    if len(args) != 1 or not callable(args[0]) or isinstance(args[0], type):
        raise QLRuntimeError(
            f"no method {name}({', '.join(_type_name(arg) for arg in args)}) on List", code=errors.METHOD_NOT_FOUND
        )
    return items, args[0]


def _invoke_failed(name: str, reason: str) -> QLRuntimeError:
    return QLRuntimeError(f"error when invoking method '{name}': {reason}", code=errors.INVOKE_METHOD_UNKNOWN_ERROR)


def m_filter(receiver: Any, *args: Any) -> list[Any]:
    """l.filter(x -> cond): a new list of the elements for which the lambda returns true."""
    items, predicate = _lambda_method("filter", receiver, args)
    charge(len(items))
    kept = []
    for item in items:
        try:
            keep = predicate(item)
        except QLRuntimeError as exc:
            if not catchable(exc):
                raise
            raise _invoke_failed("filter", exc.reason) from None
        if keep is not True and keep is not False:
            raise _invoke_failed("filter", f"the lambda must return a Boolean, got {_type_name(keep)}")
        if keep:
            kept.append(item)
    return charge_value(kept)


def m_map(receiver: Any, *args: Any) -> list[Any]:
    """l.map(x -> value): a new list of the lambda's results."""
    items, function = _lambda_method("map", receiver, args)
    charge(len(items))
    try:
        return charge_value([function(item) for item in items])
    except QLRuntimeError as exc:
        if not catchable(exc):
            raise
        raise _invoke_failed("map", exc.reason) from None


def m_join(receiver: Any, *args: Any) -> str:
    """l.join(separator): the string elements joined; a non-string element is INVALID_ARGUMENT."""
    items = _list_only("join", receiver)
    _check_arity("join", args, 1, 1)
    separator = _need_str("join", "argument 1 (separator)", args[0])
    total = len(separator) * max(len(items) - 1, 0)
    charge(len(items))
    for position, item in enumerate(items):
        if not isinstance(item, str):
            raise _invalid("join", f"element {position} must be a string, got {_type_name(item)}")
        total += len(item)
        if total > MAX_STRING_LENGTH:
            raise _invalid("join", f"result longer than {MAX_STRING_LENGTH} characters")
    return charge_string(separator.join(items))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "max": ql_max,
    "min": ql_min,
    "abs": ql_abs,
    "round": ql_round,
    "floor": ql_floor,
    "ceil": ql_ceil,
    "len": ql_len,
    "size": ql_len,
    "now": ql_now,
    "today": ql_today,
    "parseDate": ql_parse_date,
    "parseDateTime": ql_parse_date_time,
    "formatDate": ql_format_date,
    "formatDateTime": ql_format_date_time,
    "dateCompare": ql_date_compare,
    "isBefore": ql_is_before,
    "isAfter": ql_is_after,
    "daysBetween": ql_days_between,
    "addDays": ql_add_days,
    "versionCompare": ql_version_compare,
    "hashBucket": ql_hash_bucket,
}

METHODS: dict[str, Callable[..., Any]] = {
    # strings
    "startsWith": m_starts_with,
    "endsWith": m_ends_with,
    "contains": m_contains,
    "indexOf": m_index_of,
    "length": m_length,
    "toUpperCase": m_to_upper_case,
    "toLowerCase": m_to_lower_case,
    "trim": m_trim,
    "substring": m_substring,
    "split": m_split,
    "matches": m_matches,
    # strings, lists and maps
    "isEmpty": m_is_empty,
    "size": m_size,
    # maps
    "containsKey": m_contains_key,
    "keys": m_keys,
    "values": m_values,
    "get": m_get,
    # lists
    "filter": m_filter,
    "map": m_map,
    "join": m_join,
}
