"""The v1 contract as other languages see it, against a real server: machine-readable error details, exact JSON
facts and results, paged listings, writes that change nothing, and reflection v1 beside v1alpha."""

from __future__ import annotations

import json
import textwrap

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_reflection.v1alpha import reflection_pb2
from harness import ServerProcess

import verdict
from verdict.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc

DETAILS_KEY = "grpc-status-details-bin"
BIG = 2**63 - 25  # a Java long id far beyond what a double holds exactly


def _details(err: grpc.RpcError) -> tuple[error_details_pb2.ErrorInfo, list[tuple[str, str]], float | None]:
    """ErrorInfo, BadRequest violations and RetryInfo delay, read from the trailer as a Java or Go client would."""
    raw = dict(err.trailing_metadata())[DETAILS_KEY]
    status = status_pb2.Status.FromString(raw)
    assert status.code == err.code().value[0] and status.message == err.details()
    info, violations, delay = error_details_pb2.ErrorInfo(), [], None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            delay = retry.retry_delay.ToTimedelta().total_seconds()
    assert info.domain == "verdict"
    return info, violations, delay


@pytest.fixture
def stubs(server: ServerProcess):
    with server.channel() as channel:
        yield decision_pb2_grpc.DecisionServiceStub(channel), admin_pb2_grpc.AdminServiceStub(channel)


@pytest.fixture
def client(server: ServerProcess):
    with verdict.Client(server.target, token=server.token) as made:
        yield made


# errors ------------------------------------------------------------------------------------------------------------


