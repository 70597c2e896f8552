"""Whatever bytes arrive, the answer is a status the caller can act on, never INTERNAL or UNKNOWN, and the server
stays SERVING.

Requests go through a raw `channel.unary_unary` with bytes in and bytes out, so nothing on the client side cleans
them up first. Each RPC has its own list of statuses it may answer to a bad request (ALLOWED below); the oracle for
AdminService calls without a token is exact: a request that decodes must be refused with UNAUTHENTICATED, one that
does not with INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.message import DecodeError
from google.protobuf.struct_pb2 import Struct
from harness import ServerProcess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.reliability_support import (
    ADMIN_SERVICE,
    DECISION_SERVICE,
    crash_lines,
    is_serving,
    length_delimited,
    method_path,
    nested_list_value_bytes,
    nested_struct_bytes,
    raw_call,
    request_class,
    varint,
)

from verdict.v1 import admin_pb2, decision_pb2

Code = grpc.StatusCode
MAX_MESSAGE_BYTES = 256 * 1024  # the fuzz server's --max-message-bytes: oversized requests stay cheap to send
EXAMPLES = 300  # per property; derandomized, so every run sends the same cases

# What each RPC may answer to a malformed, hostile or merely odd request (OK included: odd is not always wrong).
# RESOURCE_EXHAUSTED: over --max-message-bytes (or the concurrency limit). FAILED_PRECONDITION only for Evaluate: an
# ad-hoc expression (the fuzz server allows them) that loops runs into its 50 ms budget. ABORTED: a write whose
# expected_version is not the head's.
ALLOWED = {
    "Evaluate": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.RESOURCE_EXHAUSTED, Code.FAILED_PRECONDITION},
    "EvaluateBatch": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.RESOURCE_EXHAUSTED},
    "Route": {Code.OK, Code.INVALID_ARGUMENT, Code.RESOURCE_EXHAUSTED},
    "PutDocument": {Code.OK, Code.INVALID_ARGUMENT, Code.ABORTED, Code.RESOURCE_EXHAUSTED},
    "GetDocument": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.RESOURCE_EXHAUSTED},
    "ListDocuments": {Code.OK, Code.INVALID_ARGUMENT, Code.RESOURCE_EXHAUSTED},
    "ListVersions": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.RESOURCE_EXHAUSTED},
    "DeleteDocument": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.ABORTED, Code.RESOURCE_EXHAUSTED},
    "ValidateDocument": {Code.OK, Code.INVALID_ARGUMENT, Code.RESOURCE_EXHAUSTED},
    "ActivateVersion": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.ABORTED, Code.RESOURCE_EXHAUSTED},
    "SetSelection": {Code.OK, Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.ABORTED, Code.RESOURCE_EXHAUSTED},
}
METHODS = [(DECISION_SERVICE, m.name) for m in DECISION_SERVICE.methods] + [
    (ADMIN_SERVICE, m.name) for m in ADMIN_SERVICE.methods
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_every_rpc_has_an_allowed_status_list() -> None:
    assert {name for _, name in METHODS} == set(ALLOWED)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    with ServerProcess(data_dir, "--allow-adhoc", "--max-message-bytes", str(MAX_MESSAGE_BYTES)) as process:
        yield process
        assert is_serving(process), "the server stopped serving during the fuzzing"
    assert crash_lines(process.stderr()) == []


@pytest.fixture(scope="module")
def channel(fuzz_server: ServerProcess) -> Iterator[grpc.Channel]:
    with fuzz_server.channel() as open_channel:
        yield open_channel


@pytest.fixture(autouse=True)
def still_serving(fuzz_server: ServerProcess) -> Iterator[None]:
    yield
    assert is_serving(fuzz_server), "health is not SERVING after the test's requests"


def _send(channel: grpc.Channel, fuzz_server: ServerProcess, service, name: str, payload: bytes, *, token: bool):
    metadata = fuzz_server.admin_metadata() if token and service is ADMIN_SERVICE else None
    return raw_call(channel, method_path(service, name), payload, metadata=metadata)


def _check(outcome, name: str, payload: bytes) -> None:
    assert outcome.code in ALLOWED[name], (
        f"{name} answered {outcome.code.name}: {outcome.details!r} to {payload[:80]!r}"
    )
    if outcome.code == Code.INVALID_ARGUMENT:
        assert outcome.details, f"{name}: INVALID_ARGUMENT without a message"


def _decodes(service, name: str, payload: bytes) -> bool:
    try:
        request_class(service, name).FromString(payload)
    except (DecodeError, RecursionError, ValueError):
        return False
    return True


# valid seeds that mutations start from -------------------------------------------------------------------------------


def _struct(values: dict) -> Struct:
    struct = Struct()
    struct.update(values)
    return struct


FACTS = {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001, "pin": "pin-1", "tags": ["a", 1, None]}
SEEDS = {
    "Evaluate": [
        decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=_struct(FACTS), explain=True),
        decision_pb2.EvaluateRequest(expression="a * 2 + size(l)", facts=_struct({"a": 2, "l": [1, 2]})),
        decision_pb2.EvaluateRequest(rule_set="gray.release", version=1, facts=_struct({"pin": "pin-alice"})),
    ],
    "EvaluateBatch": [
        decision_pb2.EvaluateBatchRequest(rule_set="doctor.app_version_gate", facts=[_struct(FACTS)] * 3),
    ],
    "Route": [
        decision_pb2.RouteRequest(
            topic="order.status.paid", tags=["PAID"], key="order-42", body_json=_struct({"amount": 99.5})
        ),
        decision_pb2.RouteRequest(
            topic="order.status.paid",
            tags=["PAID"],
            key="k",
            properties={"env": "prod"},
            body=b'{"amount": 1, "prescriptionId": 7}',
            content_type="application/json",
        ),
    ],
    "PutDocument": [
        admin_pb2.PutDocumentRequest(
            content="kind: RuleSet\nname: fuzz.seed\ndefault: 1\nrules:\n  - id: r\n    when: a > 1\n    then: 2\n",
            author="fuzz",
        ),
    ],
    "GetDocument": [admin_pb2.GetDocumentRequest(kind="RuleSet", name="pharmacist.otc_block", version=1)],
    "ListDocuments": [admin_pb2.ListDocumentsRequest(kind="RouteTable")],
    "ListVersions": [admin_pb2.ListVersionsRequest(kind="RuleSet", name="gray.release")],
    "DeleteDocument": [admin_pb2.DeleteDocumentRequest(kind="RuleSet", name="fuzz.seed", expected_version=7)],
    "ValidateDocument": [
        admin_pb2.ValidateDocumentRequest(content="kind: RouteTable\nname: t\ntopic: a.*\nsystems: []\n")
    ],
    "ActivateVersion": [admin_pb2.ActivateVersionRequest(kind="RuleSet", name="gray.release", version=1)],
    "SetSelection": [admin_pb2.SetSelectionRequest(table="order-events", system="crm", selected=True)],
}
SEED_BYTES = [(service, name, seed.SerializeToString()) for service, name in METHODS for seed in SEEDS[name]]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """A valid request after a few byte-level edits: truncation, flips, insertions, deletions, repeats."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "repeat", "high-bit"]))
        if edit == "truncate":
            del data[position:]
        elif edit == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif edit == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[position : position + draw(st.integers(1, 8))]
        elif edit == "repeat":
            data[position:position] = data[position : position + draw(st.integers(1, 16))]
        elif edit == "high-bit" and position < len(data):
            data[position] |= 0x80  # turns ASCII into invalid UTF-8, varints into longer ones
    return bytes(data)


