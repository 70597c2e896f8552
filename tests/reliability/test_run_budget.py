"""Issue 19 rows 1-8 against a real server: each hostile call ends with its documented error, within its budget, while a
bystander keeps getting answers and the server's peak RSS stays bounded.

The promise (docs/reliability.md): a QL run stops within timeout_ms + 20 ms and builds at most its memory budget;
compiling is bounded; caches are bounded by bytes; a batch ends at its caller's deadline. The bounds asserted here are
several times the promise, so that a loaded 2-core machine does not make them flaky; before the fix every row
missed them by one to three orders of magnitude (the issue's table).
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from harness import ServerProcess
from reliability.reliability_support import Admin, crash_lines, is_serving, proc_status_kib, rule_set

from verdict.v1 import admin_pb2, decision_pb2, decision_pb2_grpc

TIMEOUT_MS = 1_000
HOSTILE_BOUND_S = TIMEOUT_MS / 1000 + 2.0  # promise: timeout + 20 ms
BYSTANDER_WORST_S = 2.0  # the longest a bystander's call may take while a hostile call runs (was 3.4-32 s)
PEAK_RSS_BOUND_KIB = 1024 * 1024  # the issue saw 1.3-5.3 GB
ADDRESS_SPACE_LIMIT = 6 * 1024**3
MEMORY_CODE = "SCRIPT_OUT_OF_MEMORY"
TIME_CODE = "SCRIPT_TIME_OUT"

SHARED = "a = [1]; b = [1]; for (i = 0; i < n; i++) { a = [a, a]; b = [b, b] }; "
BIG_LIST = "m = {:}; for (i = 0; i < 100000; i++) { m[i] = i }; l = m.values(); s = 'a' + l; "
# name -> (when, facts, the one QL error code the rule must stop with, or None: it must answer, and quickly)
HOSTILE = {
    "row2-equality": (SHARED + "a == b", {"n": 32}, MEMORY_CODE),
    "row2-in": (SHARED + "a in [b]", {"n": 32}, MEMORY_CODE),
    "row2-contains": (SHARED + "[b].contains(a)", {"n": 32}, MEMORY_CODE),
    "row2-spread": ("a = [{'x': 1}]; for (i = 0; i < 20; i++) { a = [a, a] }; a*.x == []", {}, MEMORY_CODE),
    "row2-when-repr": (SHARED + "a", {"n": 32}, MEMORY_CODE),
    "row2-when-repr-small": (SHARED + "a", {"n": 12}, "CONDITION_BOOL_REQUIRED"),
    "row3-int": ("int x = 1E1000000; true", {}, None),
    "row3-long-param": ("function f(long x) { return x > 0 }; f(1E600000)", {}, None),
    "row3-big-integer": ("x = (BigInteger) 1E1000000; true", {}, "INVALID_ARITHMETIC"),
    "row4-in-list": (BIG_LIST + "while (true) { 'zz' in l }; true", {}, TIME_CODE),
    "row4-index-of": (BIG_LIST + "while (true) { l.indexOf(-1) }; true", {}, TIME_CODE),
    "row4-regex": (
        "t = 'a'; while (t.length() < 9000) { t = t + t }; while (true) { t.matches('a*b') }",
        {},
        TIME_CODE,
    ),
    "row4-concat-in-try": (BIG_LIST + "while (true) { try { x = '' + l } catch (e) { } }; true", {}, TIME_CODE),
    "row5-map-of-strings": (
        "s = 'x'; while (s.length() < 500000) { s = s + s }; m = {:}; i = 0; while (true) { m[i] = s + i; i++ }; true",
        {},
        MEMORY_CODE,
    ),
}
RESULT_BOMB = "a = [1]; for (i = 0; i < 22; i++) { a = [a, a] }; a"


def _when_block(when: str) -> str:
    return "    when: |-\n      " + when + "\n"


def _hostile_rule_set(name: str, when: str, on_error: str) -> str:
    return rule_set(
        f"budget.{name}.{on_error}",
        f"on_error: {on_error}\ntimeout_ms: {TIMEOUT_MS}\ndefault: {{stopped: true}}\n"
        f"rules:\n  - id: hostile\n{_when_block(when)}    then: {{stopped: false}}\n",
    )


def _macro_bomb(levels: int = 8, fan: int = 10) -> str:
    lines = ["macro a0 { x = 1 }"]
    lines += [f"macro a{k} {{ " + " ; ".join([f"a{k - 1}"] * fan) + " }" for k in range(1, levels)]
    return "\n".join([*lines, f"a{levels - 1}", "true"])


@dataclass
class _Server:
    process: ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    with ServerProcess(
        tmp_path_factory.mktemp("budget") / "data", "--workers", "16", "--allow-adhoc", "--pinned-cache-mb", "8"
    ) as process:
        resource.prlimit(process.proc.pid, resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
        admin = Admin(process)
        for name, (when, _, _) in HOSTILE.items():
            for on_error in ("default", "fail"):
                admin.put(_hostile_rule_set(name, when, on_error))
        admin.put(
            rule_set(
                "budget.result-bomb",
                f"on_error: default\ntimeout_ms: {TIMEOUT_MS}\ndefault: {{stopped: true}}\n"
                f"rules:\n  - id: hostile\n    then_expr: |-\n      {RESULT_BOMB}\n",
            )
        )
        admin.close()
        yield _Server(process)
        assert is_serving(process)
        assert proc_status_kib(process.proc.pid, "VmHWM") < PEAK_RSS_BOUND_KIB
    assert crash_lines(process.stderr()) == []


def _struct(facts: dict) -> Struct:
    struct = Struct()
    struct.update(facts)
    return struct


@dataclass
class _Bystander:
    """Evaluates pharmacist.otc_block in a loop; records each call's latency and whether the answer was right."""

    process: ServerProcess
    latencies: list[float] = field(default_factory=list)
    wrong: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        facts = _struct({"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001})
        with self.process.channel() as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    answer = stub.Evaluate(
                        decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=facts), timeout=30
                    )
                    ok = answer.result.struct_value.fields["action"].string_value == "HIDE"
                except grpc.RpcError:
                    ok = False
                self.latencies.append(time.monotonic() - started)
                self.wrong += not ok
                time.sleep(0.02)


@contextmanager
def _bystander(process: ServerProcess) -> Iterator[_Bystander]:
    bystander = _Bystander(process)
    thread = threading.Thread(target=bystander.run)
    thread.start()
    time.sleep(0.1)
    try:
        yield bystander
    finally:
        time.sleep(0.1)
        bystander.stop.set()
        thread.join(timeout=60)
    assert bystander.latencies, "the bystander never got an answer"
    assert bystander.wrong == 0
    assert max(bystander.latencies) < BYSTANDER_WORST_S, f"a bystander call took {max(bystander.latencies):.2f} s"


def _timed(call, *args, **kwargs):
    started = time.monotonic()
    try:
        return call(*args, **kwargs), None, time.monotonic() - started
    except grpc.RpcError as err:
        return None, err, time.monotonic() - started


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_rule_ends_with_its_ql_error_within_its_budget(server: _Server, case: str) -> None:
    when, facts, code = HOSTILE[case]
    with server.process.channel() as channel, _bystander(server.process):
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        request = decision_pb2.EvaluateRequest(rule_set=f"budget.{case}.default", facts=_struct(facts))
        answer, error, elapsed = _timed(stub.Evaluate, request, timeout=60)
    assert error is None, (error.code(), error.details())
    assert elapsed < HOSTILE_BOUND_S, f"{case} took {elapsed:.2f} s"
    if code is None:
        assert not answer.degraded, answer.error.message
        assert answer.result.struct_value.fields["stopped"].bool_value is False
    else:
        assert answer.degraded and answer.error.code == code, (answer.error.code, answer.error.message)
        assert answer.error.rule_id == "hostile"


@pytest.mark.parametrize("case", [case for case, (_, _, code) in HOSTILE.items() if code in (MEMORY_CODE, TIME_CODE)])
def test_with_on_error_fail_the_budget_is_a_clear_status(server: _Server, case: str) -> None:
    """FAILED_PRECONDITION (the rule set fails the same way every time), never the caller's DEADLINE_EXCEEDED."""
    when, facts, code = HOSTILE[case]
    with server.process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        request = decision_pb2.EvaluateRequest(rule_set=f"budget.{case}.fail", facts=_struct(facts))
        _, error, elapsed = _timed(stub.Evaluate, request, timeout=60)
    assert error is not None and error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    assert code in error.details()
    assert elapsed < HOSTILE_BOUND_S


def test_row2_a_result_sharing_its_parts_is_refused_not_converted(server: _Server) -> None:
    with server.process.channel() as channel, _bystander(server.process):
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        answer, error, elapsed = _timed(
            stub.Evaluate, decision_pb2.EvaluateRequest(rule_set="budget.result-bomb"), timeout=60
        )
    assert error is None, error
    assert answer.degraded and answer.error.code in {MEMORY_CODE, "INVALID_RESULT"}, answer.error
    assert elapsed < HOSTILE_BOUND_S


def test_row5_six_callers_building_big_strings_stay_inside_the_memory_bound(server: _Server) -> None:
    answers: list[str] = []

    def call() -> None:
        with server.process.channel() as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            answer = stub.Evaluate(
                decision_pb2.EvaluateRequest(rule_set="budget.row5-map-of-strings.default"), timeout=60
            )
            answers.append(answer.error.code)

    with _bystander(server.process):
        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert answers == [MEMORY_CODE] * 6
    assert proc_status_kib(server.process.proc.pid, "VmHWM") < PEAK_RSS_BOUND_KIB


def test_row1_a_macro_bomb_is_refused_when_written_and_when_sent_ad_hoc(server: _Server) -> None:
    bomb = _macro_bomb()
    document = rule_set(
        "budget.macro-bomb",
        "rules:\n  - id: bomb\n    when: |-\n" + "".join(f"      {line}\n" for line in bomb.splitlines()),
    )
    admin = Admin(server.process)
    try:
        with _bystander(server.process):
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as written:
                admin.put(document)
            put_elapsed = time.monotonic() - started
            with server.process.channel() as channel:
                stub = decision_pb2_grpc.DecisionServiceStub(channel)
                _, adhoc, adhoc_elapsed = _timed(
                    stub.Evaluate, decision_pb2.EvaluateRequest(expression=bomb), timeout=60
                )
            validate = admin.stub.ValidateDocument(
                admin_pb2.ValidateDocumentRequest(content=document), timeout=60, metadata=admin.metadata
            )
    finally:
        admin.close()
    assert written.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "SCRIPT_TOO_COMPLEX" in written.value.details()
    assert adhoc is not None and adhoc.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "SCRIPT_TOO_COMPLEX" in adhoc.details()
    assert "SCRIPT_TOO_COMPLEX" in str(validate)
    assert put_elapsed < 5 and adhoc_elapsed < 5


def _wide_rule_set(name: str, rules: int, version_mark: int) -> str:
    body = "".join(
        f"  - id: r{index}\n    when: x == {index} && y != 'v{version_mark}-{index}'\n    then: {{hit: {index}}}\n"
        for index in range(rules)
    )
    return rule_set(name, f"default: {{hit: -1}}\nrules:\n{body}")


def test_row6_old_versions_are_compiled_into_a_cache_bounded_by_bytes(server: _Server) -> None:
    """--pinned-cache-mb 8: 30 versions of a 300-rule set (~50 MB compiled in all) keep at most ~8 MB."""
    admin = Admin(server.process)
    try:
        for mark in range(30):
            admin.put(_wide_rule_set("budget.wide", 300, mark))
    finally:
        admin.close()
    pid = server.process.proc.pid
    with server.process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        for version in range(1, 30):  # warm: each version compiled once, the cache filled
            stub.Evaluate(
                decision_pb2.EvaluateRequest(rule_set="budget.wide", version=version, facts=_struct({"x": 3})),
                timeout=60,
            )
        settled = proc_status_kib(pid, "VmRSS")
        for _ in range(2):
            for version in range(1, 30):
                answer = stub.Evaluate(
                    decision_pb2.EvaluateRequest(rule_set="budget.wide", version=version, facts=_struct({"x": 3})),
                    timeout=60,
                )
                assert answer.result.struct_value.fields["hit"].number_value == 3
        grown = proc_status_kib(pid, "VmRSS") - settled
    assert grown < 64 * 1024, f"RSS grew {grown} KiB while cycling through 29 old versions"


def test_row7_ad_hoc_expressions_are_kept_in_a_small_cache_of_their_own(server: _Server) -> None:
    pid = server.process.proc.pid
    with server.process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)

        def send(mark: int) -> None:
            expression = " || ".join(f"x == {mark * 10_000 + i}" for i in range(3_500))  # ~60 KB
            answer = stub.Evaluate(
                decision_pb2.EvaluateRequest(expression=expression, facts=_struct({"x": -1})), timeout=60
            )
            assert answer.result.bool_value is False

        for mark in range(10):
            send(mark)
        settled = proc_status_kib(pid, "VmRSS")
        for mark in range(10, 40):
            send(mark)
        grown = proc_status_kib(pid, "VmRSS") - settled
    assert grown < 48 * 1024, f"RSS grew {grown} KiB over 30 more distinct 60 KB expressions (2.66 MB each before)"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / __import__("os").sysconf("SC_CLK_TCK")


