"""Nothing let in: admin calls need the token, ad-hoc QL needs the flag, TLS mistakes stop the start, and secrets
never reach a log."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from harness import ROOT, ServerProcess
from reliability.reliability_support import ADMIN_SERVICE, Admin, method_path, request_class

from verdict.v1 import admin_pb2, decision_pb2, decision_pb2_grpc

ADMIN_METHODS = [method.name for method in ADMIN_SERVICE.methods]


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Started with default flags: no ad-hoc expressions."""
    with ServerProcess(tmp_path_factory.mktemp("access") / "data") as process:
        yield process


def _call(process: ServerProcess, method: str, request, metadata) -> grpc.StatusCode:
    with process.channel() as channel:
        call = channel.unary_unary(
            method_path(ADMIN_SERVICE, method),
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=lambda raw: raw,
        )
        try:
            call(request, timeout=10, metadata=metadata)
        except grpc.RpcError as err:
            return err.code()
    return grpc.StatusCode.OK


# the admin token -----------------------------------------------------------------------------------------------------


def _credentials(token: str) -> dict[str, tuple[tuple[str, str], ...] | None]:
    return {
        "none": None,
        "empty": (("authorization", ""),),
        "bearer-without-token": (("authorization", "Bearer "),),
        "basic-scheme": (("authorization", f"Basic {token}"),),
        "token-without-scheme": (("authorization", token),),
        "wrong-token": (("authorization", "Bearer " + "x" * len(token)),),
        "token-prefix": (("authorization", f"Bearer {token[:-1]}"),),
        "token-plus-one": (("authorization", f"Bearer {token}x"),),
        "other-header": (("x-authorization", f"Bearer {token}"),),
    }


REFUSAL = {
    "none": grpc.StatusCode.UNAUTHENTICATED,
    "empty": grpc.StatusCode.UNAUTHENTICATED,
    "bearer-without-token": grpc.StatusCode.UNAUTHENTICATED,
    "basic-scheme": grpc.StatusCode.UNAUTHENTICATED,
    "token-without-scheme": grpc.StatusCode.UNAUTHENTICATED,
    "wrong-token": grpc.StatusCode.PERMISSION_DENIED,
    "token-prefix": grpc.StatusCode.PERMISSION_DENIED,
    "token-plus-one": grpc.StatusCode.PERMISSION_DENIED,
    "other-header": grpc.StatusCode.UNAUTHENTICATED,
}
SECRET_DOCUMENT = "kind: RuleSet\nname: access.sneaky\ndefault: 1\nrules:\n  - id: r\n    then: 2\n"


def _request(method: str):
    """A request that would succeed (or fail for its content, never for access) with the right token."""
    requests = {
        "PutDocument": admin_pb2.PutDocumentRequest(content=SECRET_DOCUMENT),
        "GetDocument": admin_pb2.GetDocumentRequest(kind="RuleSet", name="pharmacist.otc_block"),
        "ListVersions": admin_pb2.ListVersionsRequest(kind="RuleSet", name="pharmacist.otc_block"),
        "DeleteDocument": admin_pb2.DeleteDocumentRequest(kind="RuleSet", name="gray.release"),
        "ValidateDocument": admin_pb2.ValidateDocumentRequest(content=SECRET_DOCUMENT),
        "ActivateVersion": admin_pb2.ActivateVersionRequest(kind="RuleSet", name="gray.release", version=1),
        "SetSelection": admin_pb2.SetSelectionRequest(table="order-events", system="crm", selected=True),
    }
    return requests.get(method) or request_class(ADMIN_SERVICE, method)()


@pytest.mark.parametrize("credentials", list(REFUSAL))
@pytest.mark.parametrize("method", ADMIN_METHODS)
def test_every_admin_rpc_refuses_a_missing_or_wrong_token(locked_server, method: str, credentials: str) -> None:
    metadata = _credentials(locked_server.token)[credentials]
    assert _call(locked_server, method, _request(method), metadata) == REFUSAL[credentials]


