"""Failures while evaluating: on_error default degrades to the default result, on_error fail raises."""

from __future__ import annotations

import time

import pytest

from verdict_server import ql
from verdict_server.document import load_document
from verdict_server.rules import RuleSetFailure, compile_rule_set


def _failing(compile_text, on_error, rule):
    return compile_text(
        f"""\
        kind: RuleSet
        name: failing
        on_error: {on_error}
        default: {{action: SHOW}}
        rules:
          - {{id: fine, when: "x == 'never'", then: fine}}
          - {rule}
          - {{id: after, then: after}}
        """
    )


def test_on_error_default_answers_the_default_flagged_degraded_with_the_error(compile_text):
    rule_set = _failing(compile_text, "default", '{id: adds, when: "x + 1 > 0", then: adds}')
    decision = rule_set.evaluate({})  # null + 1 is an error in QL
    assert decision.result == {"action": "SHOW"}
    assert decision.degraded and decision.matched_rules == ()
    assert decision.error.rule_id == "adds"
    assert decision.error.code == "INVALID_BINARY_OPERAND"
    assert decision.error.line == 1 and decision.error.column >= 1
    assert rule_set.evaluate({"x": 1}).matched_rules == ("adds",), "the same rule works on good facts"


def test_on_error_fail_raises_with_the_same_failure(compile_text):
    rule_set = _failing(compile_text, "fail", '{id: adds, when: "x + 1 > 0", then: adds}')
    with pytest.raises(RuleSetFailure) as caught:
        rule_set.evaluate({})
    failure = caught.value.failure
    assert (failure.code, failure.rule_id, failure.line) == ("INVALID_BINARY_OPERAND", "adds", 1)
    assert "INVALID_BINARY_OPERAND" in str(caught.value)
    with pytest.raises(RuleSetFailure):
        rule_set.evaluate_many([{"x": 1}, {}])


def test_a_condition_that_is_not_boolean_is_a_failure(compile_text):
    rule_set = _failing(compile_text, "default", '{id: numeric, when: "x", then: numeric}')
    decision = rule_set.evaluate({"x": 5})
    assert decision.degraded
    assert (decision.error.code, decision.error.rule_id) == ("CONDITION_BOOL_REQUIRED", "numeric")
    assert "int 5" in decision.error.message
    assert rule_set.evaluate({"x": True}).matched_rules == ("numeric",)


def test_a_result_that_is_not_json_like_is_a_failure(compile_text):
    rule_set = _failing(compile_text, "fail", '{id: lambda, then_expr: "y -> y + 1"}')
    with pytest.raises(RuleSetFailure) as caught:
        rule_set.evaluate({})
    assert (caught.value.failure.code, caught.value.failure.rule_id) == ("INVALID_RESULT", "lambda")


def test_a_failing_result_expression_is_a_failure_of_its_rule(compile_text):
    rule_set = _failing(compile_text, "default", '{id: expr, then_expr: "{total: amount * 2}"}')
    decision = rule_set.evaluate({})
    assert decision.degraded and decision.error.rule_id == "expr"
    assert rule_set.evaluate({"amount": 2}).result == {"total": 4}


def test_a_looping_rule_is_stopped_by_timeout_ms(compile_text):
    text = """\
        kind: RuleSet
        name: looping
        timeout_ms: 20
        on_error: {on_error}
        default: safe
        rules:
          - id: loops
            when: |
              i = 0
              while (true) {{ i = i + 1 }}
              i > 0
            then: unreachable
        """
    decision = compile_text(text.format(on_error="default")).evaluate({})
    assert decision.result == "safe" and decision.degraded
    assert (decision.error.code, decision.error.rule_id) == ("SCRIPT_TIME_OUT", "loops")
    with pytest.raises(RuleSetFailure) as caught:
        compile_text(text.format(on_error="fail")).evaluate({})
    assert caught.value.failure.code == "SCRIPT_TIME_OUT"


def test_the_timeout_budget_is_shared_by_every_rule_of_one_evaluation():
    # Each rule alone stays well inside 40 ms; three of them together cannot.
    engine = ql.Engine(stdlib=True)
    engine.add_function("pause", lambda ms: time.sleep(ms / 1000) or False)
    doc = load_document(
        """\
kind: RuleSet
name: shared.budget
timeout_ms: 40
default: in-time
rules:
  - {id: a, when: "pause(25)", then: a}
  - {id: b, when: "pause(25)", then: b}
  - {id: c, when: "pause(25)", then: c}
"""
    )
    decision = compile_rule_set(doc, engine, 1).evaluate({}, explain=True)
    assert decision.degraded and decision.error.code == "SCRIPT_TIME_OUT"
    assert decision.error.rule_id in ("b", "c")
    assert decision.trace[0].evaluated and decision.trace[0].error is None


def test_every_evaluation_gets_a_fresh_budget(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: fresh.budget
        timeout_ms: 1000
        rules:
          - id: counts
            then_expr: |
              n = 0
              for (i = 0; i < limit; i++) { n = n + 1 }
              n
        """
    )
    assert [d.result for d in rule_set.evaluate_many([{"limit": 10}] * 50)] == [10] * 50


def test_a_script_failure_names_no_rule(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: script.failing
        default: fallback
        script: x + 1
        """
    )
    decision = rule_set.evaluate({}, explain=True)
    assert decision.degraded and decision.result == "fallback"
    assert decision.error.rule_id == "" and decision.trace == ()


def test_timeout_ms_also_stops_a_loop_inside_a_shared_function(compile_text):
    # The rule's own QL has no loop; the budget must still reach the function it calls.
    decision = compile_text(
        """\
        kind: RuleSet
        name: looping.function
        timeout_ms: 20
        default: safe
        functions: |
          function spin(step) {
            total = 0
            while (true) { total = total + step }
          }
        rules:
          - {id: calls-spin, when: "spin(1) > 0", then: unreachable}
        """
    ).evaluate({})
    assert decision.result == "safe" and decision.degraded
    assert (decision.error.code, decision.error.rule_id) == ("SCRIPT_TIME_OUT", "calls-spin")
    assert "steps" not in decision.error.message, "stopped by the deadline, not by the step budget"
