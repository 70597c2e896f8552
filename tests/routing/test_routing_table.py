"""Route-table validation: every problem at once, each at its line and column; the example compiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from verdict_server.document import DocumentInvalid, load_document
from verdict_server.routing import Message, RouteIndex, compile_route_table

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "route-tables" / "order-events.yaml"

BROKEN = """\
kind: RouteTable
name: broken
topic: order..paid
mode: some
timeout_ms: 0
owner: team-a
systems:
  - system: settlement
    selected: true
    tags: "PAID || || REFUNDED"
    priority: high
  - system: settlement
    selected: "yes"
    target: s.in
    enabled: true
    gray: {percent: 150, by: user, allow: [ok, {no: 1}]}
  - system: crm
    selected: true
    target: crm.in
    when: amount > 0 && properties.env != 'test'
  - system: pharmacy
    selected: true
    target: ph.in
    when: "body.amount >"
"""


def problems_of(engine, text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(DocumentInvalid) as caught:
        compile_route_table(load_document(text), engine, 1)
    return [(p.line, p.column, p.message) for p in caught.value.problems]


def test_every_problem_is_reported_with_its_position(engine):
    found = problems_of(engine, BROKEN)
    expected_fragments = [
        (3, 8, "invalid topic pattern 'order..paid': word 2 is empty"),
        (4, 7, "'mode' must be all or first"),
        (5, 13, "'timeout_ms' must be between 1 and 1000"),
        (6, 8, "unknown field 'owner'"),
        (8, 5, "'target' is required"),
        (10, 11, "alternative 2 is empty"),
        (11, 15, "'priority' must be a number"),
        (12, 13, "system 'settlement' is listed twice"),
        (13, 15, "'selected' must be a boolean"),
        (15, 14, "there is no 'enabled'"),
        (16, 21, "'percent' must be between 0 and 100"),
        (16, 30, "'by' must be 'key' or 'properties.NAME'"),
        (16, 48, "'allow' entries must be strings"),
        (20, 11, "condition reads 'amount', which a message does not have"),
    ]
    for line, column, fragment in expected_fragments:
        assert any((ln, col) == (line, column) and fragment in m for ln, col, m in found), (
            line,
            column,
            fragment,
            found,
        )
    # The syntax error in the last condition is reported at document coordinates, inside the quoted source.
    syntax = [p for p in found if "does not compile" in p[2]]
    assert len(syntax) == 1 and syntax[0][0] == 24 and syntax[0][1] >= 11
    assert found == sorted(found, key=lambda p: (p[0], p[1]))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("kind: RouteTable\nname: t\nsystems: []\n", "'topic' is required"),
        ("kind: RouteTable\nname: t\ntopic: a\n", "'systems' is required"),
        ("kind: RouteTable\nname: t\ntopic: a\nsystems: []\n", "at least one system"),
        ("kind: RouteTable\nname: t\ntopic: a\nsystems: [{system: s, target: x, when: ''}]\n", "'when' is empty"),
        (
            "kind: RouteTable\nname: t\ntopic: a\nsystems: [{system: s, target: x, gray: {by: key}}]\n",
            "'percent' is required",
        ),
        ("kind: RouteTable\nname: t\ntopic: a\nsystems: [{system: 's p', target: x}]\n", "'system' must be 1-128"),
        ("kind: RouteTable\nname: t\ntopic: a\nsystems: [{system: s, target: ' '}]\n", "'target' must not be empty"),
        (
            "kind: RouteTable\nname: t\ntopic: a\nsystems: [{system: s, target: x, tags: [A, B]}]\n",
            "'tags' must be a string",
        ),
    ],
)
def test_single_problems(engine, text, fragment):
    assert any(fragment in m for _, _, m in problems_of(engine, text))


def test_block_scalar_condition_errors_point_into_the_block(engine):
    text = "kind: RouteTable\nname: t\ntopic: a\nsystems:\n  - system: s\n    target: x\n    when: |\n      key == 'a' &&\n        (1 +\n"
    found = problems_of(engine, text)
    (syntax,) = [p for p in found if "does not compile" in p[2]]
    assert syntax[0] >= 8


def test_defaults(compile_table):
    table = compile_table("kind: RouteTable\nname: t\ntopic: a.*\nsystems: [{system: s, target: x}]\n", version=5)
    (system,) = table.systems
    assert (table.name, table.version, table.topic, table.mode, table.timeout_ms) == ("t", 5, "a.*", "all", 20)
    assert (system.selected, system.priority, system.tags.text, system.gray, system.condition) == (
        False,
        0,
        "*",
        None,
        None,
    )


def test_example_order_events_routes_as_documented(engine):
    table = compile_route_table(load_document(EXAMPLE.read_text()), engine, 1)
    assert (table.name, table.topic) == ("order-events", "order.status.*")
    index = RouteIndex([table])

    def route(tags, key="order-1", body=None, properties=None):
        message = Message("order.status.paid", tags=tags, key=key, properties=properties or {}, body=lambda: body)
        outcome = index.route(message)
        return [d.system for d in outcome.destinations], {s.system: s.reason for s in outcome.skipped}

    destinations, skipped = route(("PAID",), key="order-smoke-1", body={"amount": 30, "prescriptionId": "rx-1"})
    assert destinations == ["settlement", "doctor-app", "pharmacy"]
    assert skipped == {"crm": "NOT_SELECTED"}

    destinations, skipped = route(("PAID",), body={"amount": 30}, properties={"env": "test"})
    assert "settlement" not in destinations and skipped["settlement"] == "CONDITION_FALSE"
    assert skipped["doctor-app"] == "CONDITION_FALSE"

    destinations, skipped = route(("PAID",), key="order-smoke-1", body=None)
    assert destinations == ["pharmacy"]
    assert skipped["settlement"] == "ERROR" and skipped["doctor-app"] == "CONDITION_FALSE"

    destinations, skipped = route(("SHIPPED",), body={"amount": 30})
    assert destinations == [] and skipped["settlement"] == "TAG_MISMATCH"

    in_rollout = sum("pharmacy" in route(("PAID",), key=f"order-{n}", body={"amount": 1})[0] for n in range(2_000))
    assert 140 <= in_rollout <= 260  # about 10%


def test_the_json_schema_lists_the_same_fields_as_the_validator():
    import json

    from verdict_server.routing.table import GRAY_FIELDS, SYSTEM_FIELDS, TABLE_FIELDS

    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "docs" / "schemas" / "routetable.schema.json").read_text()
    )
    assert set(schema["properties"]) == set(TABLE_FIELDS)
    assert set(schema["$defs"]["system"]["properties"]) == set(SYSTEM_FIELDS)
    assert set(schema["$defs"]["gray"]["properties"]) == set(GRAY_FIELDS)


def test_only_route_tables_compile(engine):
    found = problems_of(engine, "kind: RuleSet\nname: r\nrules: []\n")
    assert found == [(1, 7, "expected kind RouteTable, got 'RuleSet'")]
