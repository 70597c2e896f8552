"""verdict.Client against a fake servicer: what goes on the wire, what comes back, errors, retries, token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

import verdict
from verdict.v1 import admin_pb2, decision_pb2

TOKEN = "s3cret-token"


@pytest.fixture
def client(target: str) -> Iterator[verdict.Client]:
    with verdict.Client(target, token=TOKEN) as made:
        yield made


def value(python) -> struct_pb2.Value:
    return verdict.to_value(python)


# ------------------------------------------------------------------------------------------------------ decisions


def test_evaluate_sends_the_request_and_returns_plain_python(client, fake) -> None:
    fake.answers["Evaluate"] = decision_pb2.EvaluateResponse(
        result=value({"action": "HIDE", "codes": [1001.0, 2.5]}),
        matched_rules=["block-otc"],
        rule_set="pharmacist.otc_block",
        version=3,
        decision_id="d-1",
    )
    answer = client.evaluate(
        "pharmacist.otc_block", {"role": "PHARMACIST", "categoryId": 1001}, version=3, explain=True
    )
    assert answer == verdict.Evaluation(
        result={"action": "HIDE", "codes": [1001, 2.5]},
        matched_rules=["block-otc"],
        rule_set="pharmacist.otc_block",
        version=3,
        decision_id="d-1",
        degraded=False,
        error=None,
        trace=[],
    )
    sent = fake.calls["Evaluate"][0].request
    assert (sent.rule_set, sent.version, sent.explain, sent.expression) == ("pharmacist.otc_block", 3, True, "")
    assert json.loads(sent.facts_json) == {"role": "PHARMACIST", "categoryId": 1001}
    assert sent.result_format == decision_pb2.RESULT_FORMAT_JSON


def test_a_degraded_answer_carries_its_error_and_the_trace(client, fake) -> None:
    error = decision_pb2.EvalError(code="INVALID_BINARY_OPERAND", message="bad +", rule_id="r2", line=1, column=7)
    fake.answers["Evaluate"] = decision_pb2.EvaluateResponse(
        result=value("SHOW"),
        degraded=True,
        error=error,
        trace=[
            decision_pb2.RuleTrace(rule_id="r1", evaluated=True, matched=False, condition=value(False)),
            decision_pb2.RuleTrace(rule_id="r2", evaluated=True, error=error),
            decision_pb2.RuleTrace(rule_id="r3", note="disabled"),
        ],
    )
    answer = client.evaluate("rules", {})
    expected_error = verdict.EvalError("INVALID_BINARY_OPERAND", "bad +", "r2", 1, 7)
    assert answer.degraded and answer.error == expected_error
    assert answer.trace == [
        verdict.RuleTrace("r1", evaluated=True, matched=False, condition=False, error=None, note=""),
        verdict.RuleTrace("r2", evaluated=True, matched=False, condition=None, error=expected_error, note=""),
        verdict.RuleTrace("r3", evaluated=False, matched=False, condition=None, error=None, note="disabled"),
    ]


def test_an_answer_without_a_result_is_none(client, fake) -> None:
    assert client.evaluate("rules", {}).result is None


def test_evaluate_expression_sends_the_expression(client, fake) -> None:
    fake.answers["Evaluate"] = decision_pb2.EvaluateResponse(result=value(42.0))
    assert client.evaluate_expression("n + 1", {"n": 41}).result == 42
    sent = fake.calls["Evaluate"][0].request
    assert (sent.expression, sent.rule_set) == ("n + 1", "")


def test_evaluate_batch_keeps_the_order(client, fake) -> None:
    def echo(request):
        return decision_pb2.EvaluateBatchResponse(
            results=[
                decision_pb2.EvaluateResponse(result_json=json.dumps(facts["n"]))
                for facts in json.loads(request.facts_json)
            ]
        )

    fake.answers["EvaluateBatch"] = echo
    answers = client.evaluate_batch("rules", ({"n": n} for n in range(5)), version=2)
    assert [a.result for a in answers] == [0, 1, 2, 3, 4]
    assert fake.calls["EvaluateBatch"][0].request.version == 2


def test_route_sends_a_dict_body_as_structured_json(client, fake) -> None:
    fake.answers["Route"] = decision_pb2.RouteResponse(
        destinations=[
            decision_pb2.Destination(system="settlement", target="t", priority=10, table="orders", version=2)
        ],
        skipped=[
            decision_pb2.Skipped(
                system="audit", table="orders", reason=decision_pb2.SKIP_REASON_GRAY_EXCLUDED, detail="b=40"
            ),
            decision_pb2.Skipped(system="new", table="orders", reason=99),
        ],
        decision_id="d-9",
    )
    answer = client.route(
        "order.status.paid", tags=["PAID", "VIP"], key="order-42", properties={"env": "prod"}, body={"amount": 99.5}
    )
    assert answer.destinations == [verdict.Destination("settlement", "t", 10, "orders", 2)]
    assert [(s.system, s.reason, s.detail) for s in answer.skipped] == [
        ("audit", "GRAY_EXCLUDED", "b=40"),
        ("new", "UNKNOWN_99", ""),
    ]
    assert answer.decision_id == "d-9"
    sent = fake.calls["Route"][0].request
    assert (sent.topic, list(sent.tags), sent.key, dict(sent.properties)) == (
        "order.status.paid",
        ["PAID", "VIP"],
        "order-42",
        {"env": "prod"},
    )
    assert sent.WhichOneof("payload") == "body_json"
    assert verdict.from_struct(sent.body_json) == {"amount": 99.5}


@pytest.mark.parametrize("body", [b'{"amount": 1}', '{"amount": 1}'])
def test_route_sends_bytes_and_str_bodies_raw_as_json(client, fake, body) -> None:
    client.route("t", body=body)
    sent = fake.calls["Route"][0].request
    assert sent.WhichOneof("payload") == "body"
    assert (sent.body, sent.content_type) == (b'{"amount": 1}', "application/json")


def test_route_without_a_body_sends_none(client, fake) -> None:
    client.route("t")
    assert fake.calls["Route"][0].request.WhichOneof("payload") is None


def test_route_refuses_arguments_it_cannot_send(client, fake) -> None:
    with pytest.raises(TypeError, match="list of strings"):
        client.route("t", tags="PAID")
    with pytest.raises(TypeError, match="str to str"):
        client.route("t", properties={"n": 1})
    with pytest.raises(TypeError, match="body must be"):
        client.route("t", body=12)
    assert fake.calls["Route"] == []


# ---------------------------------------------------------------------------------------------------------- admin


def test_admin_calls_send_the_bearer_token_and_decision_calls_do_not(client, fake) -> None:
    client.list_documents()
    client.evaluate("rules", {})
    assert fake.calls["ListDocuments"][0].metadata["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in fake.calls["Evaluate"][0].metadata


def test_without_a_token_no_authorization_is_sent(target, fake) -> None:
    with verdict.Client(target) as anonymous:
        anonymous.list_documents()
    assert "authorization" not in fake.calls["ListDocuments"][0].metadata


def test_put_document(client, fake) -> None:
    fake.answers["PutDocument"] = admin_pb2.PutDocumentResponse(
        document=admin_pb2.DocumentVersion(kind="RuleSet", name="a", version=4)
    )
    assert client.put_document("kind: RuleSet", expected_version=3, author="ann") == verdict.DocumentVersion(
        "RuleSet", "a", 4
    )
    sent = fake.calls["PutDocument"][0].request
    assert (sent.content, sent.expected_version, sent.author) == ("kind: RuleSet", 3, "ann")


def test_get_and_list_documents(client, fake) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=1_700_000_000)
    record = admin_pb2.Document(
        kind="RuleSet", name="a", version=2, content="x", active=True, author="ann", created_at=stamp
    )
    fake.answers["GetDocument"] = admin_pb2.GetDocumentResponse(document=record)
    fake.answers["ListDocuments"] = admin_pb2.ListDocumentsResponse(documents=[record])
    fake.answers["ListVersions"] = admin_pb2.ListVersionsResponse(
        documents=[admin_pb2.Document(kind="RuleSet", name="a", version=3, deleted=True), record]
    )
    document = client.get_document("RuleSet", "a", 2)
    assert document == verdict.Document(
        "RuleSet",
        "a",
        2,
        "x",
        active=True,
        author="ann",
        created_at=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
        deleted=False,
    )
    assert client.list_documents("RuleSet") == [document]
    history = client.list_versions("RuleSet", "a")
    assert [(d.version, d.deleted, d.created_at) for d in history] == [(3, True, None), (2, False, document.created_at)]
    assert (fake.calls["GetDocument"][0].request.version, fake.calls["ListDocuments"][0].request.kind) == (2, "RuleSet")
    assert fake.calls["ListVersions"][0].request.name == "a"


def test_delete_activate_and_set_selection_send_their_fields(client, fake) -> None:
    client.delete_document("RuleSet", "a", expected_version=5, author="ann")
    client.activate_version("RuleSet", "a", 2, expected_version=6, author="bob")
    client.set_selection("orders", "audit", False, expected_version=7, author="cy")
    delete = fake.calls["DeleteDocument"][0].request
    activate = fake.calls["ActivateVersion"][0].request
    select = fake.calls["SetSelection"][0].request
    assert (delete.kind, delete.name, delete.expected_version, delete.author) == ("RuleSet", "a", 5, "ann")
    assert (activate.version, activate.expected_version, activate.author) == (2, 6, "bob")
    assert (select.table, select.system, select.selected, select.expected_version) == ("orders", "audit", False, 7)


def test_validate_document_lists_every_problem(client, fake) -> None:
    fake.answers["ValidateDocument"] = admin_pb2.ValidateDocumentResponse(
        ok=False,
        kind="RuleSet",
        name="x",
        errors=[
            admin_pb2.DocumentError(message="must be a list", line=3, column=8, path="rules"),
            admin_pb2.DocumentError(message="bad QL", line=5, column=2, path="rules[0].when", code="SYNTAX_ERROR"),
        ],
    )
    validation = client.validate_document("kind: RuleSet\n")
    assert not validation.valid and (validation.kind, validation.name) == ("RuleSet", "x")
    assert validation.problems[1] == verdict.DocumentProblem("bad QL", 5, 2, "rules[0].when", "SYNTAX_ERROR")
    assert str(validation.problems[0]) == "line 3, column 8 (rules): must be a list"


# --------------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("code", "exception"),
    [
        (grpc.StatusCode.NOT_FOUND, verdict.NotFound),
        (grpc.StatusCode.INVALID_ARGUMENT, verdict.InvalidArgument),
        (grpc.StatusCode.ABORTED, verdict.Conflict),
        (grpc.StatusCode.UNAUTHENTICATED, verdict.Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, verdict.PermissionDenied),
        (grpc.StatusCode.UNAVAILABLE, verdict.Unavailable),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, verdict.ResourceExhausted),
        (grpc.StatusCode.FAILED_PRECONDITION, verdict.FailedPrecondition),
        (grpc.StatusCode.INTERNAL, verdict.VerdictError),
        (grpc.StatusCode.UNIMPLEMENTED, verdict.VerdictError),
    ],
)
def test_status_codes_become_typed_exceptions(target, fake, code, exception) -> None:
    fake.fail("PutDocument", code, "the server explains")
    with verdict.Client(target) as client, pytest.raises(exception) as caught:
        client.put_document("x")
    assert type(caught.value) is exception
    assert (caught.value.code, caught.value.message) == (code, "the server explains")
    assert str(caught.value) == f"{code.name}: the server explains"
    assert isinstance(caught.value.__cause__, grpc.RpcError)


def test_a_call_past_its_deadline_is_deadline_exceeded(client, fake) -> None:
    fake.answers["Evaluate"] = "block"
    with pytest.raises(verdict.DeadlineExceeded):
        client.evaluate("rules", {}, timeout=0.2)


def test_an_unreachable_server_is_unavailable() -> None:
    with verdict.Client("127.0.0.1:1", retries=0) as client, pytest.raises(verdict.Unavailable):
        client.evaluate("rules", {})


# -------------------------------------------------------------------------------------------------------- retries


def test_idempotent_calls_are_retried_on_unavailable(client, fake) -> None:
    fake.fail("Evaluate", grpc.StatusCode.UNAVAILABLE, times=2)
    fake.fail("GetDocument", grpc.StatusCode.UNAVAILABLE, times=3)
    fake.answers["Evaluate"] = decision_pb2.EvaluateResponse(result=value("ok"))
    assert client.evaluate("rules", {}).result == "ok"
    client.get_document("RuleSet", "a")
    assert (len(fake.calls["Evaluate"]), len(fake.calls["GetDocument"])) == (3, 4)


def test_retries_stop_after_the_configured_number(target, fake) -> None:
    fake.fail("Route", grpc.StatusCode.UNAVAILABLE, times=10)
    with verdict.Client(target, retries=2) as client, pytest.raises(verdict.Unavailable):
        client.route("t")
    assert len(fake.calls["Route"]) == 3


def test_writes_are_never_retried(client, fake) -> None:
    for method in ("PutDocument", "DeleteDocument", "ActivateVersion", "SetSelection"):
        fake.fail(method, grpc.StatusCode.UNAVAILABLE)
    for call in (
        lambda: client.put_document("x"),
        lambda: client.delete_document("RuleSet", "a"),
        lambda: client.activate_version("RuleSet", "a", 1),
        lambda: client.set_selection("t", "s", True),
    ):
        with pytest.raises(verdict.Unavailable):
            call()
    assert {method: len(calls) for method, calls in fake.calls.items()} == {
        "PutDocument": 1,
        "DeleteDocument": 1,
        "ActivateVersion": 1,
        "SetSelection": 1,
    }


def test_other_codes_are_not_retried(client, fake) -> None:
    fake.fail("Evaluate", grpc.StatusCode.INTERNAL)
    with pytest.raises(verdict.VerdictError):
        client.evaluate("rules", {})
    assert len(fake.calls["Evaluate"]) == 1


def test_retries_zero_means_one_attempt(target, fake) -> None:
    fake.fail("Evaluate", grpc.StatusCode.UNAVAILABLE)
    with verdict.Client(target, retries=0) as client, pytest.raises(verdict.Unavailable):
        client.evaluate("rules", {})
    assert len(fake.calls["Evaluate"]) == 1


# ---------------------------------------------------------------------------------------------------- construction


def test_bad_client_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="retries"):
        verdict.Client(retries=9)
    with pytest.raises(ValueError, match="both client_cert and client_key"):
        verdict.Client(client_cert=b"pem")
    with pytest.raises(ValueError, match="empty"):
        verdict.Client(token="  ")


def test_the_token_is_sent_without_surrounding_whitespace(target, fake) -> None:
    with verdict.Client(target, token=f"{TOKEN}\n") as client:  # as read from a token file
        client.list_documents()
    assert fake.calls["ListDocuments"][0].metadata["authorization"] == f"Bearer {TOKEN}"
