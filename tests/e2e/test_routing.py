"""Route end to end: tables written through the AdminService, messages routed through DecisionService/Route."""

from __future__ import annotations

import textwrap
import threading

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from harness import ServerProcess

from verdict.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc

TABLE = textwrap.dedent(
    """\
    kind: RouteTable
    name: {name}
    topic: {topic}
    mode: {mode}
    systems:
      - system: settlement
        selected: true
        target: settlement.in
        tags: "PAID || REFUNDED"
        when: body.amount > 0
        priority: 10
      - system: crm
        selected: false
        target: crm.in
        priority: 5
      - system: doctor-app
        selected: true
        target: doctor.in
        priority: 1
      - system: pharmacy
        selected: true
        target: pharmacy.in
        gray: {{percent: 0, by: key, allow: ['vip-order']}}
        priority: 1
    """
)


def REASON(number: int) -> str:  # noqa: N802 - reads like the enum lookup it wraps
    """The wire name without its SKIP_REASON_ prefix, as the domain and the SDK name reasons."""
    name = decision_pb2.SkipReason.Name(number)
    assert name.startswith("SKIP_REASON_")
    return name.removeprefix("SKIP_REASON_")


class Router:
    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.channel = process.channel()
        self.decision = decision_pb2_grpc.DecisionServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)

    def put(self, content: str) -> int:
        request = admin_pb2.PutDocumentRequest(content=content, author="tests")
        return self.admin.PutDocument(request, timeout=10, metadata=self.process.admin_metadata()).document.version

    def select(self, table: str, system: str, selected: bool) -> int:
        request = admin_pb2.SetSelectionRequest(table=table, system=system, selected=selected, author="tests")
        return self.admin.SetSelection(request, timeout=10, metadata=self.process.admin_metadata()).document.version

    def route(self, topic: str, *, tags=(), key="", body=None, raw_body: bytes | None = None, properties=None):
        request = decision_pb2.RouteRequest(topic=topic, tags=list(tags), key=key, properties=properties or {})
        if body is not None:
            struct = Struct()
            struct.update(body)
            request.body_json.CopyFrom(struct)
        if raw_body is not None:
            request.body = raw_body
            request.content_type = "application/json"
        return self.decision.Route(request, timeout=10)


@pytest.fixture
def router(server: ServerProcess):
    r = Router(server)
    yield r
    r.channel.close()


def _answer(response, table: str):
    destinations = [d.system for d in response.destinations if d.table == table]
    skipped = {s.system: REASON(s.reason) for s in response.skipped if s.table == table}
    return destinations, skipped


def test_each_skip_reason(router: Router) -> None:
    router.put(TABLE.format(name="t.reasons", topic="reasons.order.*", mode="all"))
    response = router.route("reasons.order.paid", tags=["PAID"], key="order-1", body={"amount": 5})
    destinations, skipped = _answer(response, "t.reasons")
    assert destinations == ["settlement", "doctor-app"]
    assert skipped == {"crm": "NOT_SELECTED", "pharmacy": "GRAY_EXCLUDED"}
    assert response.decision_id

    destinations, skipped = _answer(
        router.route("reasons.order.paid", tags=["CREATED"], key="o", body={"amount": 5}), "t.reasons"
    )
    assert skipped["settlement"] == "TAG_MISMATCH"
    destinations, skipped = _answer(
        router.route("reasons.order.paid", tags=["PAID"], key="o", body={"amount": 0}), "t.reasons"
    )
    assert skipped["settlement"] == "CONDITION_FALSE"
    destinations, skipped = _answer(
        router.route("reasons.order.paid", tags=["PAID"], key="vip-order", body={"amount": 1}), "t.reasons"
    )
    assert "pharmacy" in destinations  # the allow list wins over a 0% rollout


def test_a_bad_json_body_is_an_error_skip_not_a_failed_call(router: Router) -> None:
    router.put(TABLE.format(name="t.badbody", topic="badbody.#", mode="all"))
    response = router.route("badbody.x", tags=["PAID"], key="k", raw_body=b'{"amount": ')
    destinations, skipped = _answer(response, "t.badbody")
    assert skipped["settlement"] == "ERROR"
    detail = next(s.detail for s in response.skipped if s.system == "settlement" and s.table == "t.badbody")
    assert "json" in detail.lower()
    assert "doctor-app" in destinations  # systems that do not read the body are unaffected