def test_an_unknown_rule_set_carries_its_reason_and_name(stubs) -> None:
    decision, _ = stubs
    with pytest.raises(grpc.RpcError) as raised:
        decision.Evaluate(decision_pb2.EvaluateRequest(rule_set="no.such.rules", version=7), timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    info, _, _ = _details(raised.value)
    assert info.reason == "RULE_SET_NOT_FOUND"
    assert dict(info.metadata) == {"rule_set": "no.such.rules", "version": "7"}


def test_a_failing_rule_names_rule_code_line_and_column(client: verdict.Client, stubs) -> None:
    client.put_document(
        textwrap.dedent(
            """\
            kind: RuleSet
            name: contract.fails
            on_error: fail
            default: 0
            rules:
              - id: adds-a-map
                when: "x + {:} > 1"
                then: 1
            """
        )
    )
    decision, _ = stubs
    with pytest.raises(grpc.RpcError) as raised:
        decision.Evaluate(decision_pb2.EvaluateRequest(rule_set="contract.fails", facts_json='{"x": 1}'), timeout=10)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info, _, _ = _details(raised.value)
    assert info.reason == "RULE_FAILED"
    assert info.metadata["rule_set"] == "contract.fails" and info.metadata["rule_id"] == "adds-a-map"
    assert info.metadata["ql_code"] == "INVALID_BINARY_OPERAND"
    assert int(info.metadata["line"]) == 1 and int(info.metadata["column"]) >= 1
    with pytest.raises(verdict.RuleFailed) as typed:
        client.evaluate("contract.fails", {"x": 1})
    assert (typed.value.reason, typed.value.rule_id, typed.value.ql_code) == (
        "RULE_FAILED",
        "adds-a-map",
        "INVALID_BINARY_OPERAND",
    )


def test_a_rule_sets_own_time_budget_is_not_the_callers_deadline(client: verdict.Client) -> None:
    client.put_document(
        "kind: RuleSet\nname: contract.spins\non_error: fail\ntimeout_ms: 20\ndefault: 0\n"
        "rules:\n  - id: spin\n    when: 'while (true) { x = 1 }; true'\n    then: 1\n"
    )
    with pytest.raises(verdict.ScriptTimeout) as raised:
        client.evaluate("contract.spins", {})
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION  # a retry policy re-sends DEADLINE_EXCEEDED
    assert (raised.value.reason, raised.value.ql_code, raised.value.rule_id) == (
        "SCRIPT_TIMEOUT",
        "SCRIPT_TIME_OUT",
        "spin",
    )


def test_an_invalid_document_lists_every_problem_as_a_field_violation(stubs, server: ServerProcess) -> None:
    _, admin = stubs
    content = "kind: RuleSet\nname: contract.bad\nrules:\n  - id: a\n    when: '1 +'\n  - id: b\n    when: 'x &&'\n"
    with pytest.raises(grpc.RpcError) as raised:
        admin.PutDocument(admin_pb2.PutDocumentRequest(content=content), timeout=10, metadata=server.admin_metadata())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, violations, _ = _details(raised.value)
    assert info.reason == "DOCUMENT_INVALID" and int(info.metadata["problems"]) == len(violations) >= 2
    fields = [field for field, _ in violations]
    assert "rules[0].when" in fields and "rules[1].when" in fields
    assert all("line" in description for _, description in violations)


def test_the_sdk_exposes_document_problems_one_by_one(client: verdict.Client) -> None:
    with pytest.raises(verdict.DocumentInvalid) as raised:
        client.put_document("kind: RuleSet\nname: contract.bad2\nrules:\n  - id: a\n    when: '1 +'\n    then: 1\n")
    assert [v.field for v in raised.value.field_violations] == ["rules[0].when"]


def test_a_stale_write_names_both_versions(client: verdict.Client) -> None:
    client.put_document("kind: RuleSet\nname: contract.stale\ndefault: 1\nscript: '1'\n")
    client.put_document("kind: RuleSet\nname: contract.stale\ndefault: 2\nscript: '2'\n", expected_version=1)
    with pytest.raises(verdict.Conflict) as raised:
        client.put_document("kind: RuleSet\nname: contract.stale\ndefault: 3\nscript: '3'\n", expected_version=1)
    assert raised.value.reason == "VERSION_CONFLICT"
    assert (raised.value.metadata["expected_version"], raised.value.metadata["actual_version"]) == ("1", "2")


def test_bad_facts_name_the_field(stubs) -> None:
    decision, _ = stubs
    with pytest.raises(grpc.RpcError) as raised:
        decision.Evaluate(
            decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts_json='{"role": '), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info, violations, _ = _details(raised.value)
    assert info.reason == "FACTS_INVALID" and violations[0][0] == "facts_json"
    assert "line 1, column" in raised.value.details()


def test_an_admin_call_without_a_token_says_so(stubs) -> None:
    _, admin = stubs
    with pytest.raises(grpc.RpcError) as raised:
        admin.ListDocuments(admin_pb2.ListDocumentsRequest(), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert _details(raised.value)[0].reason == "TOKEN_MISSING"


def test_errors_keep_the_worker_trailer(stubs) -> None:
    decision, _ = stubs
    with pytest.raises(grpc.RpcError) as raised:
        decision.Evaluate(decision_pb2.EvaluateRequest(rule_set="missing"), timeout=10)
    assert "verdict-worker" in dict(raised.value.trailing_metadata())


# exact values --------------------------------------------------------------------------------------------------------


def test_json_facts_keep_a_long_exact_and_results_can_come_back_as_json(stubs) -> None:
    decision, _ = stubs
    request = decision_pb2.EvaluateRequest(
        expression=f"{{'next': id + 1, 'third': 1 / 3, 'same': id == {BIG}}}",
        facts_json=json.dumps({"id": BIG}),
        result_format=decision_pb2.RESULT_FORMAT_JSON,
    )
    answer = decision.Evaluate(request, timeout=10)
    assert not answer.HasField("result")
    result = json.loads(answer.result_json)
    assert result["next"] == BIG + 1 and result["same"] is True
    assert answer.result_json.count("0.3333333333") == 1  # the decimal as computed, not a double's digits


def test_the_sdk_sends_big_integers_exactly(client: verdict.Client) -> None:
    assert client.evaluate_expression("id + 1", {"id": BIG}).result == BIG + 1
    answers = client.evaluate_batch("pharmacist.otc_block", [{"role": "DOCTOR", "pin": BIG}] * 3)
    assert [a.result["action"] for a in answers] == ["SHOW"] * 3


def test_a_batch_takes_json_facts_but_not_both_encodings(stubs) -> None:
    decision, _ = stubs
    facts = [{"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001}, {"role": "DOCTOR"}]
    answer = decision.EvaluateBatch(
        decision_pb2.EvaluateBatchRequest(rule_set="pharmacist.otc_block", facts_json=json.dumps(facts)), timeout=10
    )
    assert [r.result.struct_value.fields["action"].string_value for r in answer.results] == ["HIDE", "SHOW"]
    both = decision_pb2.EvaluateBatchRequest(rule_set="pharmacist.otc_block", facts_json="[]")
    both.facts.add()
    with pytest.raises(grpc.RpcError) as raised:
        decision.EvaluateBatch(both, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(raised.value)[1][0][0] == "facts_json"
    with pytest.raises(grpc.RpcError) as raised:
        decision.EvaluateBatch(
            decision_pb2.EvaluateBatchRequest(rule_set="pharmacist.otc_block", facts_json='[{"a": 1}, 7]'), timeout=10
        )
    assert "facts_json[1]: must be a JSON object" in raised.value.details()


# listings and writes that change nothing ---------------------------------------------------------------------------


def test_a_long_history_comes_in_pages_that_each_fit(stubs, server: ServerProcess) -> None:
    _, admin = stubs
    metadata = server.admin_metadata()
    padding = "x" * (300 * 1024)
    for n in range(8):  # 8 versions of 300 KiB: 2.4 MiB of history, more than a page holds
        content = f"kind: RuleSet\nname: contract.paged\ndescription: '{padding}'\ndefault: {n}\nscript: '{n}'\n"
        admin.PutDocument(admin_pb2.PutDocumentRequest(content=content), timeout=10, metadata=metadata)
    request = admin_pb2.ListVersionsRequest(kind="RuleSet", name="contract.paged", include_content=True)
    pages = []
    while True:
        page = admin.ListVersions(request, timeout=10, metadata=metadata)
        pages.append([d.version for d in page.documents])
        assert page.ByteSize() < 2 * 1024 * 1024
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert len(pages) > 1 and [v for p in pages for v in p] == list(range(8, 0, -1))
    small = admin.ListVersions(
        admin_pb2.ListVersionsRequest(kind="RuleSet", name="contract.paged", page_size=3), timeout=10, metadata=metadata
    )
    assert [d.version for d in small.documents] == [8, 7, 6] and small.next_page_token
    assert all(d.content == "" for d in small.documents)  # a listing is names and versions unless asked
    with pytest.raises(grpc.RpcError) as raised:
        admin.ListVersions(
            admin_pb2.ListVersionsRequest(kind="RuleSet", name="contract.paged", page_token="not-mine"),
            timeout=10,
            metadata=metadata,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in raised.value.details()


def test_the_sdk_reads_every_page(client: verdict.Client) -> None:
    for n in range(3):
        client.put_document(f"kind: RuleSet\nname: contract.many.{n}\ndefault: 0\nscript: '0'\n")
    names = [d.name for d in client.list_documents("RuleSet")]
    assert {"contract.many.0", "contract.many.1", "contract.many.2"} <= set(names)
    assert names == sorted(names)


def test_writes_that_change_nothing_say_unchanged(client: verdict.Client) -> None:
    content = "kind: RuleSet\nname: contract.same\ndefault: 0\nscript: '1'\n"
    first = client.put_document(content)
    again = client.put_document(content)
    assert (again.version, again.unchanged, first.unchanged) == (first.version, True, False)
    back = client.activate_version("RuleSet", "contract.same", first.version)
    assert back.unchanged and back.version == first.version
    assert [d.version for d in client.list_versions("RuleSet", "contract.same")] == [first.version]


def test_deselecting_a_system_that_is_off_writes_nothing(client: verdict.Client) -> None:
    client.put_document(
        "kind: RouteTable\nname: contract.switch\ntopic: contract.switch\n"
        "systems:\n  - system: crm\n    target: crm.in\n    selected: true\n"
    )
    off = client.set_selection("contract.switch", "crm", False)
    again = client.set_selection("contract.switch", "crm", False)
    assert (off.unchanged, again.unchanged, again.version) == (False, True, off.version)


# reflection ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("package", ["grpc.reflection.v1", "grpc.reflection.v1alpha"])
def test_reflection_is_served_as_v1_and_v1alpha(server: ServerProcess, package: str) -> None:
    with server.channel() as channel:
        info = channel.stream_stream(
            f"/{package}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="verdict.v1.DecisionService"),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
        ]
        listed, decision_file, v1_file = list(info(iter(requests), timeout=10))
    names = {s.name for s in listed.list_services_response.service}
    assert {"verdict.v1.DecisionService", "verdict.v1.AdminService", "grpc.reflection.v1.ServerReflection"} <= names
    assert decision_file.file_descriptor_response.file_descriptor_proto
    assert v1_file.file_descriptor_response.file_descriptor_proto
