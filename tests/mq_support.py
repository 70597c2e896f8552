"""A private RabbitMQ node for the tests, and helpers that talk to it like any AMQP application does.

The node is Debian's `rabbitmq-server`, started from its own directory on free ports (AMQP, Erlang distribution,
and a private epmd), so it never meets a system broker or another test run. When the package is missing and we are
root, it is installed with apt-get (under a lock: pytest workers may ask at once); otherwise the tests are skipped,
except under CI=true, where a missing broker is a failure.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pika
from prometheus_client.parser import text_string_to_metric_families

import verdict

ROOT = Path(__file__).resolve().parent.parent
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
logging.getLogger("pika").setLevel(logging.CRITICAL)  # waiting for the node logs every refused connection
START_TIMEOUT_S = 90.0
APT_LOCK = Path("/tmp/verdict-tests-apt.lock")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_rabbitmq() -> None:
    """Installs rabbitmq-server when missing and we may (root with apt-get); else fails (CI) or skips."""
    if (RABBIT_BIN / "rabbitmq-server").exists():
        return
    problem = "rabbitmq-server is not installed"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        with APT_LOCK.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (RABBIT_BIN / "rabbitmq-server").exists():
                problem = _apt_install("rabbitmq-server")
    if (RABBIT_BIN / "rabbitmq-server").exists():
        return
    import pytest  # only here: benchmarks/bench_forward.py uses this module without pytest installed

    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem}: the forwarder tests need a real RabbitMQ under CI", pytrace=False)
    pytest.skip(f"{problem} (run the tests as root to have it installed with apt-get)")


def _apt_install(package: str) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    print(f"mq_support: installing {package} with apt-get", file=sys.stderr)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:  # a fresh machine may never have fetched the package lists
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        return f"apt-get install {package} failed: {result.stderr[-2000:]}"
    return f"{package} was installed but {RABBIT_BIN / 'rabbitmq-server'} is missing"


class RabbitNode:
    """One private broker node; `url` is its AMQP URL (guest/guest, vhost /)."""

    def __init__(self, base: Path) -> None:
        self.base = Path(base)
        self.port = free_port()
        self.nodename = f"verdict-test-{self.port}@localhost"
        self.env = {
            **os.environ,
            "HOME": str(self.base),  # the Erlang cookie shared by the node and rabbitmqctl
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.base / "feature_flags"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq"),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "ERL_EPMD_PORT": str(free_port()),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def start(self) -> RabbitNode:
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:
            shutil.chown(self.base, "rabbitmq", "rabbitmq")  # harmless as root; needed if the scripts drop to it
        log = (self.base / "node.out").open("ab")
        self.proc = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.base
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                pika.BlockingConnection(pika.URLParameters(self.url)).close()
                return
            except pika.exceptions.AMQPConnectionError:
                time.sleep(0.2)
        raise RuntimeError(f"rabbitmq-server not ready within {START_TIMEOUT_S}s:\n{self.output()}")

    def ctl(self, *args: str, timeout_s: float = 60.0) -> str:
        result = subprocess.run(
            [str(RABBIT_BIN / "rabbitmqctl"), "-n", self.nodename, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=self.base,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.ctl("stop", timeout_s=60)
            except Exception:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        """A whole node restart on the same data: every connection drops, durable queues and persistent messages
        survive."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        subprocess.run([epmd, "-kill"], env=self.env, capture_output=True)

    def output(self) -> str:
        try:
            return (self.base / "node.out").read_text(errors="replace")[-6000:]
        except OSError:
            return ""


def connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


