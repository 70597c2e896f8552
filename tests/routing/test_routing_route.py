"""Routing in-process: skip reasons, modes, fan-out, ordering and the lazily loaded body."""

from __future__ import annotations

import pytest

from verdict_server.routing import (
    CONDITION_FALSE,
    ERROR,
    GRAY_EXCLUDED,
    NOT_FIRST,
    NOT_SELECTED,
    TAG_MISMATCH,
    BodyError,
    Destination,
    Message,
    RouteIndex,
    Skipped,
    parse_json_body,
)

ORDERS = """\
kind: RouteTable
name: orders
topic: order.status.*
systems:
  - {system: settlement, selected: true, target: settle.in, priority: 10}
  - {system: crm, selected: false, target: crm.in, priority: 5}
  - {system: tagged, selected: true, target: tagged.in, tags: "PAID || REFUNDED"}
  - {system: nobody, selected: true, target: nobody.in, gray: {percent: 0}}
"""


def reasons(outcome) -> dict[str, str]:
    return {s.system: s.reason for s in outcome.skipped}


def test_each_check_gives_its_own_skip_reason(compile_table):
    index = RouteIndex([compile_table(ORDERS, version=3)])
    outcome = index.route(Message("order.status.created", tags=("CREATED",), key="o-1"))
    assert outcome.destinations == (Destination("settlement", "settle.in", 10, "orders", 3),)
    assert reasons(outcome) == {"crm": NOT_SELECTED, "tagged": TAG_MISMATCH, "nobody": GRAY_EXCLUDED}
    assert all(s.table == "orders" and s.version == 3 and s.detail for s in outcome.skipped)


def test_checks_stop_at_the_first_failure_cheapest_first(compile_table):
    # Not selected beats every other reason; a tag mismatch beats the gray rule.
    table = compile_table(
        """\
        kind: RouteTable
        name: t
        topic: a
        systems:
          - {system: switched-off, selected: false, target: x, tags: B, gray: {percent: 0}, when: "1 == 2"}
          - {system: mistagged, selected: true, target: x, tags: B, gray: {percent: 0}, when: "1 == 2"}
          - {system: outside, selected: true, target: x, gray: {percent: 0}, when: "1 == 2"}
          - {system: false-condition, selected: true, target: x, when: "1 == 2"}
        """
    )
    outcome = RouteIndex([table]).route(Message("a", tags=("A",)))
    assert reasons(outcome) == {
        "switched-off": NOT_SELECTED,
        "mistagged": TAG_MISMATCH,
        "outside": GRAY_EXCLUDED,
        "false-condition": CONDITION_FALSE,
    }


def test_mode_all_orders_by_priority_then_listed_order(compile_table):
    table = compile_table(
        """\
        kind: RouteTable
        name: t
        topic: a.#
        systems:
          - {system: low, selected: true, target: low.in, priority: 1}
          - {system: high-1, selected: true, target: h1.in, priority: 50}
          - {system: mid, selected: true, target: mid.in}
          - {system: high-2, selected: true, target: h2.in, priority: 50}
          - {system: negative, selected: true, target: neg.in, priority: -3}
        """
    )
    outcome = RouteIndex([table]).route(Message("a"))
    assert [d.system for d in outcome.destinations] == ["high-1", "high-2", "low", "mid", "negative"]
    assert outcome.skipped == ()


def test_mode_first_keeps_the_highest_priority_match_only(compile_table):
    table = compile_table(
        """\
        kind: RouteTable
        name: t
        topic: a
        mode: first
        systems:
          - {system: backup, selected: true, target: backup.in, priority: 1}
          - {system: primary, selected: true, target: primary.in, priority: 9, tags: PAID}
          - {system: also, selected: true, target: also.in, priority: 5}
          - {system: switched-off, selected: false, target: off.in, priority: 7}
        """
    )
    index = RouteIndex([table])
    paid = index.route(Message("a", tags=("PAID",)))
    assert [d.system for d in paid.destinations] == ["primary"]
    assert reasons(paid) == {"switched-off": NOT_SELECTED, "also": NOT_FIRST, "backup": NOT_FIRST}
    assert "'primary' (priority 9) was chosen" in next(s.detail for s in paid.skipped if s.system == "also")
    # When the top system does not match, the next one is chosen.
    created = index.route(Message("a", tags=("CREATED",)))
    assert [d.system for d in created.destinations] == ["also"]
    assert reasons(created) == {"primary": TAG_MISMATCH, "switched-off": NOT_SELECTED, "backup": NOT_FIRST}


