"""A broken document is rejected with every problem at once, each at its line and column in the document."""

from __future__ import annotations

import pytest

from verdict_server.document import DocumentInvalid, load_document
from verdict_server.rules import compile_rule_set


def _where(problems):
    return [(p.line, p.column, p.path) for p in problems]


def test_every_structural_problem_is_reported_at_once_with_its_position(problems_of):
    problems = problems_of(
        """\
        kind: RuleSet
        name: bad.rules
        hit_policy: sometimes
        on_error: explode
        timeout_ms: 0
        colour: blue
        rules:
          - id: a
            then: {action: HIDE}
          - id: a
            then: 1
            then_expr: "2"
          - id: c
            priority: high
            when: ''
          - then: 3
            enabled: "yes"
          - id: no-result
        """
    )
    assert _where(problems) == [
        (3, 13, "hit_policy"),
        (4, 11, "on_error"),
        (5, 13, "timeout_ms"),
        (6, 9, "colour"),
        (10, 9, "rules[1].id"),
        (12, 16, "rules[1].then_expr"),
        (13, 5, "rules[2]"),
        (14, 15, "rules[2].priority"),
        (15, 11, "rules[2].when"),
        (16, 5, "rules[3]"),
        (17, 14, "rules[3].enabled"),
        (18, 5, "rules[4]"),
    ]
    messages = [p.message for p in problems]
    assert "one of first, priority, collect, unique" in messages[0]
    assert "between 1 and" in messages[2]
    assert "unknown field 'colour'" in messages[3]
    assert "duplicate rule id 'a' (first used at rules[0])" in messages[4]
    assert "either 'then'" in messages[5]
    assert "needs 'then'" in messages[6]
    assert "must be an integer, got a string" in messages[7]
    assert "'when' is empty" in messages[8]
    assert "'id' is required" in messages[9]
    assert "'enabled' must be a boolean" in messages[10]
    assert "needs 'then'" in messages[11]


def test_ql_errors_are_reported_inside_the_document_together_with_structural_ones(problems_of):
    problems = problems_of(
        """\
        kind: RuleSet
        name: bad.ql
        hit_policy: first
        rules:
          - id: broken-when
            when: "role == 'X' )"
            then: 1
          - id: broken-expr
            priority: 1.5
            then_expr: a + * b
        """
    )
    assert _where(problems) == [
        (6, 24, "rules[0].when"),  # the stray ')': QL column 13, after the opening quote at column 11
        (9, 15, "rules[1].priority"),
        (10, 20, "rules[1].then_expr"),  # the '*': QL column 5 of a plain scalar starting at column 16
    ]
    assert problems[0].code == "SYNTAX_ERROR"
    assert problems[0].message.startswith("SYNTAX_ERROR")
    assert "must be an integer, got 1.5" in problems[1].message


def test_a_ql_error_in_a_block_scalar_points_at_its_line_in_the_document(problems_of):
    problems = problems_of(
        """\
        kind: RuleSet
        name: bad.functions
        functions: |
          function ok(x) { return x + 1 }
          function broken(x) { return x + }
        rules:
          - id: uses-functions
            when: ok(1) == 2
            then: 1
        """
    )
    assert len(problems) == 1
    (problem,) = problems
    assert (problem.line, problem.path, problem.code) == (5, "functions", "SYNTAX_ERROR")
    assert problem.column > 30  # at or after the '+' at column 33, not at the start of the line


def test_a_ql_error_on_a_further_indented_line_of_a_block_keeps_its_column(problems_of):
    (problem,) = problems_of(
        """\
        kind: RuleSet
        name: bad.block
        rules:
          - id: continued
            when: |
              role == 'PHARMACIST' &&
                pin like 'p-%' ||| true
            then: 1
        """
    )
    # QL line 2, column 20 (the third '|'); the block is indented 6, the line 2 more, which the QL text keeps.
    assert (problem.line, problem.column, problem.code) == (7, 26, "SYNTAX_ERROR")