def test_refused_calls_changed_nothing(locked_server) -> None:
    """Runs after the refusals above (same module): the refused writes, deletes and rollbacks left no trace."""
    admin = Admin(locked_server)
    try:
        with pytest.raises(grpc.RpcError) as missing:
            admin.get("RuleSet", "access.sneaky")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert [doc.version for doc in admin.history("RuleSet", "gray.release")] == [1]
        assert [doc.version for doc in admin.history("RouteTable", "order-events")] == [1]
    finally:
        admin.close()
    # The same calls with the right token are let through (they fail, if at all, for their content).
    for method in ADMIN_METHODS:
        code = _call(locked_server, method, _request(method), locked_server.admin_metadata())
        assert code not in {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}, method


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """TokenCheck must decide through hmac.compare_digest (timing-safe), whatever the presented token."""
    from verdict_server.service import auth

    compared: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)

    class Context:
        def __init__(self, token: str) -> None:
            self.metadata = (("authorization", f"Bearer {token}"),)
            self.aborted: grpc.StatusCode | None = None

        def invocation_metadata(self):
            return self.metadata

        def set_trailing_metadata(self, metadata) -> None:
            self.trailer = metadata

        def abort(self, code, details):
            self.aborted = code
            raise grpc.RpcError(details)

    check = auth.TokenCheck("s3cret-token-0123456789")
    for presented in ("s3cret-token-0123456789", "s3cret-token-0123456780", "x"):
        context = Context(presented)
        with contextlib.suppress(grpc.RpcError):
            check.require(context)
        expected = None if presented == "s3cret-token-0123456789" else grpc.StatusCode.PERMISSION_DENIED
        assert context.aborted == expected
    assert [a for a, _ in compared] == [b"s3cret-token-0123456789", b"s3cret-token-0123456780", b"x"]


# ad-hoc expressions --------------------------------------------------------------------------------------------------


def _adhoc(process: ServerProcess, expression: str) -> grpc.StatusCode:
    with process.channel() as channel:
        try:
            decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
                decision_pb2.EvaluateRequest(expression=expression), timeout=10
            )
        except grpc.RpcError as err:
            return err.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("expression", ["1", "1 +", "while (true) {}", "x.y.z", "import os"])
def test_adhoc_expressions_are_refused_unless_enabled(locked_server, expression: str) -> None:
    assert _adhoc(locked_server, expression) == grpc.StatusCode.PERMISSION_DENIED


def test_adhoc_can_be_enabled_by_flag_or_environment_and_the_flag_wins(start_server) -> None:
    assert _adhoc(start_server(env={"VERDICT_ALLOW_ADHOC": "true"}), "1") == grpc.StatusCode.OK
    refused = start_server("--no-allow-adhoc", env={"VERDICT_ALLOW_ADHOC": "true"})
    assert _adhoc(refused, "1") == grpc.StatusCode.PERMISSION_DENIED


# TLS settings that cannot work --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pem_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("cryptography")
    from e2e.test_serving import _certificates

    directory = tmp_path_factory.mktemp("pem")
    files = _certificates(directory)
    (directory / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    (directory / "empty.pem").write_text("")
    files["garbage.pem"] = directory / "garbage.pem"
    files["empty.pem"] = directory / "empty.pem"
    return files


TLS_MISTAKES = {
    "cert-without-key": (["--tls-cert", "{server.pem}"], "--tls-key"),
    "key-without-cert": (["--tls-key", "{server.key}"], "--tls-cert"),
    "client-ca-without-cert": (["--tls-client-ca", "{ca.pem}"], "--tls-client-ca"),
    "missing-cert-file": (["--tls-cert", "{missing}", "--tls-key", "{server.key}"], "{missing}"),
    "missing-key-file": (["--tls-cert", "{server.pem}", "--tls-key", "{missing}"], "{missing}"),
    "missing-client-ca-file": (
        ["--tls-cert", "{server.pem}", "--tls-key", "{server.key}", "--tls-client-ca", "{missing}"],
        "{missing}",
    ),
    "key-is-a-directory": (["--tls-cert", "{server.pem}", "--tls-key", "{dir}"], "--tls-key"),
}
TLS_BAD_CONTENT = {
    "garbage-cert": (["--tls-cert", "{garbage.pem}", "--tls-key", "{server.key}"], "--tls-cert"),
    "empty-key": (["--tls-cert", "{server.pem}", "--tls-key", "{empty.pem}"], "--tls-key"),
    "key-of-another-cert": (["--tls-cert", "{server.pem}", "--tls-key", "{client.key}"], "--tls-key"),
}


def _fill(template: str, names: dict[str, str]) -> str:
    for name, value in names.items():
        template = template.replace("{" + name + "}", value)
    return template


def _serve_and_expect_exit(tmp_path: Path, pem_files: dict[str, Path], args: list[str]):
    names = {name: str(path) for name, path in pem_files.items()}
    names |= {"missing": str(tmp_path / "no-such.pem"), "dir": str(tmp_path)}
    filled = [_fill(arg, names) for arg in args]
    command = [sys.executable, "-m", "verdict_server", "serve", "--port", "0", "--data", str(tmp_path / "d"), *filled]
    try:
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60), names
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"the server started (or hung) with {filled}") from err


