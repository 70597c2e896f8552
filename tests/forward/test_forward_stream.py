"""`verdict forward` on a real broker: a stream over the example route table reaches exactly the systems that
DecisionService.Route (a real `verdict serve` on the same store) names, with the documented headers, in key order."""

from __future__ import annotations

import json
import time
from collections import defaultdict

from mq_support import (
    ORDER_TARGETS,
    cannot_route,
    collect,
    connect,
    expected_message_id,
    expected_pairs,
    order_messages,
    publish,
    queue_depth,
    rpc_expectations,
)

import verdict


def wait_for(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_1000_messages_reach_exactly_the_selected_systems(broker, topology, start_server, start_forwarder, tmp_path):
    server = start_server()
    messages = order_messages(1000)
    with verdict.Client(server.target) as client:
        expected = rpc_expectations(client, messages)
    by_number = {m.number: m for m in messages}
    want = expected_pairs(expected)
    want_dead = sorted(number for number, routing in expected.items() if cannot_route(routing))
    conn = connect(broker.url)
    channel = conn.channel()
    topology.declare(channel, ORDER_TARGETS)
    channel.confirm_delivery()
    decision_log = tmp_path / "decisions.jsonl"
    forwarder = start_forwarder(
        topology.queue,
        "--data",
        str(server.data_dir),
        *topology.forward_args(),
        "--workers",
        "2",
        "--prefetch",
        "64",
        "--decision-log",
        str(decision_log),
        "--decision-log-sample",
        "1",
    )
    assert forwarder.http("/healthz")[0] == 200
    publish(channel, topology.source_exchange, [(m.routing_key, m.properties, m.body) for m in messages])
    conn.close()
    sinks = [topology.sink(target) for target in ORDER_TARGETS]
    received = collect(
        broker.url, [*sinks, topology.dead_letters], until=lambda r: len(r) >= len(want) + len(want_dead)
    )

    dead = [r for r in received if r.queue == topology.dead_letters]
    assert sorted(r.headers["seq"] for r in dead) == want_dead
    for r in dead:  # a PAID message without a body: settlement's `body.amount` cannot be read
        assert "cannot route: order-events/settlement: condition failed" in r.headers["verdict-error"]
        assert r.routing_key == by_number[r.headers["seq"]].routing_key and r.body == by_number[r.headers["seq"]].body
    received = [r for r in received if r.queue != topology.dead_letters]
    got = sorted((r.headers["seq"], r.headers["verdict-system"]) for r in received)
    assert got == want  # every expected pair, once, and nothing for a skipped system
    systems = {system for _, system in got}
    assert systems == {"settlement", "doctor-app", "pharmacy"}  # crm is switched off in the example
    assert 0 < len({n for n, _ in got}) < 1000  # some messages have no destination at all

    for r in received:
        source = by_number[r.headers["seq"]]
        destination = next(d for d in expected[source.number].destinations if d.system == r.headers["verdict-system"])
        assert r.queue == topology.sink(destination.target) and r.routing_key == destination.target
        assert r.headers["verdict-route-table"] == destination.table == "order-events"
        assert r.headers["verdict-table-version"] == destination.version
        assert r.headers["verdict-message-id"] == expected_message_id(source)
        assert r.body == source.body
        assert r.properties.delivery_mode == 2
        assert r.properties.content_type == source.properties.content_type
        assert r.properties.message_id == source.properties.message_id
        original = {k: v for k, v in r.headers.items() if not k.startswith("verdict-")}
        assert original == source.properties.headers

    # Per destination, one key's messages arrive in source order.
    order: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in received:
        key = by_number[r.headers["seq"]].route_args()["key"]
        order[(r.queue, key)].append(r.headers["seq"])
    assert all(seqs == sorted(seqs) for seqs in order.values())

    assert wait_for(lambda: forwarder.metric("verdict_forward_messages_total") == 1000)
    assert forwarder.metric("verdict_forward_messages_total", outcome="dead_lettered") == len(want_dead) > 0
    no_destination = sum(1 for routing in expected.values() if not routing.destinations and not cannot_route(routing))
    assert forwarder.metric("verdict_forward_messages_total", outcome="no_destination") == no_destination
    assert forwarder.metric("verdict_route_skips_total", system="crm", reason="NOT_SELECTED") > 0
    assert queue_depth(broker.url, topology.queue) == 0
    lines = [json.loads(line) for line in decision_log.read_text().splitlines()]
    assert len(lines) == 1000 and {line["type"] for line in lines} == {"route"}

    assert forwarder.stop() == 0