# properties ----------------------------------------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(target=st.sampled_from(METHODS), payload=st.binary(max_size=300))
def test_random_bytes(fuzz_server, channel, target, payload: bytes) -> None:
    service, name = target
    _check(_send(channel, fuzz_server, service, name, payload, token=True), name, payload)


@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_valid_requests(fuzz_server, channel, data: st.DataObject) -> None:
    service, name, seed = data.draw(st.sampled_from(SEED_BYTES))
    payload = data.draw(mutated(seed))
    _check(_send(channel, fuzz_server, service, name, payload, token=True), name, payload)


@FUZZ_SETTINGS
@given(target=st.sampled_from([(s, n) for s, n in METHODS if s is ADMIN_SERVICE]), payload=st.binary(max_size=200))
def test_admin_calls_without_a_token_are_refused_whatever_the_bytes(fuzz_server, channel, target, payload) -> None:
    service, name = target
    outcome = _send(channel, fuzz_server, service, name, payload, token=False)
    expected = Code.UNAUTHENTICATED if _decodes(service, name, payload) else Code.INVALID_ARGUMENT
    assert outcome.code == expected, (outcome.code, outcome.details, payload)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70).map(float),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
FACT_NAMES = st.sampled_from(["scene", "role", "categoryId", "pin", "appVersion", "a", "l", "n", "x"]) | st.text(
    max_size=10
)
QL_TOKENS = st.sampled_from(
    ["a", "l", "x", "1", "2.5", "'s'", "null", "true", "+", "-", "*", "/", "%", "==", "<", "&&", "||", "!", "(", ")"]
    + ["[", "]", "{", "}", ":", ",", ";", ".", "size(l)", "x.y", "l[0]", "in", "like", "?", "if", "while", "for"]
    + ["function", "return", "new", "int", "->", "'\\u0000'", '"\\x"', "max(", "matches('(a+)+')", "1/0"]
)