@pytest.mark.parametrize("case", list(TLS_MISTAKES))
def test_tls_mistakes_stop_the_start_with_a_clear_message(tmp_path: Path, pem_files, case: str) -> None:
    args, must_mention = TLS_MISTAKES[case]
    finished, names = _serve_and_expect_exit(tmp_path, pem_files, args)
    assert finished.returncode != 0
    assert "serving on" not in finished.stdout
    assert "Traceback" not in finished.stderr, finished.stderr
    assert _fill(must_mention, names) in finished.stderr, finished.stderr


@pytest.mark.parametrize("case", list(TLS_BAD_CONTENT))
def test_unusable_tls_files_stop_the_start(tmp_path: Path, pem_files, case: str) -> None:
    args, _ = TLS_BAD_CONTENT[case]
    finished, _ = _serve_and_expect_exit(tmp_path, pem_files, args)
    assert finished.returncode != 0
    assert "serving on" not in finished.stdout
    assert "Traceback" not in finished.stderr, finished.stderr


@pytest.mark.parametrize("case", list(TLS_BAD_CONTENT))
def test_unusable_tls_files_are_named_in_the_message(tmp_path: Path, pem_files, case: str) -> None:
    args, must_mention = TLS_BAD_CONTENT[case]
    finished, _ = _serve_and_expect_exit(tmp_path, pem_files, args)
    own_lines = [line for line in finished.stderr.splitlines() if line.startswith("verdict")]
    assert any(must_mention in line for line in own_lines), own_lines
    assert not any("bind" in line for line in own_lines), own_lines


# secrets in logs -----------------------------------------------------------------------------------------------------

MASKED = {"pin": "pin-SECRET-4711", "phone": "13999990000", "idCard": "110101199003070000"}