class ForwarderProcess:
    """One `verdict forward` subprocess with metrics and /healthz on a free port."""

    def __init__(self, broker_url: str, queue: str, *args: str, log_path: Path, env: dict[str, str] | None = None):
        self.args = ["--broker", broker_url, "--queue", queue, "--metrics-port", "0", "--poll-interval-s", "0.1", *args]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.metrics_port = 0

    def start(self, timeout_s: float = 60.0) -> ForwarderProcess:
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "verdict_server", "forward", *self.args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=self.env,
            cwd=ROOT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:  # the announce line comes once it consumes
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"verdict forward exited with {self.proc.wait()}:\n{self.stderr()}")
            match = re.search(r"verdict: forwarding queue .* \(metrics on port (\d+)\)", line)
            if match:
                self.metrics_port = int(match.group(1))
                return self
        self.kill()
        raise RuntimeError(f"verdict forward did not start consuming within {timeout_s}s:\n{self.stderr()}")

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include these."""
        total = 0.0
        for family in text_string_to_metric_families(self.http("/metrics")[1]):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stderr(self) -> str:
        try:
            return self.log_path.read_text()[-8000:]
        except OSError:
            return ""


class Topology:
    """The exchanges and queues of one test, under its own prefix so tests never see each other's messages."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.source_exchange = f"{prefix}.in"
        self.target_exchange = f"{prefix}.out"
        self.dead_letter_exchange = f"{prefix}.dlx"
        self.queue = f"{prefix}.source"
        self.dead_letters = f"{prefix}.dead"

    def forward_args(self) -> list[str]:
        return [
            "--bind",
            "--source-exchange",
            self.source_exchange,
            "--target-exchange",
            self.target_exchange,
            "--dead-letter-exchange",
            self.dead_letter_exchange,
        ]

    def sink(self, target: str) -> str:
        return f"{self.prefix}.sink.{target}"

    def declare(self, channel, targets: list[str]) -> None:
        """The exchanges, one durable queue per destination target, and a queue for every dead letter."""
        for exchange in (self.source_exchange, self.target_exchange, self.dead_letter_exchange):
            channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        for target in targets:
            channel.queue_declare(self.sink(target), durable=True)
            channel.queue_bind(self.sink(target), self.target_exchange, routing_key=target)
        channel.queue_declare(self.dead_letters, durable=True)
        channel.queue_bind(self.dead_letters, self.dead_letter_exchange, routing_key="#")


@dataclass
class Received:
    queue: str
    routing_key: str
    properties: pika.BasicProperties
    body: bytes

    @property
    def headers(self) -> dict:
        return self.properties.headers or {}


def publish(channel, exchange: str, messages: list[tuple[str, pika.BasicProperties, bytes]]) -> None:
    """Publishes with confirms (the channel must be in confirm mode), so every message is in the queue after it."""
    for routing_key, properties, body in messages:
        channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)


def collect(url: str, queues: list[str], until: Callable[[list[Received]], bool], timeout_s: float = 60.0):
    """Consumes every queue (acknowledging) until `until(received)` holds or the timeout passes; returns all."""
    received: list[Received] = []
    conn = connect(url)
    try:
        channel = conn.channel()
        for name in queues:
            channel.basic_consume(
                name,
                lambda _ch, method, props, body, name=name: received.append(
                    Received(name, method.routing_key, props, body)
                ),
                auto_ack=True,
            )
        deadline = time.monotonic() + timeout_s
        while not until(received) and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.1)
        conn.process_data_events(time_limit=0.3)  # whatever else is already on its way (duplicates, strays)
    finally:
        conn.close()
    return received


def queue_depth(url: str, queue: str) -> int:
    conn = connect(url)
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


# Messages over the example route table (examples/route-tables/order-events.yaml) -----------------------------------

ORDER_TARGETS = ["settlement.order.status", "doctor.order.notify", "pharmacy.order.status", "crm.order.events"]
STATES = ["PAID", "REFUNDED", "CANCELLED", "CREATED"]


