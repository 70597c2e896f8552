"""The `verdict eval | route | rules | select | deselect` commands against the fake servicer, in process."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

import verdict
from verdict.v1 import admin_pb2, decision_pb2
from verdict_server.cli import main

TOKEN = "token-from-the-data-dir"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str) -> Path:
    """A clean environment: the target from VERDICT_TARGET, the token in the data directory, nothing else."""
    for name in ("VERDICT_TOKEN", "VERDICT_ADMIN_TOKEN_FILE", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin.token").write_text(TOKEN + "\n")
    monkeypatch.setenv("VERDICT_DATA", str(data))
    monkeypatch.setenv("VERDICT_TARGET", target)
    return data


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_prints_the_result_and_how_it_was_reached(capsys, fake) -> None:
    fake.answers["Evaluate"] = decision_pb2.EvaluateResponse(
        result=verdict.to_value({"action": "HIDE"}),
        matched_rules=["block-otc"],
        rule_set="pharmacist.otc_block",
        version=3,
        decision_id="d-1",
        trace=[
            decision_pb2.RuleTrace(rule_id="block-otc", evaluated=True, matched=True, condition=verdict.to_value(True)),
            decision_pb2.RuleTrace(rule_id="audit", note="stopped after first match"),
        ],
    )
    code, out, err = run(
        capsys, "eval", "pharmacist.otc_block", "--facts", '{"role": "PHARMACIST"}', "--version", "3", "--explain"
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        '{"action": "HIDE"}',
        "rule set: pharmacist.otc_block v3",
        "matched: block-otc",
        "  block-otc: matched (condition true)",
        "  audit: stopped after first match",
        "decision: d-1",
    ]
    sent = fake.calls["Evaluate"][0]
    assert (sent.request.rule_set, sent.request.version, sent.request.explain) == ("pharmacist.otc_block", 3, True)
    assert json.loads(sent.request.facts_json) == {"role": "PHARMACIST"}
    assert "authorization" not in sent.metadata


def test_eval_json_output_and_facts_from_a_file(capsys, fake, tmp_path: Path) -> None:
    fake.answers["Evaluate"] = decision_pb2.EvaluateResponse(
        result=verdict.to_value(2.0),
        degraded=True,
        error=decision_pb2.EvalError(code="SCRIPT_TIME_OUT", message="too slow", rule_id="loop", line=2, column=3),
    )
    (tmp_path / "facts.json").write_text('{"n": 1}')
    code, out, _ = run(capsys, "eval", "--expression", "n + 1", "--facts", f"@{tmp_path / 'facts.json'}", "--json")
    assert code == 0
    answer = json.loads(out)
    assert answer["rule_set"] == ""
    assert answer["result"] == 2 and answer["degraded"] is True
    assert answer["error"] == {
        "code": "SCRIPT_TIME_OUT",
        "message": "too slow",
        "rule_id": "loop",
        "line": 2,
        "column": 3,
    }
    assert fake.calls["Evaluate"][0].request.expression == "n + 1"


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["eval"], "give a RULE_SET or --expression"),
        (["eval", "r", "--expression", "1"], "give a RULE_SET or --expression"),
        (["eval", "r", "--facts", "{bad"], "--facts is not valid JSON"),
        (["eval", "r", "--facts", "[1]"], "must be a JSON object"),
        (["eval", "r", "--facts", '{"id": 18014398509481985}'], "send it as a string"),
        (["route", "t", "--properties", '{"n": 1}'], "values must be strings"),
        (["route", "t", "--body", "{oops"], "--body is not valid JSON"),
        (["rules", "list", "--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["rules"], "required"),
    ],
)
def test_usage_errors_exit_with_2_and_call_nothing(capsys, fake, argv, complaint) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert complaint in capsys.readouterr().err
    assert not any(fake.calls.values())


def test_route_sends_tags_key_properties_and_body(capsys, fake) -> None:
    fake.answers["Route"] = decision_pb2.RouteResponse(
        destinations=[
            decision_pb2.Destination(system="settlement", target="s.t", priority=10, table="orders", version=2)
        ],
        skipped=[
            decision_pb2.Skipped(
                system="audit", table="orders", reason=decision_pb2.SKIP_REASON_NOT_SELECTED, version=2
            )
        ],
        decision_id="d-2",
    )
    code, out, _ = run(
        capsys,
        "route",
        "order.status.paid",
        "--tags",
        "PAID, VIP",
        "--key",
        "order-42",
        "--properties",
        '{"env": "prod"}',
        "--body",
        '{"amount": 99.5}',
    )
    assert code == 0
    assert out.splitlines() == [
        "deliver settlement -> s.t (table orders v2, priority 10)",
        "skip audit NOT_SELECTED (table orders v2)",
        "decision: d-2",
    ]
    sent = fake.calls["Route"][0].request
    assert (list(sent.tags), sent.key, dict(sent.properties)) == (["PAID", "VIP"], "order-42", {"env": "prod"})
    assert verdict.from_struct(sent.body_json) == {"amount": 99.5}


def test_route_sends_a_body_that_is_not_an_object_as_raw_json(capsys, fake) -> None:
    assert run(capsys, "route", "t", "--body", "[1, 2]")[0] == 0
    sent = fake.calls["Route"][0].request
    assert (sent.WhichOneof("payload"), sent.body, sent.content_type) == ("body", b"[1, 2]", "application/json")


def test_admin_commands_find_the_token_in_the_data_directory(capsys, fake, tmp_path: Path) -> None:
    document = tmp_path / "rules.yaml"
    document.write_text("kind: RuleSet\nname: a\n")
    fake.answers["PutDocument"] = admin_pb2.PutDocumentResponse(
        document=admin_pb2.DocumentVersion(kind="RuleSet", name="a", version=4)
    )
    code, out, _ = run(capsys, "rules", "put", str(document), "--expected-version", "3", "--author", "ann")
    assert (code, out) == (0, "stored RuleSet a version 4\n")
    sent = fake.calls["PutDocument"][0]
    assert (sent.request.content, sent.request.expected_version, sent.request.author) == (
        "kind: RuleSet\nname: a\n",
        3,
        "ann",
    )
    assert sent.metadata["authorization"] == f"Bearer {TOKEN}"


def test_token_precedence(capsys, fake, monkeypatch, tmp_path: Path) -> None:
    (tmp_path / "file.token").write_text("from-token-file\n")
    monkeypatch.setenv("VERDICT_TOKEN", "from-env")
    run(capsys, "rules", "list")
    run(capsys, "rules", "list", "--token-file", str(tmp_path / "file.token"))
    run(capsys, "rules", "list", "--token", "from-flag", "--token-file", str(tmp_path / "file.token"))
    sent = [call.metadata["authorization"] for call in fake.calls["ListDocuments"]]
    assert sent == ["Bearer from-env", "Bearer from-token-file", "Bearer from-flag"]


def test_a_missing_token_is_explained(capsys, fake, environment: Path) -> None:
    (environment / "admin.token").unlink()
    fake.fail("ListDocuments", grpc.StatusCode.UNAUTHENTICATED, "admin calls need a token")
    code, out, err = run(capsys, "rules", "list")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "verdict: UNAUTHENTICATED: admin calls need a token (no admin token found: pass --token or --token-file,"
        " or set VERDICT_TOKEN)"
    ]
    assert "authorization" not in fake.calls["ListDocuments"][0].metadata


def test_an_unreadable_token_file_is_an_error(capsys, fake, tmp_path: Path) -> None:
    code, _, err = run(capsys, "rules", "list", "--token-file", str(tmp_path / "absent"))
    assert code == 1
    assert err.startswith("verdict: cannot read the token file")
    assert not any(fake.calls.values())


def test_server_errors_are_one_line_and_exit_1(capsys, fake) -> None:
    fake.fail("GetDocument", grpc.StatusCode.NOT_FOUND, "RuleSet 'x' does not exist")
    code, out, err = run(capsys, "rules", "get", "RuleSet", "x")
    assert (code, out, err) == (1, "", "verdict: NOT_FOUND: RuleSet 'x' does not exist\n")


def test_rules_get_prints_the_content(capsys, fake) -> None:
    fake.answers["GetDocument"] = admin_pb2.GetDocumentResponse(
        document=admin_pb2.Document(kind="RuleSet", name="a", version=2, content="kind: RuleSet\n")
    )
    code, out, _ = run(capsys, "rules", "get", "RuleSet", "a", "--version", "2")
    assert (code, out) == (0, "kind: RuleSet\n")
    assert fake.calls["GetDocument"][0].request.version == 2


def test_rules_list_and_history_print_tables(capsys, fake) -> None:
    fake.answers["ListDocuments"] = admin_pb2.ListDocumentsResponse(
        documents=[admin_pb2.Document(kind="RuleSet", name="pharmacist.otc_block", version=12, author="ann")]
    )
    fake.answers["ListVersions"] = admin_pb2.ListVersionsResponse(
        documents=[
            admin_pb2.Document(kind="RuleSet", name="a", version=2, deleted=True, author="bob"),
            admin_pb2.Document(kind="RuleSet", name="a", version=1, author="ann"),
        ]
    )
    _, listing, _ = run(capsys, "rules", "list", "--kind", "RuleSet")
    assert listing.splitlines() == [
        "KIND     NAME                  VERSION  AUTHOR  WRITTEN",
        "RuleSet  pharmacist.otc_block  12       ann",
    ]
    assert fake.calls["ListDocuments"][0].request.kind == "RuleSet"
    _, history, _ = run(capsys, "rules", "history", "RuleSet", "a")
    assert history.splitlines() == [
        "VERSION  STATE    AUTHOR  WRITTEN",
        "2        deleted  bob",
        "1                 ann",
    ]


def test_activate_delete_select_and_deselect(capsys, fake) -> None:
    fake.answers["ActivateVersion"] = admin_pb2.ActivateVersionResponse(
        document=admin_pb2.DocumentVersion(kind="RuleSet", name="a", version=5)
    )
    fake.answers["DeleteDocument"] = admin_pb2.DeleteDocumentResponse(
        document=admin_pb2.DocumentVersion(kind="RuleSet", name="a", version=6)
    )
    fake.answers["SetSelection"] = admin_pb2.SetSelectionResponse(
        document=admin_pb2.DocumentVersion(kind="RouteTable", name="orders", version=3)
    )
    outputs = [
        run(capsys, "rules", "activate", "RuleSet", "a", "2", "--author", "ann")[1],
        run(capsys, "rules", "delete", "RuleSet", "a", "--expected-version", "5", "--author", "ann")[1],
        run(capsys, "select", "orders", "audit", "--author", "ann")[1],
        run(capsys, "deselect", "orders", "audit", "--expected-version", "3", "--author", "ann")[1],
    ]
    assert outputs == [
        "activated version 2 of RuleSet a as version 5\n",
        "deleted RuleSet a (version 6 records the deletion)\n",
        "selected audit in orders (version 3)\n",
        "deselected audit in orders (version 3)\n",
    ]
    assert fake.calls["ActivateVersion"][0].request.version == 2
    assert fake.calls["DeleteDocument"][0].request.expected_version == 5
    assert [(c.request.table, c.request.system, c.request.selected) for c in fake.calls["SetSelection"]] == [
        ("orders", "audit", True),
        ("orders", "audit", False),
    ]
    assert fake.calls["SetSelection"][1].request.expected_version == 3


def test_validate_lists_problems_and_exits_1_when_invalid(capsys, fake, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("kind: RuleSet\n")
    fake.answers["ValidateDocument"] = admin_pb2.ValidateDocumentResponse(
        ok=False,
        errors=[
            admin_pb2.DocumentError(message="missing name", line=0),
            admin_pb2.DocumentError(
                message="unexpected '+'", line=5, column=9, path="rules[0].when", code="SYNTAX_ERROR"
            ),
        ],
    )
    code, out, _ = run(capsys, "rules", "validate", str(tmp_path / "bad.yaml"))
    bad = tmp_path / "bad.yaml"
    assert code == 1
    assert out.splitlines() == [f"{bad}: missing name", f"{bad}:5:9: rules[0].when: unexpected '+' [SYNTAX_ERROR]"]
    fake.answers["ValidateDocument"] = admin_pb2.ValidateDocumentResponse(ok=True, kind="RuleSet", name="a")
    assert run(capsys, "rules", "validate", str(bad))[:2] == (0, f"{bad}: ok (RuleSet a)\n")


def test_an_unreadable_document_is_an_error(capsys, fake, tmp_path: Path) -> None:
    code, _, err = run(capsys, "rules", "put", str(tmp_path / "absent.yaml"))
    assert code == 1 and err.startswith("verdict: cannot read")
    assert not any(fake.calls.values())
