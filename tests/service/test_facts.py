"""Facts conversion: Struct → plain values for rules, and results back into a Value, without MessageToDict."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct, Value
from hypothesis import given
from hypothesis import strategies as st

from verdict_server.service.facts import FactsError, from_value, select_facts, struct_to_dict, to_value

json_scalars = (
    st.none()
    | st.booleans()
    | st.text(max_size=20)
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def _struct(data: dict) -> Struct:
    struct = Struct()
    struct.update(data)
    return struct


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_struct_to_dict_agrees_with_message_to_dict_up_to_integral_numbers(data: dict) -> None:
    struct = _struct(data)
    assert struct_to_dict(struct) == json_format.MessageToDict(struct)


def test_integral_doubles_become_ints_and_others_stay_floats() -> None:
    facts = struct_to_dict(_struct({"id": 1001, "amount": 12.5, "big": 2.0**60}))
    assert facts == {"id": 1001, "amount": 12.5, "big": 2.0**60}
    assert type(facts["id"]) is int and type(facts["amount"]) is float and type(facts["big"]) is float


def test_select_facts_converts_only_the_names_asked_for() -> None:
    struct = _struct({"a": 1, "b": {"c": [1, 2]}, "z": "unused"})
    assert select_facts(struct, frozenset({"a", "b", "missing"})) == {"a": 1, "b": {"c": [1, 2]}}
    assert "missing" not in struct.fields  # reading did not insert a default entry


@given(json_values)
def test_results_round_trip_through_a_value(value) -> None:
    out = Value()
    to_value(value, out)
    assert from_value(out) == value


def test_results_that_are_not_json_like_are_refused() -> None:
    for bad in (math.nan, math.inf, object(), {1, 2}):
        with pytest.raises(FactsError):
            to_value(bad, Value())
    out = Value()
    to_value(Decimal("0.1"), out)
    assert out.number_value == 0.1
    nested: list = []
    for _ in range(70):
        nested = [nested]
    with pytest.raises(FactsError, match="deeper"):
        to_value(nested, Value())
