"""Running a conformance vector (ql-spec §14) through a bare ql.Engine(): shared by the QL conformance tests.

`outcome(case)` is None when QL answers what the vector expects, else a sentence saying what went wrong.
`REPORT` collects, per test module, how the QLExpress oracle vectors came out, for the terminal summary
(tests/ql/conftest.py).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from verdict_server import ql
from verdict_server.ql import runtime

ENGINE = ql.Engine()
REPORT: dict[str, Any] = {}


def evaluate(case: dict[str, Any]) -> Any:
    options = case.get("options", {})
    program = ENGINE.compile(
        case["expr"],
        strict_newlines=options.get("strictNewLines", True),
        interpolation=options.get("interpolationMode", "SCRIPT").lower(),
    )
    return program.run(
        case["context"],
        precise=options.get("precise", False),
        avoid_null_pointer=options.get("avoidNullPointer", False),
        short_circuit=not options.get("shortCircuitDisable", False),
        timeout_ms=options.get("timeoutMillis"),
    )


def same_value(actual: Any, expected: Any, approx: bool) -> bool:
    """JSON expectation against a QL value: numbers by value (Decimal exactly, `approx` within 1e-9), booleans and
    null by identity, lists and maps element by element."""
    if expected is None or isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, int | float):
        if not runtime.is_number(actual):
            return False
        if approx:
            return math.isclose(float(actual), expected, rel_tol=1e-9)
        return _exact(actual) == _exact(expected)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same_value(a, e, approx) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same_value(actual[k], expected[k], approx) for k in expected)
        )
    return type(actual) is str and actual == expected


def _exact(number: int | float | Decimal) -> Decimal:
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def outcome(case: dict[str, Any]) -> str | None:
    """None when the vector passes, else what went wrong."""
    try:
        actual = evaluate(case)
    except ql.QLError as error:
        if "expect_error" not in case:
            return f"expected {case['expect']!r}, got {error.code}: {error.reason}"
        expected_code = case.get("error_code")
        if expected_code and error.code != expected_code:
            return f"expected error {expected_code}, got {error.code}: {error.reason}"
        if case["expect_error"] == "parse" and not isinstance(error, ql.QLSyntaxError):
            return f"expected a syntax error, got {type(error).__name__}"
        return None
    if "expect_error" in case:
        return f"expected error {case.get('error_code')}, got {actual!r}"
    if not same_value(actual, case["expect"], bool(case.get("approx"))):
        return f"expected {case['expect']!r}, got {actual!r}"
    java_type = case.get("java_type")
    if java_type and runtime.type_name(actual) != java_type:
        return f"expected a {java_type}, got a {runtime.type_name(actual)} ({actual!r})"
    return None