@FUZZ_SETTINGS
@given(
    rule_set=st.sampled_from(["pharmacist.otc_block", "doctor.app_version_gate", "gray.release", "nope", ""]),
    version=st.integers(-(2**63), 2**63 - 1) | st.integers(0, 3),
    facts=st.dictionaries(FACT_NAMES, JSON_VALUES, max_size=8),
    expression=st.just("") | st.lists(QL_TOKENS, max_size=12).map(" ".join) | st.text(max_size=40),
    explain=st.booleans(),
)
def test_odd_but_well_formed_evaluations(fuzz_server, channel, rule_set, version, facts, expression, explain) -> None:
    request = decision_pb2.EvaluateRequest(
        rule_set=rule_set, version=version, facts=_struct(facts), expression=expression, explain=explain
    )
    payload = request.SerializeToString()
    _check(_send(channel, fuzz_server, DECISION_SERVICE, "Evaluate", payload, token=False), "Evaluate", payload)


@FUZZ_SETTINGS
@given(
    topic=st.text(max_size=30) | st.sampled_from(["order.status.paid", "order.status.refunded", "a.b", "#", "*"]),
    tags=st.lists(st.text(max_size=10), max_size=5),
    key=st.text(max_size=20),
    properties=st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4),
    body=st.binary(max_size=100) | JSON_VALUES.map(lambda v: repr(v).encode()),
    content_type=st.sampled_from(
        ["", "application/json", "text/plain", "application/json; charset=latin-1", "x/y+json"]
    ),
)
def test_odd_but_well_formed_routes(fuzz_server, channel, topic, tags, key, properties, body, content_type) -> None:
    request = decision_pb2.RouteRequest(
        topic=topic, tags=tags, key=key, properties=properties, body=body, content_type=content_type
    )
    payload = request.SerializeToString()
    _check(_send(channel, fuzz_server, DECISION_SERVICE, "Route", payload, token=False), "Route", payload)


# hand-made hostile shapes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [63, 64, 65, 100, 101, 1_000, 10_000])
def test_deeply_nested_facts_and_bodies(fuzz_server, channel, depth: int) -> None:
    facts = nested_struct_bytes(depth)
    cases = {
        "Evaluate": length_delimited(1, b"pharmacist.otc_block") + length_delimited(3, facts),
        "EvaluateBatch": length_delimited(1, b"pharmacist.otc_block") + length_delimited(3, facts) * 2,
        "Route": length_delimited(1, b"order.status.paid") + length_delimited(5, facts),
    }
    for name, payload in cases.items():
        outcome = _send(channel, fuzz_server, DECISION_SERVICE, name, payload, token=False)
        _check(outcome, name, payload)
    scene = length_delimited(1, length_delimited(1, b"scene") + length_delimited(2, nested_list_value_bytes(depth)))
    payload = length_delimited(1, b"pharmacist.otc_block") + length_delimited(3, scene)
    _check(_send(channel, fuzz_server, DECISION_SERVICE, "Evaluate", payload, token=False), "Evaluate", payload)