def test_hash_patterns_match_zero_or_more_words_and_star_exactly_one(router: Router) -> None:
    router.put(TABLE.format(name="t.hash", topic="hash.#", mode="all"))
    router.put(TABLE.format(name="t.star", topic="star.*.done", mode="all"))
    assert _answer(router.route("hash", key="k"), "t.hash")[0] == ["doctor-app"]
    assert _answer(router.route("hash.a.b.c", key="k"), "t.hash")[0] == ["doctor-app"]
    assert _answer(router.route("star.x.done", key="k"), "t.star")[0] == ["doctor-app"]
    assert not router.route("star.done", key="k").destinations
    assert not router.route("star.x.y.done", key="k").destinations


def test_mode_first_picks_only_the_highest_priority_match(router: Router) -> None:
    router.put(TABLE.format(name="t.first", topic="first.*", mode="first"))
    response = router.route("first.paid", tags=["PAID"], key="k", body={"amount": 3})
    destinations, skipped = _answer(response, "t.first")
    assert destinations == ["settlement"]
    assert skipped["doctor-app"] == "NOT_FIRST"


def test_a_message_fans_out_through_every_matching_table(router: Router) -> None:
    router.put(TABLE.format(name="t.fan.a", topic="fan.*", mode="all"))
    router.put(TABLE.format(name="t.fan.b", topic="fan.#", mode="all"))
    response = router.route("fan.out", key="k")
    assert {(d.table, d.system) for d in response.destinations} == {
        ("t.fan.a", "doctor-app"),
        ("t.fan.b", "doctor-app"),
    }


def test_selection_switches_under_concurrent_routes(router: Router) -> None:
    router.put(TABLE.format(name="t.switch", topic="switch.*", mode="all"))
    errors: list[str] = []
    stop = threading.Event()

    def keep_routing() -> None:
        channel_router = Router(router.process)
        try:
            while not stop.is_set():
                response = channel_router.route("switch.x", key="k")
                versions = {d.version for d in response.destinations if d.table == "t.switch"}
                versions |= {s.version for s in response.skipped if s.table == "t.switch"}
                if len(versions) != 1:
                    errors.append(f"mixed versions {versions}")
                destinations, skipped = _answer(response, "t.switch")
                if ("crm" in destinations) == ("crm" in skipped):
                    errors.append("crm both routed and skipped, or neither")
        except grpc.RpcError as err:
            errors.append(err.code().name)
        finally:
            channel_router.channel.close()

    threads = [threading.Thread(target=keep_routing) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for index in range(10):
            router.select("t.switch", "crm", index % 2 == 0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    version = router.select("t.switch", "crm", True)
    destinations, _ = _answer(router.route("switch.x", key="k"), "t.switch")
    assert "crm" in destinations
    assert all(d.version == version for d in router.route("switch.x", key="k").destinations if d.table == "t.switch")
    with pytest.raises(grpc.RpcError) as missing:
        router.select("t.switch", "nobody", True)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_example_order_events_table(router: Router) -> None:
    response = router.route("order.status.paid", tags=["PAID"], key="order-42", body={"amount": 99.5})
    candidates = {d.system for d in response.destinations if d.table == "order-events"}
    candidates |= {s.system for s in response.skipped if s.table == "order-events"}
    assert {"settlement", "doctor-app", "pharmacy", "crm"} <= candidates
    assert any(REASON(s.reason) == "NOT_SELECTED" for s in response.skipped if s.table == "order-events")


def test_bad_topics_are_invalid_arguments(router: Router) -> None:
    for topic in ("", "a..b", "x" * 2000):
        with pytest.raises(grpc.RpcError) as raised:
            router.route(topic)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "topic" in raised.value.details()


def test_the_same_message_always_gets_the_same_answer(router: Router) -> None:
    router.put(TABLE.format(name="t.pure", topic="pure.*", mode="all").replace("percent: 0", "percent: 50"))
    keys = [f"user-{i}" for i in range(200)]
    first = [tuple(d.system for d in router.route("pure.x", key=k).destinations) for k in keys]
    again = [tuple(d.system for d in router.route("pure.x", key=k).destinations) for k in keys]
    assert first == again
    included = sum("pharmacy" in answer for answer in first)
    assert 60 < included < 140  # a 50% rollout over 200 keys


def test_cli_route_and_select(server: ServerProcess, router: Router) -> None:
    router.put(TABLE.format(name="t.cli", topic="cli.*", mode="all"))
    assert server.cli("select", "t.cli", "crm").returncode == 0
    routed = server.cli("route", "cli.x", "--key", "k", "--json")
    assert routed.returncode == 0, routed.stderr
    assert "crm" in routed.stdout
    assert server.cli("deselect", "t.cli", "crm").returncode == 0
    destinations, skipped = _answer(router.route("cli.x", key="k"), "t.cli")
    assert skipped["crm"] == "NOT_SELECTED"
