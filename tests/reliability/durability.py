"""Concurrent admin writers against a server that is SIGKILLed at random moments and restarted on the same data.

`run_writes_with_kills` drives the experiment and returns what each writer was told; `durability_violations` then
compares that with what the restarted server and the SQLite file hold. An acknowledged write must be present with
exactly its content, author and version; a write whose answer was lost to a kill may or may not be present, but if
it is, it is present once and intact. Shared by tests/reliability (a few kills) and tests/soak (1,000 writes).
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from harness import ServerProcess
from reliability.reliability_support import Admin, rule_set, store_problems

from verdict.v1 import admin_pb2

KIND = "RuleSet"
# A call that was in flight when the server died ends with one of these; anything else is a finding.
LOST_TO_A_KILL = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
WRITE_TIMEOUT_S = 10.0


def document(name: str, writer: int, seq: int) -> str:
    """A small, valid and unique rule set: the writer and sequence number appear in the content itself."""
    padding = ", ".join(str((writer * 7919 + seq * 104729 + i) % 100_003) for i in range(40))
    return rule_set(
        name,
        f"""\
        description: durability writer {writer} write {seq}
        default: {{writer: {writer}, seq: {seq}}}
        constants:
          padding: [{padding}]
        rules:
          - id: never
            when: "false"
            then: {{writer: {writer}, seq: {seq}, matched: true}}
        """,
    )


@dataclass
class Attempt:
    name: str
    content: str
    author: str


@dataclass
class WriteLog:
    """What the writers were told. `acked` maps (name, version) to the write the server acknowledged with it."""

    acked: dict[tuple[str, int], Attempt] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    version_reused: list[str] = field(default_factory=list)
    unexpected_errors: list[str] = field(default_factory=list)
    lost_answers: int = 0
    kills: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Restartable:
    """The current server process; writers reconnect when its epoch changes."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.epoch = 0
        self.process = ServerProcess(data_dir).start()
        self.metadata = self.process.admin_metadata()  # the token file survives restarts
        self.changed = threading.Condition()

    def current(self) -> tuple[int, ServerProcess]:
        with self.changed:
            return self.epoch, self.process

    def kill_and_restart(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown code runs
        replacement = ServerProcess(self.data_dir).start()
        with self.changed:
            self.process = replacement
            self.epoch += 1
            self.changed.notify_all()

    def wait_past(self, epoch: int, timeout_s: float) -> None:
        with self.changed:
            self.changed.wait_for(lambda: self.epoch != epoch, timeout=timeout_s)


def run_writes_with_kills(
    data_dir: Path,
    *,
    writes: int,
    kills: int,
    writers: int = 4,
    documents: int = 3,
    seed: int = 8,
) -> WriteLog:
    """Writes until `writes` writes were acknowledged, SIGKILLing the server `kills` times on the way.

    Every writer thread writes to every document (no expected_version), so concurrent writers race for each next
    version number. The server is killed after a random number of further acknowledgements plus a random pause, so
    kills land in every phase of a write. Ends with one more SIGKILL, leaving the store as a crash leaves it.
    """
    rng = random.Random(seed)
    names = [f"durable.doc-{index}" for index in range(documents)]
    log = WriteLog()
    server = _Restartable(data_dir)
    done = threading.Event()

    def acked_count() -> int:
        with log.lock:
            return len(log.acked)

    def writer(number: int) -> None:
        seq = 0
        epoch, admin = -1, None
        while not done.is_set():
            current, process = server.current()
            if current != epoch:
                if admin is not None:
                    admin.close()
                epoch, admin = current, Admin(process)
            name = names[(number + seq) % len(names)]
            attempt = Attempt(name, document(name, number, seq), f"writer-{number}")
            seq += 1
            with log.lock:
                log.attempts.append(attempt)
            request = admin_pb2.PutDocumentRequest(content=attempt.content, author=attempt.author)
            try:
                reply = admin.stub.PutDocument(request, timeout=WRITE_TIMEOUT_S, metadata=server.metadata).document
            except grpc.RpcError as err:
                with log.lock:
                    if err.code() in LOST_TO_A_KILL:
                        log.lost_answers += 1
                    else:
                        log.unexpected_errors.append(f"{err.code().name}: {err.details()}")
                server.wait_past(epoch, timeout_s=5.0)
                continue
            with log.lock:
                key = (reply.name, reply.version)
                if key in log.acked:
                    log.version_reused.append(f"{key} acknowledged to {attempt.author} and to {log.acked[key].author}")
                if reply.name != name:
                    log.unexpected_errors.append(f"wrote {name} but the answer names {reply.name}")
                log.acked[key] = attempt
                if len(log.acked) >= writes:
                    done.set()
        if admin is not None:
            admin.close()

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(writers)]
    for thread in threads:
        thread.start()
    try:
        step = writes / (kills + 1)
        for index in range(kills):
            threshold = int(step * (index + 1) + rng.uniform(-step / 3, step / 3))
            _wait_for(lambda threshold=threshold: acked_count() >= threshold or done.is_set(), timeout_s=120)
            time.sleep(rng.uniform(0.0, 0.05))
            server.kill_and_restart()
            log.kills += 1
        _wait_for(done.is_set, timeout_s=300)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
        server.process.kill()
    return log


def _wait_for(condition, timeout_s: float) -> None:  # noqa: ANN001 - a zero-argument predicate
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the writers made no progress")
        time.sleep(0.01)


def durability_violations(data_dir: Path, log: WriteLog) -> list[str]:
    """Everything that breaks the durability promise, checked on the file (read-only) and through a fresh server."""
    problems = [f"store integrity: {problem}" for problem in store_problems(data_dir)]
    problems += [f"version handed out twice: {entry}" for entry in log.version_reused]
    problems += [f"a write failed with an unexpected status: {entry}" for entry in log.unexpected_errors]
    with ServerProcess(data_dir) as process:
        admin = Admin(process)
        try:
            stored = {name: admin.history(KIND, name) for name in {a.name for a in log.attempts}}
        finally:
            admin.close()
    problems += _compare(stored, log)
    return problems


def _compare(stored: dict[str, list[admin_pb2.Document]], log: WriteLog) -> list[str]:
    problems = []
    by_version = {(name, doc.version): doc for name, docs in stored.items() for doc in docs}
    for (name, version), attempt in sorted(log.acked.items()):
        doc = by_version.get((name, version))
        if doc is None:
            problems.append(f"acknowledged {name} v{version} is missing")
        elif (doc.content, doc.author, doc.deleted) != (attempt.content, attempt.author, False):
            problems.append(f"acknowledged {name} v{version} holds other content or author")
    attempted = defaultdict(set)
    for attempt in log.attempts:
        attempted[attempt.name].add(attempt.content)
    for name, docs in stored.items():
        versions = sorted(doc.version for doc in docs)
        if versions != list(range(1, len(versions) + 1)):
            problems.append(f"{name}: versions are not 1..N: {versions}")
        contents = [doc.content for doc in docs]
        if len(set(contents)) != len(contents):
            problems.append(f"{name}: one write is stored under two versions")
        strangers = [doc.version for doc in docs if doc.content not in attempted[name]]
        if strangers:
            problems.append(f"{name}: versions {strangers} hold content nobody wrote")
    return problems


__all__ = ["WriteLog", "durability_violations", "run_writes_with_kills"]
