"""Shared fixtures: one real server for the read-mostly end-to-end tests, and a factory for dedicated ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import ServerProcess
from hypothesis import HealthCheck, settings
from pg_support import PostgresServer, start_postgres

# The machines are shared and noisy: a property test must fail on a wrong answer, never on a slow example.
settings.register_profile("verdict", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("verdict")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on the embedded default (examples seeded), with ad-hoc expressions allowed."""
    data_dir = tmp_path_factory.mktemp("shared-server") / "data"
    with ServerProcess(data_dir, "--allow-adhoc") as process:
        yield process


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Starts dedicated servers (own data directory, own flags); every one is stopped after the test."""
    started: list[ServerProcess] = []

    def start(*args: str, data_dir: Path | None = None, wait_healthy: bool = True, **kwargs) -> ServerProcess:
        process = ServerProcess(data_dir or tmp_path / f"data{len(started)}", *args, **kwargs)
        started.append(process)
        return process.start(wait_healthy=wait_healthy)

    yield start
    for process in started:
        try:
            process.stop(timeout_s=15)
        except Exception:
            process.kill()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session (each test takes its own database from it)."""
    server = start_postgres()
    yield server
    server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a brand-new empty database for this test."""
    return postgres_server.create_database()
