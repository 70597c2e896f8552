"""Servers under test, each a separate process: the echo floor and `verdict serve`, plus what we read from them.

    with start_echo() as echo: ...                   # echo.target
    with start_verdict(data_dir) as server: ...      # server.target, server.token, server.pids()

Both print one `...: serving on HOST:PORT ...` line on stdout once they accept calls (a pre-forking supervisor prints
it right after forking, so readiness is also checked with a call: a Health check for Verdict, an echo for the floor).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from progress import ticking

BENCH_DIR = Path(__file__).resolve().parent
SERVING_LINE = re.compile(r"^(?:verdict|echo): serving on (\S+?):(\d+)")  # the announcement, not a log line
TOKEN_IN_LINE = re.compile(r"admin token: ([^;,)\s]+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen
    target: str = ""
    token: str = ""
    started_at: float = 0.0  # time.perf_counter() just before the process was started
    serving_after_s: float = 0.0  # from start to the first successful readiness check
    serving_cpu_s: float = 0.0  # CPU time the server had used by then (steadier than wall time when shared)
    output: list[str] = field(default_factory=list)

    def pids(self) -> list[int]:
        """The serving processes: the pre-forked workers if there are any, else the process itself."""
        children = _children(self.process.pid)
        return children or [self.process.pid]

    def rss_kib(self) -> int:
        """Resident memory of the serving processes (VmRSS of each, summed)."""
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids())

    def cpu_s(self) -> float:
        """CPU time (user + system) used so far by the serving processes."""
        return sum(_cpu_s(pid) for pid in self.pids())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def start_echo(processes: int = 1) -> Iterator[ServerProcess]:
    port = free_port() if processes > 1 else 0
    command = [sys.executable, str(BENCH_DIR / "echo_server.py"), "--port", str(port), "--processes", str(processes)]
    with _running("echo", command, ready=_echo_ready) as server:
        yield server


@contextlib.contextmanager
def start_verdict(
    data_dir: Path, processes: int = 1, extra: tuple[str, ...] = (), progress: str = ""
) -> Iterator[ServerProcess]:
    """`verdict serve` on a free port with its store in data_dir (seeded from examples/ when new).

    progress: a label for a progress line while the server starts (for stores that take long to load).
    """
    port = free_port() if processes > 1 else 0
    command = [
        sys.executable,
        "-m",
        "verdict_server",
        "serve",
        "--port",
        str(port),
        "--data",
        str(data_dir),
        "--processes",
        str(processes),
        *extra,
    ]
    with _running("verdict", command, ready=_health_serving, progress=progress) as server:
        yield server


@contextlib.contextmanager
def _running(
    name: str, command: list[str], ready, timeout_s: float = 180.0, progress: str = ""
) -> Iterator[ServerProcess]:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = ServerProcess(name, process, started_at=started)
    try:
        with ticking(progress, timeout_s) if progress else contextlib.nullcontext():
            line = _serving_line(server, timeout_s)
            match = SERVING_LINE.search(line)
            server.target = f"{match.group(1)}:{match.group(2)}"
            token = TOKEN_IN_LINE.search(line)
            if token:
                server.token = Path(token.group(1)).read_text().strip()
            _wait_until(ready, started + timeout_s, server)
            server.serving_after_s = time.perf_counter() - started
            server.serving_cpu_s = server.cpu_s()
        threading.Thread(target=_drain, args=(server,), daemon=True).start()
        yield server
    finally:
        server.stop()


def _serving_line(server: ServerProcess, timeout_s: float) -> str:
    # readline() blocks; a timer kills a server that never announces itself, so the suite cannot hang here.
    timer = threading.Timer(timeout_s, server.process.kill)
    timer.start()
    try:
        for line in server.process.stdout:
            server.output.append(line)
            if SERVING_LINE.search(line):
                return line
    finally:
        timer.cancel()
    tail = "".join(server.output[-30:])
    raise RuntimeError(f"{server.name} exited before serving (exit {server.process.wait()}):\n{tail}")


def _drain(server: ServerProcess) -> None:
    """Keeps reading the server's output so a full pipe never blocks it; the tail is kept for error reports."""
    for line in server.process.stdout:
        server.output.append(line)
        del server.output[:-200]


def _wait_until(check, deadline: float, server: ServerProcess) -> None:
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited (code {server.process.returncode}) before it was ready")
        if check(server.target):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{server.name} was not ready in time")


def _health_serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


def _echo_ready(target: str) -> bool:
    from echo_server import METHOD

    with grpc.insecure_channel(target) as channel:
        try:
            channel.unary_unary(METHOD)(b"", timeout=1)
        except grpc.RpcError:
            return False
    return True


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