def test_rules_and_script_exclude_each_other_and_one_of_them_is_required(problems_of):
    both = problems_of(
        """\
        kind: RuleSet
        name: both
        script: "1"
        rules:
          - {id: a, then: 1}
        """
    )
    assert [(p.path, p.message) for p in both] == [("script", "give either 'rules' or 'script', not both")]
    neither = problems_of(
        """\
        kind: RuleSet
        name: neither
        default: 1
        """
    )
    assert "'rules' (a list of rules) or 'script'" in neither[0].message


def test_a_script_rule_set_has_no_hit_policy(problems_of):
    (problem,) = problems_of(
        """\
        kind: RuleSet
        name: script.with.policy
        hit_policy: collect
        script: "1"
        """
    )
    assert (problem.line, problem.path) == (3, "hit_policy")


def test_an_empty_rules_list_is_refused(problems_of):
    (problem,) = problems_of(
        """\
        kind: RuleSet
        name: empty
        rules: []
        """
    )
    assert problem.path == "rules" and "at least one rule" in problem.message


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("constants", "[1, 2]", "'constants' must be a mapping"),
        ("functions", "42", "'functions' must be a string"),
        ("description", "[x]", "'description' must be a string"),
        ("rules", "{id: a}", "'rules' must be a list"),
        ("timeout_ms", "60000", "between 1 and 1000"),
        ("timeout_ms", "true", "must be an integer, got a boolean"),
    ],
)
def test_top_level_field_types_are_checked(problems_of, field, value, message):
    problems = problems_of(
        f"""\
        kind: RuleSet
        name: types
        script: "1"
        {field}: {value}
        """
    )
    assert any(message in p.message and p.line == 4 for p in problems), problems


def test_constant_names_must_be_ql_identifiers(problems_of):
    problems = problems_of(
        """\
        kind: RuleSet
        name: constants
        constants:
          good_name: 1
          2bad: 2
          with-dash: 3
        script: good_name
        """
    )
    assert _where(problems) == [(5, 9, "constants.2bad"), (6, 14, "constants.with-dash")]


def test_rule_ids_follow_the_name_rules(problems_of):
    (problem,) = problems_of(
        """\
        kind: RuleSet
        name: ids
        rules:
          - id: "has space"
            then: 1
        """
    )
    assert (problem.line, problem.path) == (4, "rules[0].id")


def test_a_disabled_rule_must_still_compile(problems_of):
    (problem,) = problems_of(
        """\
        kind: RuleSet
        name: disabled.broken
        rules:
          - id: later
            enabled: false
            when: "a =="
            then: 1
        """
    )
    assert problem.path == "rules[0].when" and problem.code == "SYNTAX_ERROR"


def test_a_json_document_reports_positions_too(engine):
    text = (
        '{"kind": "RuleSet", "name": "json.doc",\n'
        ' "rules": [{"id": "a", "when": "x > ) 1", "then": 1},\n'
        '           {"id": "a", "then": 2}]}\n'
    )
    with pytest.raises(DocumentInvalid) as caught:
        compile_rule_set(load_document(text), engine, 1)
    assert _where(caught.value.problems) == [(2, 37, "rules[0].when"), (3, 19, "rules[1].id")]


def test_a_problem_reads_well_as_text(problems_of):
    problems = problems_of(
        """\
        kind: RuleSet
        name: text
        rules:
          - id: a
        """
    )
    assert (
        str(problems[0])
        == "line 4, column 5 (rules[0]): a rule needs 'then' (a literal result) or 'then_expr' (a QL expression)"
    )


def test_only_rule_set_documents_compile_as_rule_sets(problems_of):
    problems = problems_of(
        """\
        kind: RouteTable
        name: not.a.rule.set
        script: "1"
        """
    )
    assert (problems[0].line, problems[0].path) == (1, "kind")
    assert "expected a RuleSet document, got kind 'RouteTable'" in problems[0].message
