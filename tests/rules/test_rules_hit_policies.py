"""Each hit policy picks the right rules, in the right order, and answers the default when nothing matches."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verdict_server.rules import RuleSetFailure

# Three rules that can all match; listed order a, b, c; priorities b > c > a.
RULES = """\
default: {action: DEFAULT}
rules:
  - id: a
    priority: 1
    when: x > 0
    then: {action: A}
  - id: b
    priority: 30
    when: x > 10
    then_expr: "{action: 'B', x: x}"
  - id: c
    priority: 20
    when: x > 20
    then: {action: C}
"""


def _rule_set(compile_text, hit_policy, on_error="fail"):
    return compile_text(
        f"kind: RuleSet\nname: policy.{hit_policy}\nhit_policy: {hit_policy}\non_error: {on_error}\n{RULES}"
    )


def test_first_takes_the_first_match_in_listed_order(compile_text):
    rule_set = _rule_set(compile_text, "first")
    decision = rule_set.evaluate({"x": 25})
    assert (decision.result, decision.matched_rules) == ({"action": "A"}, ("a",))
    assert rule_set.evaluate({"x": -1}).result == {"action": "DEFAULT"}


def test_priority_takes_the_highest_priority_match(compile_text):
    rule_set = _rule_set(compile_text, "priority")
    assert rule_set.evaluate({"x": 25}).matched_rules == ("b",)
    assert rule_set.evaluate({"x": 25}).result == {"action": "B", "x": 25}
    assert rule_set.evaluate({"x": 5}).matched_rules == ("a",)
    decision = rule_set.evaluate({"x": 0})
    assert (decision.result, decision.matched_rules) == ({"action": "DEFAULT"}, ())


def test_priority_ties_keep_listed_order_and_missing_priority_is_zero(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: ties
        hit_policy: priority
        rules:
          - {id: low, priority: -1, then: low}
          - {id: first-zero, then: first-zero}
          - {id: second-zero, priority: 0, then: second-zero}
          - {id: five-a, priority: 5, when: "flag", then: five-a}
          - {id: five-b, priority: 5, then: five-b}
        """
    )
    assert rule_set.evaluate({"flag": True}).result == "five-a"
    assert rule_set.evaluate({"flag": False}).result == "five-b"
    assert rule_set.evaluate({}).result == "five-b"  # an unknown variable is null, and null counts as false


def test_collect_lists_every_match_in_listed_order(compile_text):
    rule_set = _rule_set(compile_text, "collect")
    decision = rule_set.evaluate({"x": 25})
    assert decision.result == [{"action": "A"}, {"action": "B", "x": 25}, {"action": "C"}]
    assert decision.matched_rules == ("a", "b", "c")
    assert rule_set.evaluate({"x": 15}).result == [{"action": "A"}, {"action": "B", "x": 15}]
    assert rule_set.evaluate({"x": 0}).result == {"action": "DEFAULT"}


def test_unique_answers_the_single_match(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: unique.ok
        hit_policy: unique
        on_error: fail
        default: none
        rules:
          - {id: child, when: "age < 18", then: child}
          - {id: adult, when: "age >= 18 && age < 65", then: adult}
          - {id: senior, when: "age >= 65", then: senior}
        """
    )
    assert [rule_set.evaluate({"age": age}).result for age in (3, 18, 64, 65)] == ["child", "adult", "adult", "senior"]
    assert rule_set.evaluate({"age": 30}).matched_rules == ("adult",)


def test_unique_with_two_matches_is_a_failure_naming_them(compile_text):
    with pytest.raises(RuleSetFailure) as caught:
        _rule_set(compile_text, "unique").evaluate({"x": 15})
    failure = caught.value.failure
    assert failure.code == "UNIQUE_VIOLATION"
    assert "rules 'a', 'b' matched together" in failure.message
    decision = _rule_set(compile_text, "unique", on_error="default").evaluate({"x": 25})
    assert decision.degraded and decision.result == {"action": "DEFAULT"}
    assert decision.error.code == "UNIQUE_VIOLATION" and "'a', 'b', 'c'" in decision.error.message
    assert decision.matched_rules == ()
    assert _rule_set(compile_text, "unique").evaluate({"x": 5}).matched_rules == ("a",)


def test_disabled_rules_never_match(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: disabled
        hit_policy: collect
        rules:
          - {id: switched-off, enabled: false, then: switched-off}
          - {id: switched-on, enabled: true, then: switched-on}
        """
    )
    assert rule_set.evaluate({}).matched_rules == ("switched-on",)
    assert rule_set.evaluate({}).result == ["switched-on"]


