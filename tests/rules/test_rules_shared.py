"""Constants and shared functions are compiled into every rule; a `script:` rule set is one result expression."""

from __future__ import annotations

SHARED = """\
    kind: RuleSet
    name: shared
    description: constants and functions shared by every rule
    hit_policy: first
    default: {level: none}
    constants:
      vip_levels: [3, 4, 5]
      bonus: 10
    functions: |
      function isVip(level) {
        return level in vip_levels
      }
      function points(amount) { return amount + bonus }
      function grade(level, amount) { return isVip(level) ? 'gold:' + points(amount) : 'plain' }
    rules:
      - id: vip
        when: isVip(level)
        then_expr: "{level: grade(level, amount), points: points(amount)}"
      - id: member
        when: level > 0
        then_expr: "{level: grade(level, amount)}"
    """


def test_functions_can_use_constants_and_each_other_from_conditions_and_results(compile_text):
    rule_set = compile_text(SHARED)
    assert rule_set.evaluate({"level": 4, "amount": 5}).result == {"level": "gold:15", "points": 15}
    assert rule_set.evaluate({"level": 1, "amount": 5}).result == {"level": "plain"}
    assert rule_set.evaluate({"level": 0, "amount": 5}).result == {"level": "none"}


def test_the_compiled_rule_set_describes_itself(compile_text):
    rule_set = compile_text(SHARED, version=7)
    assert (rule_set.name, rule_set.version) == ("shared", 7)
    assert rule_set.description == "constants and functions shared by every rule"


def test_free_variables_are_the_facts_the_rules_read_and_never_the_constants(compile_text):
    rule_set = compile_text(SHARED)
    assert {"level", "amount"} <= rule_set.free_variables
    assert not {"vip_levels", "bonus"} & rule_set.free_variables
    assert not {"isVip", "points", "grade"} & rule_set.free_variables


def test_free_variables_cover_every_rule(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: vars
        rules:
          - {id: a, when: "scene == 'X'", then: 1}
          - {id: b, when: "role == 'Y'", then_expr: "pin"}
          - {id: c, enabled: false, when: "dormant", then: 3}
        """
    )
    assert {"scene", "role", "pin"} <= rule_set.free_variables


def test_constants_do_not_leak_between_evaluations_when_a_rule_returns_them(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: constant.result
        constants: {allowed: [1, 2], limits: {max: 3}}
        rules:
          - {id: all, then_expr: "{allowed: allowed, limits: limits}"}
        """
    )
    first = rule_set.evaluate({}).result
    first["allowed"].append(99)
    first["limits"]["max"] = 0
    assert rule_set.evaluate({}).result == {"allowed": [1, 2], "limits": {"max": 3}}


def test_a_script_rule_set_answers_its_value(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: scripted
        default: unused
        constants: {threshold: 100}
        functions: |
          function size(n) { return n > threshold ? 'big' : 'small' }
        script: |
          label = size(amount)
          {label: label, doubled: amount * 2}
        """
    )
    decision = rule_set.evaluate({"amount": 150}, explain=True)
    assert decision.result == {"label": "big", "doubled": 300}
    assert decision.matched_rules == () and decision.trace == () and not decision.degraded
    assert rule_set.evaluate({"amount": 1}).result == {"label": "small", "doubled": 2}
    assert "amount" in rule_set.free_variables


def test_a_rule_cannot_change_the_facts_or_what_the_next_rule_sees(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: isolated
        hit_policy: collect
        rules:
          - {id: writer, then_expr: "x = 'changed'; x"}
          - {id: reader, then_expr: "x"}
        """
    )
    facts = {"x": "original"}
    assert rule_set.evaluate(facts).result == ["changed", "original"]
    assert facts == {"x": "original"}


def test_a_constant_cannot_be_overridden_by_the_facts(compile_text):
    rule_set = compile_text(
        """\
        kind: RuleSet
        name: constant.wins
        constants: {limit: 10}
        rules:
          - {id: over, when: "amount > limit", then: over}
        """
    )
    assert rule_set.evaluate({"amount": 11, "limit": 1000}).matched_rules == ("over",)
    assert rule_set.evaluate({"amount": 5, "limit": 0}).matched_rules == ()
    assert "limit" not in rule_set.free_variables


def test_each_version_decides_with_its_own_constants(compile_text):
    # Many versions whose rules have the same QL text and different constants: a compile cache keyed by the
    # identity of short-lived constant maps must never hand one version another version's program.
    template = """\
        kind: RuleSet
        name: changing.constants
        constants: {{blocked: [{category}]}}
        default: show
        rules:
          - {{id: block, when: "category in blocked", then: hide}}
        """
    for category in range(1000, 1100):
        rule_set = compile_text(template.format(category=category), version=category)
        assert rule_set.evaluate({"category": category}).result == "hide", f"version {category}"
        assert rule_set.evaluate({"category": category - 1}).result == "show", f"version {category}"


def test_functions_that_read_facts_are_refused(problems_of):
    (problem,) = problems_of(
        """\
        kind: RuleSet
        name: functions.reading.facts
        constants: {pharmacist: PHARMACIST}
        functions: |
          function isPharmacist() { return role == pharmacist }
        rules:
          - {id: a, when: "isPharmacist()", then: 1}
        """
    )
    assert (problem.line, problem.path) == (4, "functions")
    assert "not role: pass facts as arguments" in problem.message
