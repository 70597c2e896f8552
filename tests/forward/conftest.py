"""The forwarder tests share one private RabbitMQ node (started once, ~5 s); each test uses its own exchanges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mq_support import ForwarderProcess, RabbitNode, Topology, ensure_rabbitmq


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    ensure_rabbitmq()
    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq"))
    node.start()
    try:
        yield node
    finally:
        node.close()


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> Topology:
    return Topology(f"t.{request.node.name.replace('[', '.').replace(']', '')}")


@pytest.fixture
def start_forwarder(broker: RabbitNode, tmp_path: Path) -> Iterator[Callable[..., ForwarderProcess]]:
    """Starts `verdict forward` processes against the test broker; every one is stopped after the test."""
    started: list[ForwarderProcess] = []

    def start(queue: str, *args: str) -> ForwarderProcess:
        process = ForwarderProcess(broker.url, queue, *args, log_path=tmp_path / f"forward{len(started)}.log")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        try:
            process.stop(timeout_s=30)
        except Exception:
            process.kill()
