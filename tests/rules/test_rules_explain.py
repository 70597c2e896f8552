"""explain: one trace entry per rule, in document order, with its condition or why it was not evaluated."""

from __future__ import annotations

DOCUMENT = """\
    kind: RuleSet
    name: explained
    hit_policy: {hit_policy}
    on_error: default
    default: none
    rules:
      - {{id: low, priority: 1, when: "score > 10", then: low}}
      - {{id: disabled-rule, priority: 9, enabled: false, then: disabled-rule}}
      - {{id: high, priority: 5, when: "score > 50", then: high}}
      - {{id: always, then: always}}
    """


def _entries(decision):
    return [(e.rule_id, e.evaluated, e.matched, e.condition) for e in decision.trace]


def test_first_marks_the_rules_after_the_match_as_not_evaluated(compile_text):
    decision = compile_text(DOCUMENT.format(hit_policy="first")).evaluate({"score": 60}, explain=True)
    assert _entries(decision) == [
        ("low", True, True, True),
        ("disabled-rule", False, False, None),
        ("high", False, False, None),
        ("always", False, False, None),
    ]
    notes = [e.note for e in decision.trace]
    assert notes[0] == "" and notes[1] == "disabled (enabled: false)"
    assert notes[2] == notes[3] == "not evaluated: rule 'low' matched first (hit policy first)"


def test_priority_evaluates_by_priority_and_traces_in_document_order(compile_text):
    decision = compile_text(DOCUMENT.format(hit_policy="priority")).evaluate({"score": 20}, explain=True)
    assert decision.matched_rules == ("low",)
    assert _entries(decision) == [
        ("low", True, True, True),
        ("disabled-rule", False, False, None),
        ("high", True, False, False),
        ("always", False, False, None),
    ]
    assert "rule 'low' matched first" in decision.trace[3].note


def test_collect_evaluates_every_enabled_rule(compile_text):
    decision = compile_text(DOCUMENT.format(hit_policy="collect")).evaluate({"score": 20}, explain=True)
    assert decision.result == ["low", "always"]
    assert _entries(decision) == [
        ("low", True, True, True),
        ("disabled-rule", False, False, None),
        ("high", True, False, False),
        ("always", True, True, True),
    ]


def test_an_error_in_a_condition_is_traced_on_its_rule(compile_text):
    decision = compile_text(DOCUMENT.format(hit_policy="collect")).evaluate({"score": None}, explain=True)
    # `null > 10` is an error in QL, so the trace shows where the evaluation stopped.
    assert decision.degraded
    first = decision.trace[0]
    assert first.rule_id == "low" and first.evaluated and first.error.code == decision.error.code
    assert [e.note for e in decision.trace[2:]] == [
        f"not evaluated: the evaluation stopped at {decision.error.code} in rule 'low'"
    ] * 2


def test_a_failure_in_a_later_rule_keeps_the_earlier_conditions(compile_text):
    decision = compile_text(
        """\
        kind: RuleSet
        name: nullable
        hit_policy: collect
        rules:
          - {id: maybe, when: "flag", then: maybe}
          - {id: broken, when: "flag + 1 > 0", then: broken}
          - {id: later, then: later}
        """
    ).evaluate({"flag": None}, explain=True)
    assert _entries(decision)[0] == ("maybe", True, False, None)
    assert decision.trace[1].error is not None and decision.trace[1].error.rule_id == "broken"
    assert not decision.trace[2].evaluated and "stopped" in decision.trace[2].note


def test_without_explain_there_is_no_trace(compile_text):
    rule_set = compile_text(DOCUMENT.format(hit_policy="first"))
    assert rule_set.evaluate({"score": 60}).trace == ()
    assert rule_set.evaluate({"score": 60}, explain=False).matched_rules == ("low",)


def test_explain_does_not_change_the_decision(compile_text):
    for policy in ("first", "priority", "collect"):
        rule_set = compile_text(DOCUMENT.format(hit_policy=policy))
        for score in (0, 20, 60):
            plain, explained = rule_set.evaluate({"score": score}), rule_set.evaluate({"score": score}, explain=True)
            assert (plain.result, plain.matched_rules) == (explained.result, explained.matched_rules)