def test_every_matching_table_applies_in_name_order(compile_table):
    def table(name: str, topic: str) -> str:
        return f"kind: RouteTable\nname: {name}\ntopic: '{topic}'\nsystems:\n  - {{system: s, selected: true, target: {name}.in}}\n"

    index = RouteIndex(
        [
            compile_table(table("zeta", "order.#")),
            compile_table(table("alpha", "order.status.*")),
            compile_table(table("beta", "#.paid")),
            compile_table(table("users", "user.#")),
            compile_table(table("exact", "order.status.paid")),
        ]
    )
    outcome = index.route(Message("order.status.paid"))
    assert [d.table for d in outcome.destinations] == ["alpha", "beta", "exact", "zeta"]
    assert [d.table for d in index.route(Message("order")).destinations] == ["zeta"]  # '#' matches zero words
    assert index.route(Message("invoice.created")).destinations == ()
    assert index.route(Message("invoice.created")).skipped == ()


def test_conditions_see_topic_tags_key_and_properties(compile_table):
    table = compile_table(
        """\
        kind: RouteTable
        name: t
        topic: order.#
        systems:
          - system: s
            selected: true
            target: x
            when: topic == 'order.status.paid' && 'VIP' in tags && key == 'o-9' && properties.region == 'eu'
        """
    )
    index = RouteIndex([table])
    message = Message("order.status.paid", tags=("PAID", "VIP"), key="o-9", properties={"region": "eu"})
    assert [d.system for d in index.route(message).destinations] == ["s"]
    outcome = index.route(Message("order.status.paid", tags=("PAID",), key="o-9", properties={"region": "eu"}))
    assert reasons(outcome) == {"s": CONDITION_FALSE}


BODY_TABLE = """\
kind: RouteTable
name: t
topic: order.#
systems:
  - {system: switched-off, selected: false, target: x, when: "body.amount > 0"}
  - {system: plain, selected: true, target: x, when: "key != ''"}
  - {system: money, selected: true, target: x, when: "body.amount > 0"}
  - {system: big-money, selected: true, target: x, when: "body.amount > 1000"}
"""


class CountingBody:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return parse_json_body(self.raw, "application/json")


def test_body_is_parsed_once_and_only_when_a_condition_reads_it(compile_table):
    index = RouteIndex([compile_table(BODY_TABLE)])
    body = CountingBody(b'{"amount": 12}')
    outcome = index.route(Message("order.paid", key="o-1", body=body))
    assert [d.system for d in outcome.destinations] == ["plain", "money"]
    assert reasons(outcome) == {"switched-off": NOT_SELECTED, "big-money": CONDITION_FALSE}
    assert body.calls == 1

    no_reader = compile_table(
        BODY_TABLE.replace('selected: true, target: x, when: "body', 'selected: false, target: x, when: "body')
    )
    body = CountingBody(b"not json")
    RouteIndex([no_reader]).route(Message("order.paid", key="o-1", body=body))
    assert body.calls == 0


def test_bad_json_body_is_an_error_skip_not_a_failure(compile_table):
    index = RouteIndex([compile_table(BODY_TABLE)])
    body = CountingBody(b'{"amount": 12,,}')
    outcome = index.route(Message("order.paid", key="o-1", body=body))
    assert [d.system for d in outcome.destinations] == ["plain"]
    errors = {s.system: s.detail for s in outcome.skipped if s.reason == ERROR}
    assert set(errors) == {"money", "big-money"}
    assert "not valid JSON" in errors["money"] and "line 1, column 15" in errors["money"]
    assert body.calls == 1


