"""Starts real `verdict serve` processes on free loopback ports for the end-to-end tests.

A test talks to the server like a user does: over gRPC through the generated stubs, the SDK, grpcurl-style
reflection, or the `verdict` command line. Nothing here reaches into the server's memory.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 60.0
_ANNOUNCE = re.compile(r"verdict: serving on (?P<host>[^:\s]+):(?P<port>\d+).*?admin token: (?P<token>[^,)\s]+)")


class ServerProcess:
    """One `verdict serve` subprocess. stdout lines are collected (the decision log may go there)."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None, port: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.args = ["--port", str(port), "--data", str(self.data_dir), "--poll-interval-s", "0.1", *args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.stdout_lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.token_path: Path | None = None
        self.stderr_path = self.data_dir.parent / f"{self.data_dir.name}.stderr.log"

    # lifecycle ---------------------------------------------------------------------------------------------------

    def start(self, wait_healthy: bool = True) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stderr = self.stderr_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "verdict_server", "serve", *self.args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=self.env,
            cwd=ROOT,
        )
        stderr.close()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        announce = self._wait_for_line(_ANNOUNCE, STARTUP_TIMEOUT_S)
        self.port = int(announce["port"])
        self.token_path = Path(announce["token"])
        if wait_healthy:
            self.wait_for_health()
        return self

    def _pump_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.stdout_lines.put(line)

    def _wait_for_line(self, pattern: re.Pattern[str], timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.stdout_lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.stderr()}") from None
                continue
            match = pattern.search(line)
            if match:
                return match
        self.kill()
        raise RuntimeError(f"server did not announce itself within {timeout_s}s:\n{self.stderr()}")

    def wait_for_health(self, service: str = "", timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        with self.channel() as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"server not SERVING within {timeout_s}s:\n{self.stderr()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # the server dumps every thread's stack to stderr
            time.sleep(1.0)
            self.kill()
            raise RuntimeError(f"server did not stop within {timeout_s}s; its stderr:\n{self.stderr()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.stop()
        finally:
            self.kill()

    # talking to it -------------------------------------------------------------------------------------------

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        assert self.token_path is not None
        return self.token_path.read_text().strip()

    def admin_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.target)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()[-8000:]
        except OSError:
            return ""

    def cli(
        self, *args: str, input_text: str | None = None, timeout_s: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Runs `verdict ARGS` against this server, the way an operator would."""
        env = {**self.env, "VERDICT_TARGET": self.target, "VERDICT_TOKEN": self.token}
        return subprocess.run(
            [sys.executable, "-m", "verdict_server", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            input=input_text,
            timeout=timeout_s,
        )
