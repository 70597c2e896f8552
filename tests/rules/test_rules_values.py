"""Results are caller-owned: no answer may share a mutable object with the compiled rule set or another answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from verdict_server.rules.values import MAX_RESULT_DEPTH, NotPlain, deep_copy, literal_result, plain


@pytest.mark.parametrize("value", [None, True, 3, 2.5, Decimal("1.10"), "HIDE"])
def test_a_scalar_literal_is_returned_as_is(value):
    assert literal_result(value)() is value


@pytest.mark.parametrize(
    "value",
    [
        {"action": "HIDE", "reason": "otc"},
        [1, 2, 3],
        {"action": "HIDE", "tags": ["a", "b"], "meta": {"level": 1}},
        [{"a": 1}, [2, [3]]],
    ],
)
def test_every_call_of_a_literal_gives_an_equal_fresh_copy(value):
    make = literal_result(value)
    first, second = make(), make()
    assert first == value and second == value
    assert first is not value and first is not second
    _mutate_everything(first)
    assert make() == value, "changing one answer must not change later answers"


def _mutate_everything(value):
    if isinstance(value, dict):
        for key in list(value):
            _mutate_everything(value[key])
            value[key] = "changed"
        value["added"] = True
    elif isinstance(value, list):
        for item in value:
            _mutate_everything(item)
        value.append("added")


def test_deep_copy_shares_no_container():
    value = {"a": [1, {"b": [2]}]}
    copied = deep_copy(value)
    assert copied == value
    assert copied["a"] is not value["a"] and copied["a"][1]["b"] is not value["a"][1]["b"]


def test_plain_rebuilds_containers_and_turns_tuples_into_lists():
    shared = [1, 2]
    result = plain({"list": shared, "pair": (1, "x"), "nested": {"d": Decimal("0.1")}})
    assert result == {"list": [1, 2], "pair": [1, "x"], "nested": {"d": Decimal("0.1")}}
    assert result["list"] is not shared


def test_plain_turns_scalar_subclasses_into_the_plain_type():
    class Flag(int):
        pass

    class Text(str):
        pass

    result = plain([Flag(3), Text("x"), True])
    assert result == [3, "x", True]
    assert [type(item) for item in result] == [int, str, bool]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (lambda: 1, "not a JSON-like value"),
        ({1: "one"}, "is not a string"),
        ({"s": {1, 2}}, "not a JSON-like value"),
    ],
)
def test_plain_refuses_values_that_are_not_json_like(value, message):
    with pytest.raises(NotPlain, match=message):
        plain(value)


def test_plain_refuses_results_nested_too_deep_including_a_list_that_holds_itself():
    deep: list = []
    current = deep
    for _ in range(MAX_RESULT_DEPTH + 1):
        current.append([])
        current = current[0]
    with pytest.raises(NotPlain, match="deeper"):
        plain(deep)
    looped: list = []
    looped.append(looped)
    with pytest.raises(NotPlain, match="deeper"):
        plain(looped)


def test_plain_accepts_nesting_up_to_the_limit():
    value: list = []
    current = value
    for _ in range(MAX_RESULT_DEPTH - 1):
        current.append([])
        current = current[0]
    assert plain(value) == value


def test_a_literal_does_not_follow_later_changes_of_the_document_value():
    value = {"action": "HIDE", "tags": ["a"]}
    make = literal_result(value)
    value["action"] = "SHOW"
    value["tags"].append("b")
    assert make() == {"action": "HIDE", "tags": ["a"]}
