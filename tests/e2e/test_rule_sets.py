"""Rule sets end to end: write, version, evaluate, explain, batch, roll back and delete through a real server."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from harness import ServerProcess

from verdict.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc

GATE = textwrap.dedent(
    """\
    kind: RuleSet
    name: {name}
    hit_policy: first
    default: {{allow: false}}
    rules:
      - id: new-app
        when: versionCompare(appVersion, '{minimum}') >= 0
        then: {{allow: true}}
    """
)


def _struct(values: dict) -> Struct:
    struct = Struct()
    struct.update(values)
    return struct


WRAPPED_ANSWERS = {"PutDocument", "GetDocument", "DeleteDocument", "ActivateVersion", "SetSelection"}


class Calls:
    """Typed stubs on one channel, with the admin token attached to admin calls."""

    def __init__(self, process: ServerProcess) -> None:
        self.process = process
        self.channel = process.channel()
        self.decision = decision_pb2_grpc.DecisionServiceStub(self.channel)
        self.admin_stub = admin_pb2_grpc.AdminServiceStub(self.channel)

    def admin(self, method: str, request):
        """The answer of an admin call; of a write or a GetDocument, the document it names."""
        response = getattr(self.admin_stub, method)(request, timeout=10, metadata=self.process.admin_metadata())
        return response.document if method in WRAPPED_ANSWERS else response

    def put(self, content: str, expected_version: int = 0, author: str = "tests") -> admin_pb2.DocumentVersion:
        return self.admin(
            "PutDocument",
            admin_pb2.PutDocumentRequest(content=content, expected_version=expected_version, author=author),
        )

    def evaluate(self, rule_set: str, facts: dict, **fields) -> decision_pb2.EvaluateResponse:
        return self.decision.Evaluate(
            decision_pb2.EvaluateRequest(rule_set=rule_set, facts=_struct(facts), **fields), timeout=10
        )

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def calls(server: ServerProcess):
    c = Calls(server)
    yield c
    c.close()


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    tag, length = bytes([number << 3 | 2]), len(payload)
    varint = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            return tag + bytes(varint) + payload


def _deep_request(levels: int) -> bytes:
    """EvaluateRequest{rule_set, facts: {"x": {"x": ... levels deep}}} as bytes."""
    struct = b""
    for _ in range(levels):
        value = _field(5, struct)  # Value.struct_value
        struct = _field(1, _field(1, b"x") + _field(2, value))  # Struct.fields entry {key, value}
    return _field(1, b"pharmacist.otc_block") + _field(3, struct)


def _allow(response: decision_pb2.EvaluateResponse) -> bool:
    return response.result.struct_value.fields["allow"].bool_value


def test_put_evaluate_roll_back_and_delete(calls: Calls) -> None:
    name = "tests.gate.lifecycle"
    v1 = calls.put(GATE.format(name=name, minimum="2.6.8"), author="alice")
    assert (v1.kind, v1.name, v1.version) == ("RuleSet", name, 1)
    assert _allow(calls.evaluate(name, {"appVersion": "2.10.0"}))  # 2.10.0 > 2.6.8 numerically, not as text

    v2 = calls.put(GATE.format(name=name, minimum="3.0.0"), expected_version=1, author="bob")
    assert v2.version == 2
    answer = calls.evaluate(name, {"appVersion": "2.10.0"})
    assert (answer.version, _allow(answer)) == (2, False)
    assert _allow(calls.evaluate(name, {"appVersion": "2.10.0"}, version=1))  # an old version stays callable

    history = calls.admin("ListVersions", admin_pb2.ListVersionsRequest(kind="RuleSet", name=name)).documents
    assert [(d.version, d.author) for d in history] == [(2, "bob"), (1, "alice")]  # newest first
    assert all(d.created_at.seconds > 0 for d in history)

    rolled = calls.admin(
        "ActivateVersion", admin_pb2.ActivateVersionRequest(kind="RuleSet", name=name, version=1, author="carol")
    )
    assert rolled.version == 3
    answer = calls.evaluate(name, {"appVersion": "2.10.0"})
    assert (answer.version, _allow(answer)) == (3, True)
    v3 = calls.admin("GetDocument", admin_pb2.GetDocumentRequest(kind="RuleSet", name=name))
    assert v3.content == GATE.format(name=name, minimum="2.6.8") and v3.active

    calls.admin("DeleteDocument", admin_pb2.DeleteDocumentRequest(kind="RuleSet", name=name, expected_version=3))
    with pytest.raises(grpc.RpcError) as raised:
        calls.evaluate(name, {"appVersion": "2.10.0"})
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    old = calls.admin("GetDocument", admin_pb2.GetDocumentRequest(kind="RuleSet", name=name, version=2))
    assert "3.0.0" in old.content  # deleting keeps the history


def test_a_stale_write_is_aborted_and_changes_nothing(calls: Calls) -> None:
    name = "tests.gate.stale"
    calls.put(GATE.format(name=name, minimum="1.0.0"))
    calls.put(GATE.format(name=name, minimum="2.0.0"), expected_version=1)
    with pytest.raises(grpc.RpcError) as raised:
        calls.put(GATE.format(name=name, minimum="9.0.0"), expected_version=1)
    assert raised.value.code() == grpc.StatusCode.ABORTED
    history = calls.admin("ListVersions", admin_pb2.ListVersionsRequest(kind="RuleSet", name=name)).documents
    assert [d.version for d in history] == [2, 1]
    assert "2.0.0" in calls.admin("GetDocument", admin_pb2.GetDocumentRequest(kind="RuleSet", name=name)).content


def test_an_invalid_document_is_refused_with_every_problem_and_its_position(calls: Calls) -> None:
    content = textwrap.dedent(
        """\
        kind: RuleSet
        name: tests.broken
        hit_policy: sometimes
        rules:
          - id: a
            when: "amount > "
            then: 1
          - then: 2
        """
    )
    with pytest.raises(grpc.RpcError) as raised:
        calls.put(content)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "hit_policy" in raised.value.details()
    validation = calls.admin("ValidateDocument", admin_pb2.ValidateDocumentRequest(content=content))
    assert not validation.ok
    by_path = {error.path: error for error in validation.errors}
    assert by_path["hit_policy"].line == 3
    when_errors = [e for e in validation.errors if e.path.endswith("when")]
    assert when_errors and when_errors[0].line == 6 and when_errors[0].column > 10
    assert any(e.line == 8 and "id" in e.message for e in validation.errors)
    with pytest.raises(grpc.RpcError) as missing:
        calls.admin("GetDocument", admin_pb2.GetDocumentRequest(kind="RuleSet", name="tests.broken"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_bad_requests_get_invalid_argument_naming_the_field(calls: Calls) -> None:
    with pytest.raises(grpc.RpcError) as no_name:
        calls.evaluate("", {})
    assert no_name.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "rule_set" in no_name.value.details()
    # Nested past protobuf's own limit (the client library cannot even build it, so the bytes are made by hand):
    # refused while decoding, as a caller mistake, not INTERNAL.
    raw_evaluate = calls.channel.unary_unary("/verdict.v1.DecisionService/Evaluate")
    with pytest.raises(grpc.RpcError) as too_deep:
        raw_evaluate(_deep_request(200), timeout=10)
    assert too_deep.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "EvaluateRequest" in too_deep.value.details()
    with pytest.raises(grpc.RpcError) as bad_kind:
        calls.admin("GetDocument", admin_pb2.GetDocumentRequest(kind="Nope", name="x"))
    assert bad_kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "kind" in bad_kind.value.details()


def test_explain_traces_each_rule_condition(calls: Calls) -> None:
    answer = calls.evaluate(
        "pharmacist.otc_block", {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001}, explain=True
    )
    trace = {entry.rule_id: entry for entry in answer.trace}
    assert trace["block-otc"].evaluated and trace["block-otc"].matched
    assert trace["block-otc"].condition.bool_value is True
    assert list(answer.matched_rules) == ["block-otc"]
    answer = calls.evaluate(
        "pharmacist.otc_block", {"scene": "MEDICAL", "role": "PHARMACIST", "categoryId": 1001}, explain=True
    )
    trace = {entry.rule_id: entry for entry in answer.trace}
    assert trace["block-otc"].evaluated and not trace["block-otc"].matched
    assert trace["block-otc"].condition.bool_value is False


def test_batch_evaluates_many_facts_against_one_version(calls: Calls) -> None:
    facts = [
        {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": category} for category in (1001, 2001, 1003, 4242)
    ]
    response = calls.decision.EvaluateBatch(
        decision_pb2.EvaluateBatchRequest(rule_set="pharmacist.otc_block", facts=[_struct(f) for f in facts]),
        timeout=10,
    )
    actions = [r.result.struct_value.fields["action"].string_value for r in response.results]
    assert actions == ["HIDE", "SHOW", "HIDE", "SHOW"]
    assert len({r.decision_id for r in response.results}) == 4
    assert len({r.version for r in response.results}) == 1


def test_decision_ids_are_unique(calls: Calls) -> None:
    ids = {calls.evaluate("pharmacist.otc_block", {"role": "DOCTOR"}).decision_id for _ in range(50)}
    assert len(ids) == 50


def test_on_error_default_degrades_with_the_error(calls: Calls) -> None:
    name = "tests.degrade"
    calls.put(
        textwrap.dedent(
            f"""\
            kind: RuleSet
            name: {name}
            on_error: default
            default: fallback
            rules:
              - id: compare
                when: amount > 10
                then: big
            """
        )
    )
    answer = calls.evaluate(name, {"amount": "not a number"})
    assert answer.degraded
    assert answer.result.string_value == "fallback"
    assert answer.error.rule_id == "compare" and answer.error.code and answer.error.line == 1
    assert calls.evaluate(name, {"amount": 11}).result.string_value == "big"


def test_on_error_fail_fails_the_call(calls: Calls) -> None:
    name = "tests.fail"
    calls.put(
        f"kind: RuleSet\nname: {name}\non_error: fail\ndefault: 0\nrules:\n  - id: r\n    when: amount > 10\n    then: 1\n"
    )
    with pytest.raises(grpc.RpcError) as raised:
        calls.evaluate(name, {"amount": [1]})
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "'r'" in raised.value.details()


def test_runaway_rules_time_out_and_the_server_keeps_answering(calls: Calls) -> None:
    name = "tests.runaway"
    calls.put(
        f"kind: RuleSet\nname: {name}\non_error: fail\ntimeout_ms: 30\ndefault: 0\nrules:\n"
        "  - id: spin\n    when: 'while (true) { x = 1 }; true'\n    then: 1\n"
    )
    with pytest.raises(grpc.RpcError) as raised:
        calls.evaluate(name, {})
    # The rule set's own budget is not the caller's deadline: FAILED_PRECONDITION, which no retry policy re-sends.
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SCRIPT_TIME_OUT" in raised.value.details()
    assert calls.evaluate("pharmacist.otc_block", {"role": "DOCTOR"}).result.struct_value.fields["action"].string_value


def test_adhoc_expressions(calls: Calls, start_server) -> None:
    answer = calls.decision.Evaluate(
        decision_pb2.EvaluateRequest(expression="a * 2 + 1", facts=_struct({"a": 20})), timeout=10
    )
    assert answer.result.number_value == 41
    with pytest.raises(grpc.RpcError) as bad:
        calls.decision.Evaluate(decision_pb2.EvaluateRequest(expression="a +* 2"), timeout=10)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # `+*` is one (unknown) operator, as in QLExpress, reported where it starts
    assert "SYNTAX_ERROR" in bad.value.details() and "[Line: 1, Column: 3]" in bad.value.details()
    with pytest.raises(grpc.RpcError) as huge:
        calls.decision.Evaluate(decision_pb2.EvaluateRequest(expression="1 + " * 20_000 + "1"), timeout=10)
    assert huge.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "characters" in huge.value.details()
    locked = start_server()  # without --allow-adhoc
    with locked.channel() as channel, pytest.raises(grpc.RpcError) as refused:
        decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
            decision_pb2.EvaluateRequest(expression="1"), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_second_process_on_the_same_store_sees_writes_within_the_poll_interval(
    server: ServerProcess, start_server
) -> None:
    other = start_server(data_dir=server.data_dir)  # same SQLite file, another process (like a replica)
    name = "tests.gate.shared"
    writer = Calls(server)
    reader = Calls(other)
    try:
        writer.put(GATE.format(name=name, minimum="1.0.0"))
        deadline = time.monotonic() + 10
        while True:
            try:
                assert _allow(reader.evaluate(name, {"appVersion": "1.2.0"}))
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.NOT_FOUND
                assert time.monotonic() < deadline, "the other process never saw the write"
                time.sleep(0.05)
    finally:
        writer.close()
        reader.close()


def test_rules_dir_serves_yaml_files_and_reloads_them(start_server, tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "gate.yaml").write_text(GATE.format(name="dir.gate", minimum="2.0.0"))
    process = start_server("--rules-dir", str(rules_dir))
    calls = Calls(process)
    try:
        assert not _allow(calls.evaluate("dir.gate", {"appVersion": "1.5.0"}))
        (rules_dir / "gate.yaml").write_text(GATE.format(name="dir.gate", minimum="1.0.0"))
        deadline = time.monotonic() + 10
        while not _allow(calls.evaluate("dir.gate", {"appVersion": "1.5.0"})):
            assert time.monotonic() < deadline, "the changed file was not reloaded"
            time.sleep(0.05)
        with pytest.raises(grpc.RpcError) as read_only:
            calls.put(GATE.format(name="dir.other", minimum="1.0.0"))
        assert read_only.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        calls.close()


def test_cli_puts_evaluates_and_lists(server: ServerProcess, tmp_path: Path) -> None:
    document = tmp_path / "gate.yaml"
    document.write_text(GATE.format(name="tests.cli.gate", minimum="2.0.0"))
    put = server.cli("rules", "put", str(document), "--author", "cli")
    assert put.returncode == 0, put.stderr
    evaluated = server.cli("eval", "tests.cli.gate", "--facts", '{"appVersion": "2.1.0"}', "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert '"allow": true' in evaluated.stdout.replace("'", '"').lower()
    listed = server.cli("rules", "list")
    assert "tests.cli.gate" in listed.stdout
    missing = server.cli("eval", "no.such.rules", "--facts", "{}")
    assert missing.returncode == 1 and "no.such.rules" in missing.stderr


POLICIES = textwrap.dedent(
    """\
    kind: RuleSet
    name: tests.policy.{policy}
    hit_policy: {policy}
    default: none
    rules:
      - id: low
        priority: 1
        when: n > 0
        then: low
      - id: high
        priority: 10
        when: n > 5
        then: high
      - id: disabled
        enabled: false
        when: n > -100
        then: never
    """
)


@pytest.mark.parametrize(
    ("policy", "n", "result", "matched"),
    [
        ("first", 7, "low", ["low"]),
        ("priority", 7, "high", ["high"]),
        ("priority", 3, "low", ["low"]),
        ("collect", 7, ["low", "high"], ["low", "high"]),
        ("collect", -1, "none", []),
        ("unique", 3, "low", ["low"]),
        ("first", -1, "none", []),
    ],
)
def test_every_hit_policy_through_the_server(calls: Calls, policy: str, n: int, result, matched: list[str]) -> None:
    calls.put(POLICIES.format(policy=policy))
    answer = calls.evaluate(f"tests.policy.{policy}", {"n": n})
    plain = answer.result.string_value or [v.string_value for v in answer.result.list_value.values]
    assert (plain, list(answer.matched_rules)) == (result, matched)


def test_unique_with_two_matches_is_a_failure_naming_both(calls: Calls) -> None:
    calls.put(POLICIES.format(policy="unique"))
    answer = calls.evaluate("tests.policy.unique", {"n": 7})
    assert answer.degraded and answer.result.string_value == "none"
    assert answer.error.code == "UNIQUE_VIOLATION"
    assert "low" in answer.error.message and "high" in answer.error.message


def test_a_broken_new_version_is_refused_and_the_old_one_keeps_serving(calls: Calls) -> None:
    name = "tests.gate.keep"
    calls.put(GATE.format(name=name, minimum="2.0.0"))
    broken = GATE.format(name=name, minimum="2.0.0").replace(">= 0", ">= ")
    with pytest.raises(grpc.RpcError) as raised:
        calls.put(broken, expected_version=1)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "line 7" in raised.value.details().lower() or "7:" in raised.value.details()
    answer = calls.evaluate(name, {"appVersion": "2.1.0"})
    assert (answer.version, _allow(answer)) == (1, True)


def test_a_restart_keeps_every_version(start_server, tmp_path: Path) -> None:
    data_dir = tmp_path / "kept"
    first = start_server(data_dir=data_dir)
    writer = Calls(first)
    try:
        for minimum in ("1.0.0", "2.0.0", "3.0.0"):
            writer.put(GATE.format(name="tests.kept", minimum=minimum), author="ops")
    finally:
        writer.close()
    assert first.stop() == 0
    second = start_server(data_dir=data_dir)
    reader = Calls(second)
    try:
        history = reader.admin(
            "ListVersions", admin_pb2.ListVersionsRequest(kind="RuleSet", name="tests.kept", include_content=True)
        ).documents
        assert [(d.version, d.author) for d in history] == [(3, "ops"), (2, "ops"), (1, "ops")]
        assert [GATE.format(name="tests.kept", minimum=m) for m in ("3.0.0", "2.0.0", "1.0.0")] == [
            d.content for d in history
        ]
        assert reader.evaluate("tests.kept", {"appVersion": "2.5.0"}).version == 3
        assert second.token == first.token  # the admin token survives a restart too
    finally:
        reader.close()