@pytest.mark.parametrize(
    ("failure", "shown"),
    [
        (BodyError("content type 'text/plain' is not JSON"), "content type 'text/plain' is not JSON"),
        (ValueError("struct holds NaN"), "ValueError: struct holds NaN"),
    ],
)
def test_a_failing_body_loader_is_an_error_skip_and_is_not_retried(compile_table, failure, shown):
    calls = []

    def broken():
        calls.append(1)
        raise failure

    outcome = RouteIndex([compile_table(BODY_TABLE)]).route(Message("order.paid", key="o-1", body=broken))
    assert [d.system for d in outcome.destinations] == ["plain"]
    details = [s.detail for s in outcome.skipped if s.reason == ERROR]
    assert len(details) == 2 and all(shown in d for d in details)
    assert len(calls) == 1


def test_condition_results_must_be_boolean(compile_table):
    table = compile_table(
        """\
        kind: RouteTable
        name: t
        topic: a
        systems:
          - {system: number, selected: true, target: x, when: "1 + 2"}
          - {system: text, selected: true, target: x, when: "'yes'"}
          - {system: "null", selected: true, target: x, when: "properties.missing"}
          - {system: "true", selected: true, target: x, when: "properties.flag == 'on'"}
        """
    )
    outcome = RouteIndex([table]).route(Message("a", properties={"flag": "on"}))
    assert [d.system for d in outcome.destinations] == ["true"]
    skipped = {s.system: s for s in outcome.skipped}
    assert skipped["number"].reason == ERROR and "must give a boolean, got a number 3" in skipped["number"].detail
    assert skipped["text"].reason == ERROR and "a string 'yes'" in skipped["text"].detail
    assert skipped["null"].reason == CONDITION_FALSE and "null" in skipped["null"].detail


def test_runtime_errors_name_the_document_position(compile_table):
    table = compile_table(
        """\
        kind: RouteTable
        name: t
        topic: a
        systems:
          - system: s
            selected: true
            target: x
            when: body.order.amount > 0
        """
    )
    outcome = RouteIndex([table]).route(Message("a", body=lambda: {"other": 1}))
    (skip,) = outcome.skipped
    assert skip.reason == ERROR
    assert "line 8" in skip.detail and "systems[0].when" in skip.detail


def test_a_runaway_condition_times_out_as_an_error(compile_table):
    table = compile_table(
        """\
        kind: RouteTable
        name: t
        topic: a
        timeout_ms: 5
        systems:
          - {system: loop, selected: true, target: x, when: "while (true) { } ; true"}
          - {system: fine, selected: true, target: y}
        """
    )
    outcome = RouteIndex([table]).route(Message("a"))
    assert [d.system for d in outcome.destinations] == ["fine"]
    (skip,) = outcome.skipped
    assert skip.reason == ERROR and "SCRIPT_TIME_OUT" in skip.detail


def test_route_is_pure_even_if_a_condition_writes_to_the_message(compile_table):
    table = compile_table(
        """\
        kind: RouteTable
        name: t
        topic: a
        systems:
          - {system: writer, selected: true, target: x, when: "properties.seen = 'yes'; true"}
          - {system: reader, selected: true, target: y, when: "properties.seen == null"}
        """
    )
    index = RouteIndex([table])
    properties = {"region": "eu"}
    first = index.route(Message("a", properties=properties))
    second = index.route(Message("a", properties=properties))
    assert first == second
    assert [d.system for d in first.destinations] == ["writer", "reader"]
    assert properties == {"region": "eu"}


def test_skips_carry_table_and_version(compile_table):
    outcome = RouteIndex([compile_table(ORDERS, version=42)]).route(Message("order.status.x"))
    assert (
        Skipped("crm", "orders", 42, NOT_SELECTED, "the system is not selected (its switch is off)") in outcome.skipped
    )