def test_no_token_and_no_masked_value_reaches_a_log(start_server, tmp_path: Path) -> None:
    log_path = tmp_path / "decisions.jsonl"
    token_file = tmp_path / "token"
    token_file.write_text("tok-" + "Z9" * 20 + "\n")
    process = start_server(
        "--admin-token-file",
        str(token_file),
        "--decision-log",
        str(log_path),
        "--decision-log-mask",
        "pin,phone,patient.idCard",
        "--allow-adhoc",
        env={"VERDICT_LOG_LEVEL": "debug"},
    )
    guessed = "guess-" + "Q7" * 20
    facts = {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1002, "pin": MASKED["pin"]}
    facts["patient"] = {"phone": MASKED["phone"], "idCard": MASKED["idCard"], "age": 30}
    struct = Struct()
    struct.update(facts)
    admin = Admin(process)
    with process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        stub.Evaluate(decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=struct), timeout=10)
        stub.Evaluate(decision_pb2.EvaluateRequest(rule_set="doctor.app_version_gate", facts=struct), timeout=10)
        stub.EvaluateBatch(decision_pb2.EvaluateBatchRequest(rule_set="gray.release", facts=[struct]), timeout=10)
        stub.Route(
            decision_pb2.RouteRequest(
                topic="order.status.paid", tags=["PAID"], key="k", properties={"pin": MASKED["pin"]}
            ),
            timeout=10,
        )
        for expression in ("pin + 1", "patient.phone * 2"):  # failures whose messages might quote the values
            with contextlib.suppress(grpc.RpcError):
                stub.Evaluate(decision_pb2.EvaluateRequest(expression=expression, facts=struct), timeout=10)
        admin.put(SECRET_DOCUMENT)
        for metadata in ((("authorization", f"Bearer {guessed}"),), (("authorization", guessed),)):
            with pytest.raises(grpc.RpcError):
                admin.stub.ListDocuments(admin_pb2.ListDocumentsRequest(), timeout=10, metadata=metadata)
    admin.close()
    assert process.stop() == 0

    token = token_file.read_text().strip()
    logs = {"stderr": process.stderr(), "stdout": "".join(process.output), "decision log": log_path.read_text()}
    entries = [json.loads(line) for line in logs["decision log"].splitlines()]
    assert len(entries) >= 4, "the decision log should hold the evaluations and the route"
    for where, text in logs.items():
        assert token not in text, f"the admin token appears in the {where}"
        assert guessed not in text, f"a presented (wrong) token appears in the {where}"
        for name, value in MASKED.items():
            assert value not in text, f"masked fact {name} appears in the {where}"


def test_a_masked_fact_copied_into_a_result_is_not_logged(start_server, tmp_path: Path) -> None:
    """The example's `audit` rule answers `'pharmacist ' + pin`: with `pin` masked, the logged result must not show it."""
    log_path = tmp_path / "decisions.jsonl"
    process = start_server("--decision-log", str(log_path), "--decision-log-mask", "pin")
    facts = Struct()
    facts.update({"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 2001, "pin": MASKED["pin"]})
    with process.channel() as channel:
        answer = decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
            decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=facts), timeout=10
        )
    assert list(answer.matched_rules) == ["audit"] and MASKED["pin"] in str(answer.result)  # the caller gets it
    assert process.stop() == 0
    entry = json.loads(log_path.read_text().splitlines()[0])
    assert entry["facts"]["pin"] == "***"
    assert MASKED["pin"] not in log_path.read_text()


LONG_NOTE = "NOTE-SECRET-" + "".join(chr(ord("a") + (index * 7) % 26) for index in range(150)) + "-END-OF-NOTE"


def test_masking_covers_error_messages_and_maps_inside_lists(start_server, tmp_path: Path) -> None:
    """Issue 19 row 9: an error message that quotes a masked value cut short (its first or last characters) and a
    masked key inside a list of maps must not reach the decision log."""
    log_path = tmp_path / "decisions.jsonl"
    process = start_server("--decision-log", str(log_path), "--decision-log-mask", "pin,note")
    admin = Admin(process)
    admin.put(
        "kind: RuleSet\nname: mask.leaky\non_error: default\ndefault: {ok: false}\n"
        "rules:\n  - id: quotes-the-note\n    when: note\n    then: {ok: true}\n"
    )
    admin.close()
    facts = Struct()
    facts.update({"note": LONG_NOTE, "patients": [{"pin": "LIST-PIN-SECRET-0815", "age": 7}]})
    with process.channel() as channel:
        answer = decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
            decision_pb2.EvaluateRequest(rule_set="mask.leaky", facts=facts), timeout=10
        )
    assert answer.degraded and LONG_NOTE[:20] in answer.error.message  # the caller sees its own value, cut short
    assert process.stop() == 0
    text = log_path.read_text()
    entry = json.loads(text.splitlines()[0])
    assert entry["facts"]["note"] == "***"
    assert entry["facts"]["patients"] == [{"pin": "***", "age": 7}]
    assert "CONDITION_BOOL_REQUIRED" in text
    for piece in (LONG_NOTE[:12], LONG_NOTE[-12:], "LIST-PIN-SECRET"):
        assert piece not in text, f"{piece!r} of a masked value appears in the decision log"
