"""The Java example client (examples/clients/java/) built with Debian's toolchain and run against a real server, as a
Java team following docs/clients.md would: generated stubs, facts_json, a bearer token, error details.

Java is an optional toolchain, not a service: without it the test skips and says what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from harness import ROOT, ServerProcess

import verdict
from verdict.v1 import decision_pb2, decision_pb2_grpc

CLIENT = ROOT / "examples" / "clients" / "java"
JARS = Path(os.environ.get("JARS", "/usr/share/java"))
DEBIAN_PACKAGES = (
    "default-jdk-headless protobuf-compiler libprotobuf-dev protobuf-compiler-grpc-java-plugin libgrpc-java "
    "libnetty-java libperfmark-java libgoogle-gson-java libanimal-sniffer-java libgeronimo-annotation-1.3-spec-java"
)
BUILD_TIMEOUT_S = 600  # javac of the generated stubs takes ~25 s on an idle 2-core machine; it is shared
RUN_TIMEOUT_S = 120


def _missing_toolchain() -> list[str]:
    missing = [tool for tool in ("java", "javac", "protoc") if shutil.which(tool) is None]
    if not (shutil.which("grpc_java_plugin") or shutil.which("protoc-gen-grpc-java")):
        missing.append("the grpc-java protoc plugin")
    if not Path("/usr/include/google/protobuf/struct.proto").exists() and shutil.which("protoc"):
        missing.append("google/protobuf/*.proto (libprotobuf-dev)")
    jars = (JARS / f"{name}.jar" for name in ("grpc-netty", "grpc-protobuf", "netty-codec-http2", "perfmark-api"))
    return missing + [str(jar) for jar in jars if not jar.exists()]


@pytest.fixture(scope="module")
def java_client(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Builds the client once with its own build.sh; the classpath to run it with."""
    missing = _missing_toolchain()
    if missing:
        pytest.skip(f"the Java toolchain is not installed ({', '.join(missing)}): apt-get install {DEBIAN_PACKAGES}")
    out = tmp_path_factory.mktemp("java-client")
    built = subprocess.run(
        ["sh", str(CLIENT / "build.sh"), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=BUILD_TIMEOUT_S,
    )
    assert built.returncode == 0, f"build.sh failed:\n{built.stdout}\n{built.stderr}"
    return (out / "classpath").read_text().strip()


def _run(classpath: str, *args: str) -> list[str]:
    ran = subprocess.run(
        ["java", "-cp", classpath, "VerdictExample", *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert ran.returncode == 0, f"the Java client failed:\n{ran.stdout}\n{ran.stderr}"
    return ran.stdout.splitlines()


def test_the_java_client_decides_routes_administers_and_reads_error_details(
    java_client: str, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server()
    lines = _run(java_client, f"dns:///{server.target}", str(server.token_path))

    assert (
        "evaluate: rule_set=pharmacist.otc_block version=1 matched=[block-otc] "
        'result_json={"action":"HIDE","reason":"otc"}'
    ) in lines
    # 2^53 + 1 went in as facts_json and came back in result_json unchanged: a Struct would have made it ...992.
    assert 'evaluate exact: matched=[audit] result_json={"action":"SHOW","note":"pharmacist 9007199254740993"}' in lines
    assert 'evaluate struct: action=HIDE result={"action": "HIDE", "reason": "otc"}' in lines

    assert "route destination: settlement -> settlement.order.status (priority 100)" in lines
    skipped = {line.split()[2]: line.split()[3] for line in lines if line.startswith("route skipped:")}
    assert skipped == {
        "doctor-app": "SKIP_REASON_CONDITION_FALSE",
        "pharmacy": "SKIP_REASON_GRAY_EXCLUDED",
        "crm": "SKIP_REASON_NOT_SELECTED",
    }

    # Four seeded documents read two a page: the client followed next_page_token with its bearer token.
    assert [line for line in lines if line.startswith("admin document:")] == [
        "admin document: RouteTable order-events v1",
        "admin document: RuleSet doctor.app_version_gate v1",
        "admin document: RuleSet gray.release v1",
        "admin document: RuleSet pharmacist.otc_block v1",
    ]

    errors = [line for line in lines if line.startswith("error")]
    assert errors[:5] == [
        "error evaluate unknown rule set: code=NOT_FOUND",
        "error evaluate unknown rule set: reason=RULE_SET_NOT_FOUND domain=verdict metadata={rule_set=no.such.rules}",
        "error get unknown document: code=NOT_FOUND",
        "error get unknown document: reason=DOCUMENT_NOT_FOUND domain=verdict "
        "metadata={kind=RuleSet, name=no.such.rules}",
        "error put broken document: code=INVALID_ARGUMENT",
    ]
    assert "error put broken document: reason=DOCUMENT_INVALID domain=verdict metadata={problems=1}" in errors
    violations = [line for line in errors if line.startswith("error put broken document: field ")]
    assert len(violations) == 1 and violations[0].startswith(
        "error put broken document: field rules[0].when: line 6, column 15"
    ), violations
    assert errors[-2:] == [
        "error admin without token: code=UNAUTHENTICATED",
        "error admin without token: reason=TOKEN_MISSING domain=verdict metadata={}",
    ]


def test_a_rule_sets_own_time_budget_reaches_java_as_failed_precondition_script_timeout(
    java_client: str, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server()
    with verdict.Client(server.target, token=server.token) as client:
        client.put_document(
            "kind: RuleSet\nname: java.spins\non_error: fail\ntimeout_ms: 20\ndefault: 0\n"
            "rules:\n  - id: spin\n    when: 'while (true) { x = 1 }; true'\n    then: 1\n"
        )
    lines = _run(java_client, "evaluate", f"dns:///{server.target}", "java.spins", "{}")
    assert lines[0] == "error evaluate: code=FAILED_PRECONDITION"
    assert lines[1].startswith("error evaluate: reason=SCRIPT_TIMEOUT domain=verdict metadata={"), lines
    assert "ql_code=SCRIPT_TIME_OUT" in lines[1] and "rule_id=spin" in lines[1] and "rule_set=java.spins" in lines[1]


class _Flaky(decision_pb2_grpc.DecisionServiceServicer):
    """A stand-in DecisionService that counts attempts: the Java channel's retry policy is what is under test."""

    def __init__(self, failures: int, code: grpc.StatusCode) -> None:
        self.attempts, self._failures, self._code = 0, failures, code

    def Evaluate(self, request, context):
        self.attempts += 1
        if self.attempts <= self._failures:
            context.abort(self._code, f"attempt {self.attempts} fails")
        return decision_pb2.EvaluateResponse(rule_set=request.rule_set, version=self.attempts, result_json="true")


@pytest.mark.parametrize(
    ("code", "attempts", "first_line"),
    [
        (grpc.StatusCode.UNAVAILABLE, 3, "evaluate: version=3 result_json=true"),
        (grpc.StatusCode.FAILED_PRECONDITION, 1, "error evaluate: code=FAILED_PRECONDITION"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 1, "error evaluate: code=DEADLINE_EXCEEDED"),
    ],
)
def test_the_java_retry_policy_resends_unavailable_only(
    java_client: str, code: grpc.StatusCode, attempts: int, first_line: str
) -> None:
    flaky = _Flaky(failures=2, code=code)
    stand_in = grpc.server(ThreadPoolExecutor(max_workers=2))
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(flaky, stand_in)
    port = stand_in.add_insecure_port("127.0.0.1:0")
    stand_in.start()
    try:
        lines = _run(java_client, "evaluate", f"dns:///127.0.0.1:{port}", "any.rules", "{}")
    finally:
        stand_in.stop(grace=None)
    assert lines[0] == first_line, lines
    assert flaky.attempts == attempts