def test_row8_a_batch_stops_at_its_callers_deadline(server: _Server) -> None:
    pid = server.process.proc.pid
    facts = [_struct({})] * 2_000  # each runs to its 1 s budget: 2,000 s of work without a batch deadline
    with server.process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        request = decision_pb2.EvaluateBatchRequest(rule_set="budget.row4-in-list.default", facts=facts)
        _, error, _ = _timed(stub.EvaluateBatch, request, timeout=1.0)
        assert error is not None and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(1.0)  # the run in progress at the deadline stops with it (plus the margin)
        before = _cpu_seconds(pid)
        time.sleep(3.0)
        spent = _cpu_seconds(pid) - before
        cancelled = stub.EvaluateBatch.future(request, timeout=600)
        time.sleep(1.0)
        cancelled.cancel()
        time.sleep(1.5)
        before = _cpu_seconds(pid)
        time.sleep(3.0)
        spent_after_cancel = _cpu_seconds(pid) - before
    assert spent < 1.0, f"the server spent {spent:.2f} s of CPU in the 3 s after the batch's deadline"
    assert spent_after_cancel < 1.0, f"the server spent {spent_after_cancel:.2f} s of CPU after the cancel"
    with _bystander(server.process):
        time.sleep(0.3)


def test_row8_a_batch_has_a_server_maximum_too(server: _Server) -> None:
    """Without a caller deadline the batch still ends: --max-batch-ms (default 10 s) answers FAILED_PRECONDITION."""
    with server.process.channel() as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        request = decision_pb2.EvaluateBatchRequest(rule_set="budget.row4-in-list.default", facts=[_struct({})] * 100)
        _, error, elapsed = _timed(stub.EvaluateBatch, request)
    assert error is not None and error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
    assert "maximum of 10000 ms" in error.details()
    assert elapsed < 10 + 5
