"""Plain Python <-> google.protobuf.Struct/Value, checked against json_format and through the wire format."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from verdict import from_struct, from_value, to_struct, to_value
from verdict.values import EXACT_INT_LIMIT, MAX_DEPTH

exact_ints = st.integers(min_value=-EXACT_INT_LIMIT, max_value=EXACT_INT_LIMIT)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | exact_ints | finite_floats | st.text()
json_like = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
facts = st.dictionaries(st.text(max_size=8), json_like, max_size=8)


def expected_back(python: Any) -> Any:
    """What the SDK promises to return: integral numbers within ±2**53 as int, tuples as lists."""
    if isinstance(python, float) and python.is_integer() and abs(python) <= EXACT_INT_LIMIT:
        return int(python)
    if isinstance(python, dict):
        return {key: expected_back(value) for key, value in python.items()}
    if isinstance(python, list | tuple):
        return [expected_back(item) for item in python]
    return python


def assert_same(actual: Any, expected: Any) -> None:
    """Equal *and* of the same types all the way down (1 == 1.0 == True in Python, not for callers)."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert actual.keys() == expected.keys()
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for got, wanted in zip(actual, expected, strict=True):
            assert_same(got, wanted)
    else:
        assert actual == expected


@given(facts)
def test_facts_survive_the_wire(mapping: dict[str, Any]) -> None:
    wire = to_struct(mapping).SerializeToString()
    assert_same(from_struct(struct_pb2.Struct.FromString(wire)), expected_back(mapping))


@given(facts)
def test_to_struct_builds_what_json_format_builds(mapping: dict[str, Any]) -> None:
    assert to_struct(mapping) == json_format.ParseDict(mapping, struct_pb2.Struct())


@given(json_like)
def test_values_survive_the_wire(python: Any) -> None:
    wire = to_value(python).SerializeToString()
    assert_same(from_value(struct_pb2.Value.FromString(wire)), expected_back(python))


def test_integral_doubles_come_back_as_int_and_others_as_float() -> None:
    assert_same(from_value(to_value(3.0)), 3)
    assert_same(from_value(to_value(2.5)), 2.5)
    assert_same(from_value(to_value(Decimal("12.50"))), 12.5)
    assert_same(from_value(to_value(float(2**60))), float(2**60))  # beyond exact ints: stays a float
    assert_same(from_value(to_value(True)), True)


def test_empty_containers_stay_containers() -> None:
    value = to_value({"d": {}, "l": []})
    assert value.struct_value.fields["d"].WhichOneof("kind") == "struct_value"
    assert value.struct_value.fields["l"].WhichOneof("kind") == "list_value"
    assert from_value(value) == {"d": {}, "l": []}


def test_an_unset_value_is_none() -> None:
    assert from_value(struct_pb2.Value()) is None


@pytest.mark.parametrize(
    ("python", "error", "message"),
    [
        ({"when": object()}, TypeError, r"facts\.when: a object cannot be sent"),
        ({"a": [1, {2, 3}]}, TypeError, r"facts\.a\[1\]: a set cannot be sent"),
        ({1: "x"}, TypeError, "keys must be strings"),
        ({"n": float("nan")}, ValueError, "not a finite number"),
        ({"n": Decimal("Infinity")}, ValueError, "not a finite number"),
        ({"id": 2**53 + 1}, ValueError, "send it as a string"),
        (["not", "a", "mapping"], TypeError, "must be a mapping"),
    ],
)
def test_values_json_cannot_carry_are_refused_with_their_path(python: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        to_struct(python)


def test_nesting_deeper_than_the_server_accepts_is_refused() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 2):  # the top-level mapping is depth 0, like the server counts
        deep = {"x": deep}
    with pytest.raises(ValueError, match="nested deeper"):
        to_struct(deep)
    shallow: Any = "leaf"
    for _ in range(MAX_DEPTH // 2):
        shallow = {"x": [shallow]}
    assert from_struct(to_struct(shallow)) == shallow
