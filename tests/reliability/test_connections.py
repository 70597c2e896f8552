"""Issue 19 row 11: 1,100 connections that send 16 bytes of the HTTP/2 preface and stop must not keep other clients
out. The server starts under a soft NOFILE limit of 1,024 (a common default) and raises it to the hard limit; it
accepts at most --max-connections, closes connections that do not finish their handshake within
--handshake-timeout-s, logs that the limit was reached, and a client connected before keeps its answers coming."""

from __future__ import annotations

import resource
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from reliability.reliability_support import crash_lines, is_serving

from verdict.v1 import decision_pb2, decision_pb2_grpc

HALF_OPEN = 1_100
MAX_CONNECTIONS = 300
HANDSHAKE_TIMEOUT_S = 8  # long enough for the 5 s connection watch to see the flood
PREFACE_START = b"PRI * HTTP/2.0\r\n"  # 16 of the preface's 24 bytes
BYSTANDER_WORST_S = 2.0
SHED_WITHIN_S = HANDSHAKE_TIMEOUT_S + 10


def _limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-files line")


def _evaluate(stub) -> bool:
    facts = Struct()
    facts.update({"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001})
    answer = stub.Evaluate(decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=facts), timeout=10)
    return answer.result.struct_value.fields["action"].string_value == "HIDE"


def _half_open(port: int) -> list[socket.socket]:
    sockets = []
    for _ in range(HALF_OPEN):
        sock = socket.socket()
        sock.settimeout(2)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(PREFACE_START)
        except OSError:
            sock.close()
            continue
        sockets.append(sock)
    return sockets


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(4096) == b"" or _closed_by_server(sock)  # drain a GOAWAY, then EOF
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def test_half_open_connections_do_not_keep_other_clients_out(start_server) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        pytest.skip(f"the hard NOFILE limit {hard} is too low to show the soft limit being raised")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # inherited by the server only; restored at once
    try:
        process = start_server(
            "--max-connections",
            str(MAX_CONNECTIONS),
            "--handshake-timeout-s",
            str(HANDSHAKE_TIMEOUT_S),
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert _limits(process.proc.pid) == (hard, hard)

    latencies: list[float] = []
    failures: list[str] = []
    stop = threading.Event()

    def bystander(channel: grpc.Channel) -> None:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        while not stop.is_set():
            started = time.monotonic()
            try:
                if not _evaluate(stub):
                    failures.append("wrong answer")
            except grpc.RpcError as err:
                failures.append(err.code().name)
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)

    with process.channel() as channel:
        assert _evaluate(decision_pb2_grpc.DecisionServiceStub(channel))  # connected before the flood
        watcher = threading.Thread(target=bystander, args=(channel,))
        watcher.start()
        attack = _half_open(process.port)
        try:
            deadline = time.monotonic() + SHED_WITHIN_S
            while time.monotonic() < deadline and not all(_closed_by_server(sock) for sock in attack):
                time.sleep(0.5)
            shed = sum(_closed_by_server(sock) for sock in attack)
        finally:
            for sock in attack:
                sock.close()
            stop.set()
            watcher.join(timeout=30)
        with process.channel() as fresh:  # a new client gets in once the half-open connections are gone
            assert _evaluate(decision_pb2_grpc.DecisionServiceStub(fresh))

    assert attack, "no connection of the flood got through connect()"
    assert shed == len(attack), f"{len(attack) - shed} half-open connections were still open after {SHED_WITHIN_S} s"
    assert failures == [] and latencies, failures
    assert max(latencies) < BYSTANDER_WORST_S, f"a bystander call took {max(latencies):.2f} s during the flood"
    assert is_serving(process)
    log = process.stderr()
    assert "connection limit reached" in log
    assert crash_lines(log) == []