def test_a_rule_without_when_always_matches_and_null_results_are_results(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: always
        default: nothing-matched
        rules:
          - id: always
            then: null
        """
    )
    decision = rule_set.evaluate({})
    assert decision.result is None and decision.matched_rules == ("always",)


def test_a_null_condition_counts_as_false(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: nulls
        default: unmatched
        rules:
          - {id: maybe, when: "flag", then: matched}
        """
    )
    assert rule_set.evaluate({"flag": None}).result == "unmatched"
    assert rule_set.evaluate({}).result == "unmatched"
    assert rule_set.evaluate({"flag": True}).result == "matched"


def test_no_default_means_a_null_result(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: nodefault
        rules:
          - {id: never, when: "false", then: 1}
        """
    )
    decision = rule_set.evaluate({})
    assert decision.result is None and not decision.degraded


def test_every_answer_owns_its_result(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: owned
        default: {action: SHOW, tags: [a]}
        constants: {allowed: [1, 2]}
        hit_policy: collect
        rules:
          - {id: literal, when: "x == 1", then: {action: HIDE, tags: [b]}}
          - {id: expr, when: "x == 1", then_expr: "allowed"}
        """
    )
    first = rule_set.evaluate({"x": 1}).result
    first[0]["tags"].append("changed")
    first[1].append(3)
    assert rule_set.evaluate({"x": 1}).result == [{"action": "HIDE", "tags": ["b"]}, [1, 2]]
    default = rule_set.evaluate({"x": 0}).result
    default["tags"].append("changed")
    assert rule_set.evaluate({"x": 0}).result == {"action": "SHOW", "tags": ["a"]}


def test_evaluate_many_answers_each_facts_map_in_order(compile_text):
    rule_set = _rule_set(compile_text, "priority")
    decisions = rule_set.evaluate_many([{"x": 25}, {"x": 5}, {"x": 0}])
    assert [d.matched_rules for d in decisions] == [("b",), ("a",), ()]
    assert rule_set.evaluate_many([]) == []


@given(st.one_of(st.integers(-5, 40), st.none()), st.booleans(), st.booleans())
@settings(max_examples=150, deadline=None)
def test_the_policies_agree_with_each_other_on_any_facts(compile_text_cached, x, flag, other):
    """first = the first of collect's matches, priority = the highest-priority one, unique fails iff several."""
    facts = {"x": x, "flag": flag, "other": other}
    collect = compile_text_cached(POLICY_CHECK.format(hit_policy="collect")).evaluate(facts)
    first = compile_text_cached(POLICY_CHECK.format(hit_policy="first")).evaluate(facts)
    priority = compile_text_cached(POLICY_CHECK.format(hit_policy="priority")).evaluate(facts)
    unique = compile_text_cached(POLICY_CHECK.format(hit_policy="unique")).evaluate(facts)
    matches = collect.matched_rules
    assert first.matched_rules == matches[:1]
    by_priority = sorted(matches, key=lambda rule_id: -PRIORITIES[rule_id])
    assert priority.matched_rules == tuple(by_priority[:1])
    assert unique.degraded == (len(matches) > 1)
    if len(matches) == 1:
        assert unique.matched_rules == matches and unique.result == collect.result[0]
    if matches:
        assert collect.result == [RESULTS[rule_id] for rule_id in matches]
        assert first.result == RESULTS[matches[0]] and priority.result == RESULTS[by_priority[0]]
    else:
        assert first.result == priority.result == collect.result == "default"


PRIORITIES = {"small": 1, "flagged": 7, "big": 7, "either": 3, "null-x": 9}
RESULTS = {"small": "small", "flagged": "flagged", "big": "big", "either": "either", "null-x": "null-x"}
POLICY_CHECK = """\
kind: RuleSet
name: policy.check
hit_policy: {hit_policy}
default: default
on_error: default
rules:
  - {{id: small, priority: 1, when: "x != null && x < 10", then: small}}
  - {{id: flagged, priority: 7, when: "flag", then: flagged}}
  - {{id: big, priority: 7, when: "x != null && x > 30", then: big}}
  - {{id: either, priority: 3, when: "flag || other", then: either}}
  - {{id: null-x, priority: 9, when: "x == null", then: null-x}}
"""