def test_huge_fact_lists_and_maps(fuzz_server, channel) -> None:
    big_list = decision_pb2.EvaluateRequest(
        rule_set="pharmacist.otc_block", facts=_struct({"categoryId": list(range(20_000)), "role": "PHARMACIST"})
    )
    many_keys = decision_pb2.EvaluateRequest(
        rule_set="pharmacist.otc_block", facts=_struct({f"k{i}": i for i in range(10_000)})
    )
    adhoc_list = decision_pb2.EvaluateRequest(expression="l.size()", facts=_struct({"l": list(range(20_000))}))
    batch = decision_pb2.EvaluateBatchRequest(rule_set="pharmacist.otc_block", facts=[Struct()] * 10_001)
    for name, request in [("Evaluate", big_list), ("Evaluate", many_keys), ("Evaluate", adhoc_list)]:
        payload = request.SerializeToString()
        assert len(payload) < MAX_MESSAGE_BYTES
        _check(_send(channel, fuzz_server, DECISION_SERVICE, name, payload, token=False), name, payload)
    outcome = _send(channel, fuzz_server, DECISION_SERVICE, "EvaluateBatch", batch.SerializeToString(), token=False)
    assert outcome.code == Code.INVALID_ARGUMENT and "10000" in outcome.details.replace(",", ""), outcome


@pytest.mark.parametrize(("service", "name"), METHODS)
def test_oversized_requests_are_resource_exhausted(fuzz_server, channel, service, name: str) -> None:
    payload = length_delimited(1, b"x" * (MAX_MESSAGE_BYTES + 1))
    outcome = _send(channel, fuzz_server, service, name, payload, token=True)
    assert outcome.code == Code.RESOURCE_EXHAUSTED, outcome


INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\x80"]


@pytest.mark.parametrize("bad", INVALID_UTF8)
def test_invalid_utf8(fuzz_server, channel, bad: bytes) -> None:
    # In a string field protobuf refuses the message; in Route's bytes body a condition that reads it gets an error.
    strings = {
        "Evaluate": length_delimited(1, bad),
        "Route": length_delimited(1, b"order.status." + bad),
        "ValidateDocument": length_delimited(1, b"kind: RuleSet\nname: " + bad),
        "PutDocument": length_delimited(1, b"kind: RuleSet\nname: x\ndescription: " + bad),
        "GetDocument": length_delimited(1, b"RuleSet") + length_delimited(2, bad),
    }
    for name, payload in strings.items():
        service = DECISION_SERVICE if name in ("Evaluate", "Route") else ADMIN_SERVICE
        outcome = _send(channel, fuzz_server, service, name, payload, token=True)
        assert outcome.code == Code.INVALID_ARGUMENT, (name, outcome)
    body = decision_pb2.RouteRequest(topic="order.status.paid", tags=["PAID"], key="k", body=b'{"amount": "' + bad)
    outcome = _send(channel, fuzz_server, DECISION_SERVICE, "Route", body.SerializeToString(), token=False)
    assert outcome.code == Code.OK, outcome
    answer = decision_pb2.RouteResponse.FromString(outcome.response)
    errors = [s for s in answer.skipped if s.reason == decision_pb2.SKIP_REASON_ERROR]
    assert errors and all("utf-8" in s.detail.lower() for s in errors), answer


def test_unknown_fields_and_wrong_wire_types(fuzz_server, channel) -> None:
    unknown = length_delimited(1, b"pharmacist.otc_block") + varint(99 << 3 | 0) + varint(5)
    wrong_type = varint(1 << 3 | 0) + varint(7)  # rule_set sent as a varint
    group = varint(3 << 3 | 3) + varint(3 << 3 | 4)  # a start-group/end-group pair where facts should be
    for payload in (unknown, wrong_type, group, varint(2 << 3 | 0) + b"\xff" * 11):
        outcome = _send(channel, fuzz_server, DECISION_SERVICE, "Evaluate", payload, token=False)
        _check(outcome, "Evaluate", payload)


def test_the_server_answers_normally_after_the_fuzzing(fuzz_server, channel) -> None:
    request = decision_pb2.EvaluateRequest(expression="a + 1", facts=_struct({"a": 41}))
    outcome = _send(channel, fuzz_server, DECISION_SERVICE, "Evaluate", request.SerializeToString(), token=False)
    assert outcome.code == Code.OK
    assert decision_pb2.EvaluateResponse.FromString(outcome.response).result.number_value == 42
    assert crash_lines(fuzz_server.stderr()) == []
