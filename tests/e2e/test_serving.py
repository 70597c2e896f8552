"""Production serving through real processes: limits, shutdown, pre-forked workers, TLS, metrics, decision log."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from google.rpc import error_details_pb2, status_pb2
from harness import ServerProcess
from prometheus_client.parser import text_string_to_metric_families

from verdict.v1 import decision_pb2, decision_pb2_grpc

BUSY_EXPRESSION = "while (true) { }"  # runs until the ad-hoc budget (50 ms) ends it: FAILED_PRECONDITION
WORK_EXPRESSION = "sum = 0; for (i = 0; i < 300; i++) { sum = sum + i; } return sum + n;"


def _evaluate(channel: grpc.Channel, expression: str, timeout: float = 10, **facts: object):
    struct = Struct()
    struct.update(facts)
    stub = decision_pb2_grpc.DecisionServiceStub(channel)
    return stub.Evaluate.with_call(decision_pb2.EvaluateRequest(expression=expression, facts=struct), timeout=timeout)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker_of(call: grpc.Call) -> str:
    return dict(call.trailing_metadata())["verdict-worker"]


# limits ------------------------------------------------------------------------------------------------------------


def test_calls_beyond_the_concurrency_limit_get_resource_exhausted(start_server) -> None:
    process = start_server("--allow-adhoc", "--workers", "2", "--max-concurrent-rpcs", "1")
    codes: list[grpc.StatusCode] = []
    with process.channel() as channel, ThreadPoolExecutor(max_workers=16) as pool:

        def call(_: int) -> grpc.StatusCode:
            try:
                _evaluate(channel, BUSY_EXPRESSION)
                return grpc.StatusCode.OK
            except grpc.RpcError as err:
                return err.code()

        codes = list(pool.map(call, range(32)))
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert grpc.StatusCode.FAILED_PRECONDITION in codes  # the calls that got in ran to their budget
    assert set(codes) <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION}


def test_default_settings_queue_512_calls_in_flight_instead_of_refusing(server) -> None:
    """The old default (4 x 16 threads = 64) refused the 65th caller at once; now calls wait for a thread."""
    request = decision_pb2.EvaluateRequest(
        rule_set="pharmacist.otc_block", facts_json='{"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001}'
    )
    with server.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        calls = [stub.Evaluate.future(request, timeout=60) for _ in range(512)]
        codes = [call.code() for call in calls]
    assert codes == [grpc.StatusCode.OK] * 512


def test_calls_that_wait_too_long_for_a_worker_are_shed_with_retry_advice(start_server) -> None:
    process = start_server("--allow-adhoc", "--workers", "1", "--max-queue-ms", "20")
    with process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        busy = decision_pb2.EvaluateRequest(expression=BUSY_EXPRESSION)  # 50 ms each on the only worker
        calls = [stub.Evaluate.future(busy, timeout=60) for _ in range(8)]
        shed = [call for call in calls if call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED]
        ran = [call for call in calls if call.code() == grpc.StatusCode.FAILED_PRECONDITION]
    assert shed and ran and len(shed) + len(ran) == len(calls)
    details = status_pb2.Status.FromString(dict(shed[0].trailing_metadata())["grpc-status-details-bin"])
    kinds = {detail.TypeName(): detail for detail in details.details}
    info = error_details_pb2.ErrorInfo()
    kinds["google.rpc.ErrorInfo"].Unpack(info)
    assert info.reason == "OVERLOADED" and int(info.metadata["queued_ms"]) > 20
    assert "google.rpc.RetryInfo" in kinds
    assert "--max-queue-ms 20" in shed[0].details()


def test_an_oversized_request_is_refused_with_resource_exhausted(start_server) -> None:
    process = start_server("--allow-adhoc", "--max-message-bytes", "65536")
    with process.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        _evaluate(channel, "n", n="x" * 100_000)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# graceful shutdown -------------------------------------------------------------------------------------------------


SLOW_RULES = """\
kind: RuleSet
name: tests.slow
timeout_ms: 1000
default: done
rules:
  - id: spin
    when: 'i = 0; while (i < n) { i = i + 1 }; false'
    then: never
