"""The compiler's inline fast paths never disagree with the runtime helpers they stand in for.

compiler.py answers the common cases inline (double arithmetic with a float on the left, comparisons and equality
with a number literal, `in` a literal list, `!` of a known boolean); everything else goes to the helper. A property
test runs each inline form against its helper over edge values: huge ints, ±0.0, NaN, infinities, null, strings,
Decimals, booleans, lists.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verdict_server import ql
from verdict_server.ql import runtime

ENGINE = ql.Engine()
EDGE_VALUES: list[Any] = [
    *[0, 1, -1, 18, 2**31 - 1, 2**31, 2**53, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 10**400, -(10**400)],
    *[0.0, -0.0, 1.5, -2.5, 18.0, 2.0**53, 1e308, -1e308, math.nan, math.inf, -math.inf],
    *[Decimal("0.1"), Decimal("-0"), Decimal("18"), Decimal("1E+400")],
    *[None, True, False, "", "a", "18", runtime.Char("a"), [1], {"k": 1}],
]
LITERALS = ["0", "1", "-1", "18", "1.5", "0.0", "0.25", "9007199254740991", "9007199254740993", "2147483648"]
ARITHMETIC = {"+": runtime.add, "-": runtime.sub, "*": runtime.mul}
ORDERING = {"<": runtime.lt, "<=": runtime.le, ">": runtime.gt, ">=": runtime.ge}
EQUALITY = {"==": runtime.eq, "!=": runtime.ne}
values = st.sampled_from(EDGE_VALUES)


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "value", call()
    except ql.QLError as error:
        return "error", error.code


def same(fast: tuple[str, Any], slow: tuple[str, Any]) -> bool:
    if fast[0] != slow[0]:
        return False
    a, b = fast[1], slow[1]
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return type(a) is type(b) and a == b


def literal_value(text: str) -> Any:
    return ENGINE.compile(text).run({})


@given(left=values, right=values, op=st.sampled_from(sorted(ARITHMETIC)))
def test_double_arithmetic_inline_matches_the_helper(left: Any, right: Any, op: str) -> None:
    program = ENGINE.compile(f"a {op} b")
    fast = outcome(lambda: program.run({"a": left, "b": right}))
    assert same(fast, outcome(lambda: ARITHMETIC[op](left, right))), (left, op, right, fast)


@given(subject=values, literal=st.sampled_from(LITERALS), op=st.sampled_from(sorted(ORDERING | EQUALITY)))
def test_comparison_with_a_literal_matches_the_helper(subject: Any, literal: str, op: str) -> None:
    helper = (ORDERING | EQUALITY)[op]
    value = literal_value(literal)
    for source, call in (
        (f"a {op} {literal}", lambda: helper(subject, value)),
        (f"{literal} {op} a", lambda: helper(value, subject)),
    ):
        fast = outcome(lambda source=source: ENGINE.compile(source).run({"a": subject}))
        assert same(fast, outcome(call)), (source, subject, fast)


@given(subject=values, items=st.sampled_from(["[1, 2, 18]", "['a', '18']", "[0]"]))
def test_membership_in_a_literal_list_matches_the_helper(subject: Any, items: str) -> None:
    listed = literal_value(items)
    for op, helper in (("in", runtime.in_), ("not_in", runtime.not_in)):
        fast = outcome(lambda op=op: ENGINE.compile(f"a {op} {items}").run({"a": subject}))
        assert same(fast, outcome(lambda helper=helper: helper(subject, listed))), (subject, op, items, fast)


@given(subject=values)
def test_not_of_a_comparison_matches_the_helper(subject: Any) -> None:
    fast = outcome(lambda: ENGINE.compile("!(a == 1)").run({"a": subject}))
    assert same(fast, outcome(lambda: runtime.not_(runtime.eq(subject, 1))))


def test_the_cases_that_used_to_disagree() -> None:
    big = 10**400
    for source in ("1.5 * big", "big * 1.5", "1.5 + big", "big - 1.5"):  # the same error both ways round
        with pytest.raises(ql.QLError) as caught:
            ENGINE.compile(source).run({"big": big})
        assert caught.value.code == ql.errors.INVALID_ARITHMETIC
    assert ENGINE.compile("x > 1").run({"x": math.nan}) is True  # Double.compare: NaN is above everything
    assert ENGINE.compile("x < 0").run({"x": -0.0}) is True
    assert ENGINE.compile("x == 9223372036854775807").run({"x": 9.223372036854776e18}) is True


class HostFailure(Exception):
    pass


@pytest.mark.parametrize(
    ("raised", "code"),
    [(HostFailure("boom"), ql.errors.BIZ_EXCEPTION), (OverflowError("too big"), ql.errors.INVALID_ARITHMETIC)],
)
def test_run_and_program_functions_map_failures_the_same_way(raised: Exception, code: str) -> None:
    def host() -> None:
        raise raised

    engine = ql.Engine()
    engine.add_function("host", host)
    program = engine.compile("function g() { return host() }\ng()")
    with pytest.raises(ql.QLError) as through_run:
        program.run({})
    with pytest.raises(ql.QLError) as through_function:
        program.functions["g"]()
    assert through_run.value.code == through_function.value.code == code


def test_python_source_shows_the_generated_module() -> None:
    program = ENGINE.compile("age >= 18 && city in ['Beijing', 'Shanghai']")
    source = program.python_source()
    assert source.startswith("def _main(")
    assert "_ge(" in source and "_in(" in source  # the helpers behind the inline fast paths
    compile(source, "<python_source>", "exec")  # valid Python a maintainer can paste and run
    arithmetic = ENGINE.compile("price * qty")
    assert "_float" in arithmetic.python_source()
    assert "_float" not in arithmetic.python_source(precise=True)  # precise mode has no inline double arithmetic
