"""A fleet: several real `verdict serve` processes on one real PostgreSQL, as production runs them.

A write through one replica is served by the others; two replicas racing for one version: one wins, one gets
ABORTED; with the database stopped every replica keeps answering from its last snapshot and refuses writes with
UNAVAILABLE, and catches up when the database is back.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import ROOT, ServerProcess
from pg_support import PostgresServer, start_postgres

import verdict

RULE_SET = "fleet.flag"
WAIT_S = 30.0  # how long a replica may take to show a change before the test fails (a bound, not a measurement)


def flag(value: str) -> str:
    return (
        f"kind: RuleSet\nname: {RULE_SET}\ndefault: {{flag: {value}}}\n"
        "rules:\n  - id: never\n    when: 'false'\n    then: {flag: never}\n"
    )


def client_of(replica: ServerProcess) -> verdict.Client:
    return verdict.Client(replica.target, token=replica.token, retries=0)


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except verdict.VerdictError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"not within {WAIT_S}s: {what}")


def served_flag(replica: ServerProcess) -> tuple[int, str]:
    with client_of(replica) as client:
        answer = client.evaluate(RULE_SET, {})
    return answer.version, answer.result["flag"]


def health(replica: ServerProcess) -> int:
    with replica.channel() as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


@pytest.fixture
def fleet(start_server, postgres_url: str) -> Callable[[int], list[ServerProcess]]:
    def start(count: int, url: str = postgres_url) -> list[ServerProcess]:
        return [start_server("--store", url, "--poll-interval-s", "5") for _ in range(count)]

    return start


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A database server this test may stop and start (the session's one is shared)."""
    server = start_postgres()
    yield server
    server.close()


def test_a_write_through_one_replica_is_served_by_all(fleet) -> None:
    replicas = fleet(3)
    with client_of(replicas[0]) as writer:
        written = writer.put_document(flag("one"), author="e2e")
    # The poll interval is 5 s: seeing it sooner on the others shows the push (NOTIFY) works.
    for replica in replicas:
        wait_for(lambda r=replica: served_flag(r) == (written.version, "one"), f"{replica.target} serves v1")
    with client_of(replicas[2]) as writer:
        second = writer.put_document(flag("two"), expected_version=written.version, author="e2e")
        history = writer.list_versions("RuleSet", RULE_SET)
    for replica in replicas:
        wait_for(lambda r=replica: served_flag(r) == (second.version, "two"), f"{replica.target} serves v2")
    assert [(d.version, d.author) for d in history] == [(2, "e2e"), (1, "e2e")]


def test_two_replicas_racing_for_one_version_one_wins_one_is_aborted(fleet) -> None:
    replicas = fleet(2)
    with client_of(replicas[0]) as client:
        base = client.put_document(flag("base")).version
    results: list[object] = [None, None]
    barrier = threading.Barrier(2)

    def write(index: int) -> None:
        with client_of(replicas[index]) as client:
            barrier.wait()
            try:
                results[index] = client.put_document(flag(f"r{index}"), expected_version=base).version
            except verdict.VerdictError as err:
                results[index] = err

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [r for r in results if isinstance(r, int)]
    lost = [r for r in results if isinstance(r, verdict.VerdictError)]
    assert won == [base + 1] and len(lost) == 1, results
    assert isinstance(lost[0], verdict.Conflict) and lost[0].code == grpc.StatusCode.ABORTED
    winner = results.index(base + 1)
    for replica in replicas:
        wait_for(lambda r=replica: served_flag(r) == (base + 1, f"r{winner}"), f"{replica.target} serves the winner")


def test_with_the_database_down_replicas_serve_and_refuse_writes_then_catch_up(start_server, own_postgres) -> None:
    url = own_postgres.create_database()
    replicas = [start_server("--store", url, "--poll-interval-s", "0.5") for _ in range(2)]
    with client_of(replicas[0]) as client:
        before = client.put_document(flag("before")).version
    for replica in replicas:
        wait_for(lambda r=replica: served_flag(r) == (before, "before"), "both serve the first version")

    own_postgres.stop()
    for replica in replicas:
        assert served_flag(replica) == (before, "before")
        with client_of(replica) as client:
            assert client.route("order.status.paid", tags=["PAID"], key="k").destinations is not None
        assert health(replica) == health_pb2.HealthCheckResponse.SERVING
    with client_of(replicas[1]) as client, pytest.raises(verdict.Unavailable) as refused:
        client.put_document(flag("lost"), timeout=30)
    assert f"127.0.0.1:{own_postgres.port}" in refused.value.message and "unreachable" in refused.value.message
    wait_for(lambda: "the store is unreachable" in replicas[0].stderr(), "the outage is logged")

    own_postgres.start()
    after: list[int] = []

    def write_after_restart() -> bool:
        with client_of(replicas[1]) as client:
            after.append(client.put_document(flag("after"), timeout=30).version)
        return True

    wait_for(write_after_restart, "a write succeeds once the database is back")
    for replica in replicas:
        wait_for(lambda r=replica: served_flag(r) == (after[0], "after"), f"{replica.target} caught up")
    with client_of(replicas[0]) as client:
        assert [d.version for d in client.list_versions("RuleSet", RULE_SET)] == [after[0], before]


def test_a_replica_started_while_the_database_is_down_serves_once_it_loaded(start_server, own_postgres) -> None:
    url = own_postgres.create_database()
    own_postgres.stop()
    replica = start_server("--store", url, "--poll-interval-s", "0.3", wait_healthy=False)
    assert health(replica) == health_pb2.HealthCheckResponse.NOT_SERVING
    own_postgres.start()
    replica.wait_for_health()
    with client_of(replica) as client:  # a brand-new store: the examples were seeded on the first load
        assert client.evaluate("pharmacist.otc_block", {"role": "PHARMACIST"}).rule_set == "pharmacist.otc_block"


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("mysql://host/db", "is not one of postgresql://"),
        ("sqlite://relative/verdict.db", "has a host"),
        ("sqlite:///", "needs an absolute path"),
    ],
)
def test_a_bad_store_url_fails_at_start_with_one_line(tmp_path, store: str, expected: str) -> None:
    done = run_serve(tmp_path, "--store", store)
    assert done.returncode == 2 and expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_missing_database_fails_at_start_with_one_line(tmp_path, postgres_server: PostgresServer) -> None:
    done = run_serve(tmp_path, "--store", postgres_server.url("no_such_db"))
    assert done.returncode != 0
    assert 'database "no_such_db" does not exist' in done.stderr, done.stderr
    assert [line for line in done.stderr.splitlines() if "verdict:" in line] == [
        f'verdict: cannot open the store: store {postgres_server.url("no_such_db")}: database "no_such_db" does not exist'
    ]


def run_serve(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verdict_server", "serve", "--port", "0", "--data", str(tmp_path / "d"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