@dataclass
class SourceMessage:
    """A message as published, and the Route call that carries the same topic, tags, key, properties and body."""

    number: int
    routing_key: str
    properties: pika.BasicProperties
    body: bytes

    def route_args(self) -> dict:
        headers = dict(self.properties.headers or {})
        tags = headers.pop("tags", [])
        tags = [t.strip() for t in tags.split(",")] if isinstance(tags, str) else list(tags)
        key = headers.pop("key", None)
        properties = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in headers.items()}
        return {
            "tags": [t for t in tags if t],
            "key": str(key) if key is not None else (self.properties.message_id or ""),
            "properties": properties,
            "body": self.body or None,
            "content_type": self.properties.content_type or "",
        }


def order_messages(count: int, seed: int = 13) -> list[SourceMessage]:
    """A varied stream: every state, tags as a string, a list, missing or wrong; keys by header or message_id;
    test and production traffic; bodies with and without amounts and prescriptions, and none at all."""
    import json
    import random

    rng = random.Random(seed)
    messages = []
    for number in range(count):
        state = rng.choice(STATES)
        headers: dict = {"env": rng.choice(["prod", "prod", "prod", "test"]), "seq": number}
        tag_style = rng.random()
        if tag_style < 0.5:
            headers["tags"] = state
        elif tag_style < 0.8:
            headers["tags"] = [state, "EXTRA"]
        elif tag_style < 0.9:
            headers["tags"] = "CREATED"
        key = "order-smoke-1" if number % 97 == 0 else f"order-{rng.randrange(count // 4 + 1)}"
        message_id = None
        if rng.random() < 0.7:
            headers["key"] = key
            message_id = f"m-{number}"
        elif rng.random() < 0.8:
            message_id = key + f"-{number}"
        body_style = rng.random()
        if body_style < 0.85:
            body = {"amount": rng.choice([0, 9.5, 99.5, 120, -1]), "seq": number}
            if rng.random() < 0.4:
                body["prescriptionId"] = f"rx-{number}"
            payload = json.dumps(body).encode()
            content_type = "application/json" if rng.random() < 0.8 else None
        else:
            payload, content_type = b"", None
        properties = pika.BasicProperties(
            headers=headers, message_id=message_id, content_type=content_type, delivery_mode=2
        )
        messages.append(SourceMessage(number, f"order.status.{state.lower()}", properties, payload))
    return messages


def rpc_expectations(client, messages: list[SourceMessage]) -> dict[int, verdict.Routing]:
    """message number → DecisionService.Route's answer for it (through a real `verdict serve`)."""
    return {m.number: client.route(m.routing_key, **m.route_args()) for m in messages}


def cannot_route(routing: verdict.Routing) -> bool:
    """A condition failed for some system: the forwarder cannot decide, so the message is dead-lettered."""
    return any(s.reason.endswith("ERROR") for s in routing.skipped)


def everything_arrived(expected: dict[int, verdict.Routing], dead_letters: str) -> Callable[[list[Received]], bool]:
    """For collect(): every expected copy and every expected dead letter has arrived (copies alone is too early:
    a dead letter may still be on its way when the last copy lands)."""
    want = set(expected_pairs(expected))
    want_dead = {number for number, routing in expected.items() if cannot_route(routing)}

    def arrived(received: list[Received]) -> bool:
        copies = {(r.headers["seq"], r.headers.get("verdict-system")) for r in received if r.queue != dead_letters}
        dead = {r.headers["seq"] for r in received if r.queue == dead_letters}
        return copies >= want and dead >= want_dead

    return arrived


def expected_pairs(expected: dict[int, verdict.Routing]) -> list[tuple[int, str]]:
    return sorted(
        (number, d.system)
        for number, routing in expected.items()
        if not cannot_route(routing)
        for d in routing.destinations
    )


def expected_message_id(message: SourceMessage) -> str:
    """The documented idempotency key, recomputed independently of the forwarder's code."""
    import hashlib

    if message.properties.message_id:
        return message.properties.message_id
    key = message.route_args()["key"]
    return hashlib.sha256(f"{message.routing_key}\0{key}\0".encode() + message.body).hexdigest()
