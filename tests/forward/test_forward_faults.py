"""`verdict forward` under faults: SIGKILL and SIGTERM of the forwarder, a broker restart, an unroutable
destination, poison and huge bodies, missing headers, and a selection switched off mid-stream."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import defaultdict
from pathlib import Path

import pika
import pytest
from mq_support import (
    ORDER_TARGETS,
    cannot_route,
    collect,
    connect,
    everything_arrived,
    expected_pairs,
    order_messages,
    publish,
    queue_depth,
    rpc_expectations,
)

import verdict

TABLES = {
    "audit.yaml": """
kind: RouteTable
name: audit
topic: audit.#
systems:
  - system: archive
    selected: true
    target: archive.audit
  - system: ghost
    selected: true
    target: ghost.nowhere      # no queue is bound for it: every publish comes back
""",
    "events.yaml": """
kind: RouteTable
name: events
topic: event.*
systems:
  - system: plain
    selected: true
    target: event.plain
  - system: paid-only
    selected: true
    target: event.paid
    tags: PAID
    when: body.amount > 0
""",
}


def wait_for(condition, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for name, text in TABLES.items():
        (folder / name).write_text(text)
    return folder


def open_channel(broker, topology, targets):
    conn = connect(broker.url)
    channel = conn.channel()
    topology.declare(channel, targets)
    channel.confirm_delivery()
    return conn, channel


def all_sinks(topology, targets):
    return [*(topology.sink(t) for t in targets), topology.dead_letters]


def order_stream_setup(broker, topology, start_server, count, seed):
    server = start_server()
    messages = order_messages(count, seed=seed)
    with verdict.Client(server.target) as client:
        expected = rpc_expectations(client, messages)
    conn, channel = open_channel(broker, topology, ORDER_TARGETS)
    return server, messages, expected, conn, channel


def publish_paced(broker, exchange, messages, chunk=25, pause_s=0.1) -> threading.Thread:
    """Publishes the stream over a few seconds from its own connection, so faults can hit it mid-way."""

    def run() -> None:
        conn = connect(broker.url)
        channel = conn.channel()
        channel.confirm_delivery()
        for start in range(0, len(messages), chunk):
            publish(channel, exchange, [(m.routing_key, m.properties, m.body) for m in messages[start : start + chunk]])
            time.sleep(pause_s)
        conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_at_least_once(received, messages, expected, topology):
    """Every expected pair at least once; every copy of one (system, verdict-message-id) is the same message."""
    by_number = {m.number: m for m in messages}
    copies = [r for r in received if r.queue != topology.dead_letters]
    got = {(r.headers["seq"], r.headers["verdict-system"]) for r in copies}
    assert got == set(expected_pairs(expected))
    dead = {r.headers["seq"] for r in received if r.queue == topology.dead_letters}
    assert dead == {n for n, routing in expected.items() if cannot_route(routing)}
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    for r in copies:
        seen[(r.headers["verdict-system"], r.headers["verdict-message-id"])].add(r.headers["seq"])
        assert r.body == by_number[r.headers["seq"]].body
    assert all(len(numbers) == 1 for numbers in seen.values())  # duplicates carry the same id, never another's
    return len(copies) - len(got)


def test_sigkill_at_random_moments_loses_nothing(broker, topology, start_server, start_forwarder):
    server, messages, expected, conn, _channel = order_stream_setup(broker, topology, start_server, 1000, seed=7)
    conn.close()
    args = ["--data", str(server.data_dir), *topology.forward_args(), "--prefetch", "50"]
    rng = random.Random()
    publisher = None
    for _ in range(4):
        forwarder = start_forwarder(topology.queue, *args)
        publisher = publisher or publish_paced(broker, topology.source_exchange, messages)  # once the queue is bound
        time.sleep(rng.uniform(0.05, 0.8))
        forwarder.kill()  # SIGKILL: nothing is drained, unacknowledged messages go back to the queue
    publisher.join(timeout=60)
    forwarder = start_forwarder(topology.queue, *args)
    received = collect(
        broker.url, all_sinks(topology, ORDER_TARGETS), until=everything_arrived(expected, topology.dead_letters)
    )
    assert_at_least_once(received, messages, expected, topology)
    assert wait_for(lambda: queue_depth(broker.url, topology.queue) == 0)


def test_sigterm_drains_in_flight_messages_and_exits_0(broker, topology, start_server, start_forwarder):
    server, messages, expected, conn, channel = order_stream_setup(broker, topology, start_server, 1000, seed=8)
    args = ["--data", str(server.data_dir), *topology.forward_args(), "--prefetch", "200"]
    forwarder = start_forwarder(topology.queue, *args)
    publish(channel, topology.source_exchange, [(m.routing_key, m.properties, m.body) for m in messages])
    conn.close()
    time.sleep(0.1)
    assert forwarder.stop() == 0  # SIGTERM
    start_forwarder(topology.queue, *args)  # finishes what the first one left in the queue
    received = collect(
        broker.url, all_sinks(topology, ORDER_TARGETS), until=everything_arrived(expected, topology.dead_letters)
    )
    duplicates = assert_at_least_once(received, messages, expected, topology)
    assert duplicates == 0  # what was in flight at SIGTERM was finished and acknowledged, not redelivered


def test_broker_restart_mid_stream(broker, topology, start_server, start_forwarder):
    server, messages, expected, conn, channel = order_stream_setup(broker, topology, start_server, 1000, seed=9)
    args = ["--data", str(server.data_dir), *topology.forward_args(), "--prefetch", "1", "--workers", "0"]
    forwarder = start_forwarder(topology.queue, *args)
    first, rest = messages[:700], messages[700:]
    publish(channel, topology.source_exchange, [(m.routing_key, m.properties, m.body) for m in first])
    conn.close()
    assert wait_for(lambda: forwarder.metric("verdict_forward_messages_total") >= 50)
    broker.stop()  # every connection drops; durable queues and persistent messages survive
    assert wait_for(lambda: forwarder.http("/healthz")[0] == 503)  # not consuming while the broker is away
    broker.start()
    assert wait_for(lambda: forwarder.http("/healthz")[0] == 200)
    conn, channel = open_channel(broker, topology, ORDER_TARGETS)
    publish(channel, topology.source_exchange, [(m.routing_key, m.properties, m.body) for m in rest])
    conn.close()
    received = collect(
        broker.url, all_sinks(topology, ORDER_TARGETS), until=everything_arrived(expected, topology.dead_letters)
    )
    assert_at_least_once(received, messages, expected, topology)
    assert forwarder.metric("verdict_forward_reconnects_total") >= 1


def test_unroutable_destination_is_retried_then_dead_lettered(broker, topology, rules_dir, start_forwarder):
    conn, channel = open_channel(broker, topology, ["archive.audit"])
    args = ["--rules-dir", str(rules_dir), *topology.forward_args(), "--max-attempts", "3", "--retry-backoff-s", "0.05"]
    forwarder = start_forwarder(topology.queue, *args)
    properties = pika.BasicProperties(message_id="login-1", headers={"user": "u1"})
    publish(channel, topology.source_exchange, [("audit.login", properties, b"who: u1")])
    conn.close()
    received = collect(broker.url, all_sinks(topology, ["archive.audit"]), until=lambda r: len(r) >= 2)
    archive = [r for r in received if r.queue == topology.sink("archive.audit")]
    dead = [r for r in received if r.queue == topology.dead_letters]
    assert len(archive) == 1 and archive[0].headers["verdict-system"] == "archive"  # only the failed copy is retried
    assert len(dead) == 1
    error = dead[0].headers["verdict-error"]
    assert "not delivered after 3 attempts" in error and "ghost" in error and "ghost.nowhere" in error
    assert dead[0].routing_key == "audit.login" and dead[0].body == b"who: u1"
    assert dead[0].headers["verdict-message-id"] == "login-1" and dead[0].headers["user"] == "u1"
    assert forwarder.metric("verdict_forward_publishes_total", system="ghost", result="returned") == 3
    assert forwarder.metric("verdict_forward_retries_total") == 2
    assert wait_for(lambda: queue_depth(broker.url, topology.queue) == 0)


def test_poison_bodies_and_bad_headers_are_dead_lettered_and_block_nothing(
    broker, topology, rules_dir, start_forwarder
):
    conn, channel = open_channel(broker, topology, ["event.plain", "event.paid"])
    start_forwarder(topology.queue, "--rules-dir", str(rules_dir), *topology.forward_args())
    json_type = "application/json"
    poison = [
        (
            "event.paid",
            pika.BasicProperties(headers={"tags": "PAID", "key": "k1"}, content_type=json_type),
            b'{"amount": 1,',
        ),
        ("event.paid", pika.BasicProperties(headers={"tags": "PAID", "key": "k1"}), b"\xff\xfe not utf-8"),
        ("event.paid", pika.BasicProperties(headers={"tags": {"not": "a list"}, "key": "k1"}), b"{}"),
    ]
    good = (
        "event.paid",
        pika.BasicProperties(headers={"tags": "PAID", "key": "k1"}, content_type=json_type),
        b'{"amount": 3}',
    )
    publish(channel, topology.source_exchange, [*poison, good])
    conn.close()
    received = collect(broker.url, all_sinks(topology, ["event.plain", "event.paid"]), until=lambda r: len(r) >= 5)
    dead = [r for r in received if r.queue == topology.dead_letters]
    errors = [r.headers["verdict-error"] for r in dead]
    assert len(errors) == 3
    assert "body is not valid JSON" in errors[0] and "line 1, column" in errors[0]
    assert "not valid UTF-8" in errors[1]
    assert "header tags: must be a string or a list of strings" in errors[2]
    delivered = sorted((r.headers["verdict-system"], r.body) for r in received if r.queue != topology.dead_letters)
    assert delivered == [("paid-only", b'{"amount": 3}'), ("plain", b'{"amount": 3}')]  # the same key still flows


def test_a_1_mib_body_is_forwarded_intact(broker, topology, rules_dir, start_forwarder):
    conn, channel = open_channel(broker, topology, ["event.plain", "event.paid"])
    start_forwarder(topology.queue, "--rules-dir", str(rules_dir), *topology.forward_args())
    body = ('{"amount": 5, "pad": "' + "x" * (1024 * 1024) + '"}').encode()
    properties = pika.BasicProperties(headers={"tags": ["PAID"]}, content_type="application/json", message_id="big")
    publish(channel, topology.source_exchange, [("event.paid", properties, body)])
    conn.close()
    received = collect(broker.url, all_sinks(topology, ["event.plain", "event.paid"]), until=lambda r: len(r) >= 2)
    assert sorted(r.headers["verdict-system"] for r in received) == ["paid-only", "plain"]
    assert all(r.body == body for r in received)


def test_a_message_without_headers_or_properties(broker, topology, rules_dir, start_forwarder):
    conn, channel = open_channel(broker, topology, ["event.plain", "event.paid"])
    start_forwarder(topology.queue, "--rules-dir", str(rules_dir), *topology.forward_args())
    bare = pika.BasicProperties()
    publish(channel, topology.source_exchange, [("event.created", bare, b"plain text"), ("event.created", bare, b"")])
    conn.close()
    received = collect(broker.url, all_sinks(topology, ["event.plain", "event.paid"]), until=lambda r: len(r) >= 2)
    assert sorted((r.headers["verdict-system"], r.body) for r in received) == [("plain", b""), ("plain", b"plain text")]
    for r in received:  # no message_id and no key: the idempotency key is the documented hash
        assert r.headers["verdict-message-id"] == hashlib.sha256(b"event.created\0\0" + r.body).hexdigest()
        assert set(r.headers) == {
            "verdict-system",
            "verdict-route-table",
            "verdict-table-version",
            "verdict-message-id",
        }


def test_selection_switched_off_mid_stream(broker, topology, start_server, start_forwarder):
    server = start_server()
    conn, channel = open_channel(broker, topology, ORDER_TARGETS)
    forwarder = start_forwarder(topology.queue, "--data", str(server.data_dir), *topology.forward_args())
    before, after = order_messages(600, seed=21)[:300], order_messages(600, seed=21)[300:]
    with verdict.Client(server.target) as client:
        expected_before = rpc_expectations(client, before)
    publish(channel, topology.source_exchange, [(m.routing_key, m.properties, m.body) for m in before])
    generation = forwarder.metric("verdict_snapshot_generation")
    switched = server.cli("deselect", "order-events", "settlement")
    assert switched.returncode == 0, switched.stderr
    assert wait_for(lambda: forwarder.metric("verdict_snapshot_generation") > generation, timeout_s=10)
    with verdict.Client(server.target) as client:
        expected_after = rpc_expectations(client, after)
    publish(channel, topology.source_exchange, [(m.routing_key, m.properties, m.body) for m in after])
    conn.close()
    want = set(expected_pairs(expected_before)) | set(expected_pairs(expected_after))
    received = collect(
        broker.url,
        all_sinks(topology, ORDER_TARGETS),
        until=lambda r: {(x.headers["seq"], x.headers.get("verdict-system")) for x in r} >= want,
    )
    copies = [r for r in received if r.queue != topology.dead_letters]
    assert {(r.headers["seq"], r.headers["verdict-system"]) for r in copies} == want
    after_numbers = {m.number for m in after}
    assert any(r.headers["verdict-system"] == "settlement" for r in copies)  # before the switch it got messages
    assert not [r for r in copies if r.headers["seq"] in after_numbers and r.headers["verdict-system"] == "settlement"]
    assert any(r.headers["seq"] in after_numbers for r in copies)


def test_bad_settings_are_refused_before_connecting(start_forwarder, tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "verdict_server", "forward", "--broker", "http://x", "--prefetch", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--queue is required" in result.stderr and "--broker must be an amqp://" in result.stderr
    assert "--prefetch must be at least 1" in result.stderr


def test_a_new_route_table_is_bound_and_routed_without_a_restart(broker, topology, start_server, start_forwarder):
    server = start_server()
    conn, channel = open_channel(broker, topology, ["refund.ledger"])
    forwarder = start_forwarder(topology.queue, "--data", str(server.data_dir), *topology.forward_args())
    generation = forwarder.metric("verdict_snapshot_generation")
    table = "kind: RouteTable\nname: refunds\ntopic: refund.*\nsystems:\n  - system: ledger\n    selected: true\n    target: refund.ledger\n"
    put = server.cli("rules", "put", "-", input_text=table)
    assert put.returncode == 0, put.stderr
    assert wait_for(lambda: forwarder.metric("verdict_snapshot_generation") > generation, timeout_s=10)
    properties = pika.BasicProperties(message_id="r-1")

    def bound() -> bool:  # the forwarder binds refund.* to the source exchange once it sees the table
        try:
            publish(channel, topology.source_exchange, [("refund.issued", properties, b"{}")])
            return True
        except pika.exceptions.UnroutableError:
            return False

    assert wait_for(bound, timeout_s=10)
    conn.close()
    received = collect(broker.url, [topology.sink("refund.ledger")], until=lambda r: len(r) >= 1)
    assert [(r.headers["verdict-system"], r.headers["verdict-route-table"]) for r in received] == [
        ("ledger", "refunds")
    ]


def test_double_headers_from_other_producers_are_forwarded_exactly(broker, topology, rules_dir, start_forwarder):
    """Java, Go and .NET producers send doubles; pika alone truncated them (see amqp_fields). (RabbitMQ itself
    refuses a NaN: Erlang has none.)"""
    from verdict_server.forward import amqp_fields

    amqp_fields.install()  # lets this test's publisher send doubles, as those producers do
    conn, channel = open_channel(broker, topology, ["event.plain", "event.paid"])
    forwarder = start_forwarder(topology.queue, "--rules-dir", str(rules_dir), *topology.forward_args())
    doubles = pika.BasicProperties(headers={"price": 99.5, "ratio": 1e-300, "nested": {"x": -1.25}})
    publish(channel, topology.source_exchange, [("event.created", doubles, b"1"), ("event.created", doubles, b"2")])
    conn.close()
    received = collect(broker.url, all_sinks(topology, ["event.plain", "event.paid"]), until=lambda r: len(r) >= 2)
    assert sorted(r.body for r in received) == [b"1", b"2"] and {r.queue for r in received} == {
        topology.sink("event.plain")
    }
    for r in received:
        assert r.headers["price"] == 99.5 and r.headers["nested"] == {"x": -1.25} and r.headers["ratio"] == 1e-300
    assert forwarder.metric("verdict_forward_reconnects_total") == 0