"""


def test_sigterm_during_a_burst_finishes_accepted_calls_and_exits_zero(start_server) -> None:
    from verdict.v1 import admin_pb2, admin_pb2_grpc

    process = start_server("--allow-adhoc", "--grace-s", "10", "--workers", "16")
    with process.channel() as channel:
        admin_pb2_grpc.AdminServiceStub(channel).PutDocument(
            admin_pb2.PutDocumentRequest(content=SLOW_RULES), timeout=10, metadata=process.admin_metadata()
        )
    slow_results: list[str] = []
    burst: list[str] = []
    lock = threading.Lock()
    stop_sending = threading.Event()

    slow_channels = [process.channel() for _ in range(4)]
    for channel in slow_channels:  # connected before the signal, so the slow calls reach the server at once
        _evaluate(channel, "1")

    def slow_call(channel: grpc.Channel) -> None:  # in flight when SIGTERM arrives: must complete normally
        struct = Struct()
        struct.update({"n": 150_000})
        try:
            answer = decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
                decision_pb2.EvaluateRequest(rule_set="tests.slow", facts=struct), timeout=20
            )
            result = "ok" if answer.result.string_value == "done" else f"wrong {answer.result}"
        except grpc.RpcError as err:
            result = err.code().name
        with lock:
            slow_results.append(result)

    def fast_caller() -> None:  # a steady burst across the shutdown
        with process.channel() as channel:
            while not stop_sending.is_set():
                try:
                    response, _ = _evaluate(channel, WORK_EXPRESSION, n=1)
                    result = "ok" if response.result.number_value == sum(range(300)) + 1 else "wrong"
                except grpc.RpcError as err:
                    result = err.code().name
                with lock:
                    burst.append(result)

    fast = [threading.Thread(target=fast_caller) for _ in range(4)]
    for thread in fast:
        thread.start()
    time.sleep(0.5)
    slow = [threading.Thread(target=slow_call, args=(channel,)) for channel in slow_channels]
    for thread in slow:
        thread.start()
    time.sleep(0.15)
    try:
        process.proc.send_signal(signal.SIGTERM)
        exit_code = process.proc.wait(timeout=30)
    finally:
        stop_sending.set()
        for thread in fast + slow:
            thread.join(timeout=30)
        for channel in slow_channels:
            channel.close()
    assert exit_code == 0
    assert slow_results == ["ok"] * 4, slow_results
    assert burst.count("ok") > 0
    # Burst calls either completed correctly or were refused: UNAVAILABLE once the listener closed, CANCELLED when
    # they reached the server after shutdown began but before a worker picked them up. None failed half-way.
    assert set(burst) <= {"ok", "UNAVAILABLE", "CANCELLED"}, sorted(set(burst))
    with process.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        _evaluate(channel, "1", timeout=2)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


# pre-forked workers ------------------------------------------------------------------------------------------------


def _workers_seen(target: str, attempts: int) -> set[str]:
    seen = set()
    for _ in range(attempts):
        with grpc.insecure_channel(target) as channel:  # a new connection each time: SO_REUSEPORT spreads connections
            try:
                _, call = _evaluate(channel, "1 + n", n=1)
                seen.add(_worker_of(call))
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.UNAVAILABLE, err
    return seen


def test_two_processes_share_the_port_and_a_killed_worker_is_replaced(start_server) -> None:
    process = start_server("--allow-adhoc", "--processes", "2", port=_free_port())
    announced = set(re.search(r"pids ([\d ]+);", "".join(process.output)).group(1).split())
    assert len(announced) == 2
    seen = _workers_seen(process.target, 60)
    assert seen == announced, f"answers came from {seen}, workers are {announced}"

    victim = sorted(seen)[0]
    os.kill(int(victim), signal.SIGKILL)
    deadline = time.monotonic() + 30
    replacement: set[str] = set()
    while time.monotonic() < deadline and not replacement:
        replacement = _workers_seen(process.target, 10) - announced
    assert replacement, "the killed worker was not replaced"
    assert victim not in _workers_seen(process.target, 20)
    assert process.stop() == 0


# TLS -----------------------------------------------------------------------------------------------------------------


def _certificates(directory: Path) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def build(subject: str, public_key, issuer: x509.Name, signer, *, ca: bool, san: list | None = None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    import ipaddress

    ca_key = key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "verdict test CA")])
    ca_cert = build("verdict test CA", ca_key.public_key(), ca_name, ca_key, ca=True)
    server_key, client_key = key(), key()
    server_cert = build(
        "localhost",
        server_key.public_key(),
        ca_name,
        ca_key,
        ca=False,
        san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_cert = build("a caller", client_key.public_key(), ca_name, ca_key, ca=False)
    files = {}
    for name, value in {
        "ca.pem": ca_cert.public_bytes(serialization.Encoding.PEM),
        "server.pem": server_cert.public_bytes(serialization.Encoding.PEM),
        "client.pem": client_cert.public_bytes(serialization.Encoding.PEM),
        "server.key": server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "client.key": client_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }.items():
        path = directory / name
        path.write_bytes(value)
        files[name] = path
    return files


def _tls_channel(target: str, certs: dict[str, Path], *, with_client_cert: bool) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certs["ca.pem"].read_bytes(),
        private_key=certs["client.key"].read_bytes() if with_client_cert else None,
        certificate_chain=certs["client.pem"].read_bytes() if with_client_cert else None,
    )
    return grpc.secure_channel(target, credentials, options=(("grpc.ssl_target_name_override", "localhost"),))


def test_tls_serves_encrypted_calls_only(start_server, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    certs = _certificates(tmp_path)
    process = start_server(
        "--allow-adhoc",
        "--tls-cert",
        str(certs["server.pem"]),
        "--tls-key",
        str(certs["server.key"]),
        wait_healthy=False,
    )
    with _tls_channel(process.target, certs, with_client_cert=False) as channel:
        response, _ = _evaluate(channel, "n * 2", n=21)
    assert response.result.number_value == 42
    with process.channel() as plain, pytest.raises(grpc.RpcError) as raised:
        _evaluate(plain, "1", timeout=3)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_requires_a_client_certificate(start_server, tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    certs = _certificates(tmp_path)
    process = start_server(
        "--allow-adhoc",
        "--tls-cert",
        str(certs["server.pem"]),
        "--tls-key",
        str(certs["server.key"]),
        "--tls-client-ca",
        str(certs["ca.pem"]),
        wait_healthy=False,
    )
    with _tls_channel(process.target, certs, with_client_cert=True) as channel:
        response, _ = _evaluate(channel, "n + 1", n=1)
    assert response.result.number_value == 2
    with _tls_channel(process.target, certs, with_client_cert=False) as channel, pytest.raises(grpc.RpcError) as raised:
        _evaluate(channel, "1", timeout=3)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


# observability -----------------------------------------------------------------------------------------------------


def _metrics(process: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    port = int(re.search(r"metrics on port (\d+)", "".join(process.output)).group(1))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_the_calls_made(start_server) -> None:
    process = start_server("--metrics-port", "0")
    facts = Struct()
    facts.update({"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001})
    with process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        for _ in range(5):
            stub.Evaluate(decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=facts), timeout=10)
        with pytest.raises(grpc.RpcError):
            stub.Evaluate(decision_pb2.EvaluateRequest(rule_set="missing"), timeout=10)
        unmatched = Struct()
        unmatched.update({"scene": "MEDICAL", "role": "DOCTOR"})
        batch = decision_pb2.EvaluateBatchRequest(rule_set="pharmacist.otc_block", facts=[facts, unmatched, facts])
        stub.EvaluateBatch(batch, timeout=10)
    samples = _metrics(process)
    assert samples[("verdict_rpc_requests_total", (("code", "OK"), ("method", "Evaluate")))] == 5
    assert samples[("verdict_rpc_requests_total", (("code", "NOT_FOUND"), ("method", "Evaluate")))] == 1
    assert samples[("verdict_rpc_latency_seconds_count", (("code", "OK"), ("method", "Evaluate")))] == 5
    decided = [
        value
        for (name, labels), value in samples.items()
        if name == "verdict_decisions_total"
        and ("rule", "block-otc") in labels
        and ("rule_set", "pharmacist.otc_block") in labels
    ]
    assert decided == [5 + 2]  # a batch counts each of its decisions
    defaulted = [
        value
        for (name, labels), value in samples.items()
        if name == "verdict_decisions_total" and ("rule", "(default)") in labels
    ]
    assert defaulted == [1]
    assert samples[("verdict_documents_loaded", (("kind", "RuleSet"),))] >= 1


def test_the_decision_log_masks_fields_and_carries_decision_ids(start_server, tmp_path: Path) -> None:
    log_path = tmp_path / "decisions.jsonl"
    process = start_server("--decision-log", str(log_path), "--decision-log-mask", "pin,patient.phone")
    ids = []
    with process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        for pin in ("pin-1", "pin-2", "pin-3"):
            facts = Struct()
            facts.update(
                {
                    "scene": "NON_MEDICAL",
                    "role": "PHARMACIST",
                    "categoryId": 1002,
                    "pin": pin,
                    "patient": {"phone": "13800000000", "age": 30},
                }
            )
            ids.append(
                stub.Evaluate(
                    decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=facts), timeout=10
                ).decision_id
            )
        batch = decision_pb2.EvaluateBatchRequest(rule_set="pharmacist.otc_block", facts=[facts, facts])
        ids.extend(result.decision_id for result in stub.EvaluateBatch(batch, timeout=10).results)
    process.stop()
    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert len(set(ids)) == 5
    assert [entry["decision_id"] for entry in entries] == ids
    text = log_path.read_text()
    assert "pin-1" not in text and "13800000000" not in text
    for entry in entries:
        assert entry["facts"]["pin"] == "***"
        assert entry["facts"]["patient"] == {"phone": "***", "age": 30}
        assert entry["rule_set"] == "pharmacist.otc_block"
        assert entry["matched_rules"] == ["block-otc"]
