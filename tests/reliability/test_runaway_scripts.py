"""Rules that never end, recurse without bound, build huge values or backtrack forever are stopped by the budget
with a QL error, while the same server keeps answering other calls.

Every hostile rule set below uses `on_error: default`, so a stopped rule shows as a degraded answer carrying the QL
error; the `on_error: fail` variants must fail with FAILED_PRECONDITION (reason SCRIPT_TIMEOUT for the timeout,
RULE_FAILED for other QL errors), never UNKNOWN or INTERNAL. The server runs under an address-space limit so that a script that
did allocate without bound ends as a failed test, not as a machine out of memory.
"""

from __future__ import annotations

import resource
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from harness import ServerProcess
from reliability.reliability_support import Admin, crash_lines, is_serving, proc_status_kib, rule_set

from verdict.v1 import decision_pb2, decision_pb2_grpc

TIMEOUT_MS = 1_000  # the largest budget a rule set may ask for: the longest a rule can hold a server thread
ADDRESS_SPACE_LIMIT = 6 * 1024**3
PEAK_RSS_BOUND_KIB = 1024 * 1024
LONG_SUBJECT = "a" * 5_000 + "!"

# name -> (functions, when, facts, the QL error codes that stop it). SCRIPT_TIME_OUT covers both the deadline and the
# step budget (QLExpress has one code for both); EXECUTE_OPERATOR_EXCEPTION is the call-depth and size caps;
# SCRIPT_OUT_OF_MEMORY the run's memory budget (ql/budget.py).
TIMED_OUT = {"SCRIPT_TIME_OUT"}
CAPPED = {"EXECUTE_OPERATOR_EXCEPTION"}
OUT_OF_MEMORY = {"SCRIPT_OUT_OF_MEMORY"}
REFUSED_REGEX = {"INVALID_ARGUMENT"}
RUNAWAY = {
    "while-true": ("", "while (true) { x = 1 }; true", {}, TIMED_OUT),
    "for-ever": ("", "for (i = 0; ; i++) { }; true", {}, TIMED_OUT),
    "nested-loops": (
        "",
        "s = 0; for (i = 0; i < n; i++) { for (j = 0; j < n; j++) { s = s + 1 } }; s > 0",
        {"n": 10**6},
        TIMED_OUT,
    ),
    "deep-recursion": ("function down(n) { return down(n + 1) }", "down(0) > 0", {}, CAPPED),
    "mutual-recursion": (
        "function ping(n) { return pong(n + 1) }\nfunction pong(n) { return ping(n + 1) }",
        "ping(0) > 0",
        {},
        CAPPED,
    ),
    "wide-recursion": ("function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }", "fib(60) > 0", {}, TIMED_OUT),
    "string-doubling": ("", "s = 'ab'; while (true) { s = s + s }; true", {}, CAPPED),
    "string-append": (
        "",
        "s = ''; while (true) { s = s + 'abcdefghij' }; true",
        {},
        TIMED_OUT | CAPPED | OUT_OF_MEMORY,
    ),
    # Which budget ends it first depends on the machine's speed: on an idle one the map passes 64 MiB in time.
    "map-growth": (
        "",
        "m = {:}; i = 0; while (true) { m['k' + i] = i; i = i + 1 }; true",
        {},
        TIMED_OUT | OUT_OF_MEMORY,
    ),
    "list-nesting": ("", "l = [1]; while (true) { l = [l, l, l] }; true", {}, OUT_OF_MEMORY),
    "list-doubling": (
        "",
        "l = [1, 2, 3]; while (true) { l = l.map(x -> [x, x]) }; true",
        {},
        TIMED_OUT | CAPPED | OUT_OF_MEMORY,
    ),
    # Java arrays are not reachable from Verdict's QL at all; were they, the array-length cap would apply.
    "big-array": ("", "a = new int[1000000000]; true", {}, {"NO_SUITABLE_CONSTRUCTOR", "EXCEED_MAX_ARR_LENGTH"}),
    "regex-nested-quantifier": ("", "text.matches('(a+)+$')", {"text": LONG_SUBJECT}, REFUSED_REGEX),
    "regex-alternation": ("", "text.matches('(a|aa)*b')", {"text": LONG_SUBJECT}, REFUSED_REGEX),
    "regex-polynomial": ("", "text.matches('.*a.*a.*a.*a.*b')", {"text": LONG_SUBJECT * 10}, REFUSED_REGEX),
    "regex-split": ("", "text.split('(a*)*b').size() > 0", {"text": LONG_SUBJECT}, REFUSED_REGEX),
}


def _runaway_rule_set(name: str, functions: str, when: str, on_error: str) -> str:
    function_block = "functions: |\n" + "".join(f"  {line}\n" for line in functions.splitlines()) if functions else ""
    return rule_set(
        f"runaway.{name}.{on_error}",
        f"on_error: {on_error}\ntimeout_ms: {TIMEOUT_MS}\ndefault: {{stopped: true}}\n{function_block}"
        f"rules:\n  - id: hostile\n    when: |-\n      {when}\n    then: {{stopped: false}}\n",
    )


@dataclass
class _ScriptServer:
    process: ServerProcess
    refused_at_write: dict[str, str]  # rule set name -> why the compiler refused it (also a safe outcome)


@pytest.fixture(scope="module")
def script_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_ScriptServer]:
    with ServerProcess(tmp_path_factory.mktemp("scripts") / "data", "--workers", "24") as process:
        resource.prlimit(process.proc.pid, resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
        admin = Admin(process)
        refused = {}
        for name, (functions, when, _, _) in RUNAWAY.items():
            for on_error in ("default", "fail"):
                try:
                    admin.put(_runaway_rule_set(name, functions, when, on_error))
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, err.code(), err.details())
                    refused[f"runaway.{name}.{on_error}"] = err.details()
        admin.close()
        yield _ScriptServer(process, refused)
        assert is_serving(process)
    assert crash_lines(process.stderr()) == []


def _evaluate(stub, name: str, facts: dict) -> decision_pb2.EvaluateResponse:
    struct = Struct()
    struct.update(facts)
    return stub.Evaluate(decision_pb2.EvaluateRequest(rule_set=name, facts=struct), timeout=30)


@pytest.mark.parametrize("case", list(RUNAWAY))
def test_a_runaway_rule_degrades_to_the_default_with_a_ql_error(script_server: _ScriptServer, case: str) -> None:
    _, _, facts, codes = RUNAWAY[case]
    name = f"runaway.{case}.default"
    if name in script_server.refused_at_write:
        assert "hostile" in script_server.refused_at_write[name]  # refused by the compiler, naming the rule
        return
    with script_server.process.channel() as channel:
        answer = _evaluate(decision_pb2_grpc.DecisionServiceStub(channel), name, facts)
    assert answer.degraded
    assert answer.result.struct_value.fields["stopped"].bool_value is True
    assert answer.error.rule_id == "hostile"
    assert answer.error.code in codes, (answer.error.code, answer.error.message)
    assert answer.error.message


@pytest.mark.parametrize("case", list(RUNAWAY))
def test_with_on_error_fail_a_runaway_rule_fails_the_call_cleanly(script_server: _ScriptServer, case: str) -> None:
    _, _, facts, _ = RUNAWAY[case]
    name = f"runaway.{case}.fail"
    if name in script_server.refused_at_write:
        assert "hostile" in script_server.refused_at_write[name]
        return
    with script_server.process.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        _evaluate(decision_pb2_grpc.DecisionServiceStub(channel), name, facts)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # never the caller's DEADLINE_EXCEEDED
    assert "hostile" in raised.value.details()


BYSTANDER_CALLS = 5


@dataclass
class _Attack:
    started: threading.Barrier
    enough: threading.Event = field(default_factory=threading.Event)
    hostile_answers: list[bool] = field(default_factory=list)  # degraded with a QL error, as promised
    bystander_answers: list[bool] = field(default_factory=list)  # the right decision
    lock: threading.Lock = field(default_factory=threading.Lock)


def test_other_calls_are_answered_while_runaway_rules_run(script_server: _ScriptServer) -> None:
    """Every hostile rule set runs again and again until a bystander has had 5 answers to a simple Evaluate."""
    process = script_server.process
    cases = [case for case in RUNAWAY if f"runaway.{case}.default" not in script_server.refused_at_write]
    attack = _Attack(started=threading.Barrier(len(cases) + 1))

    def hostile(case: str) -> None:
        with process.channel() as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            attack.started.wait(timeout=30)
            while not attack.enough.is_set():
                answer = _evaluate(stub, f"runaway.{case}.default", RUNAWAY[case][2])
                with attack.lock:
                    attack.hostile_answers.append(answer.degraded and bool(answer.error.code))

    def bystander() -> None:
        facts = {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001}
        with process.channel() as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            while not attack.enough.is_set():
                try:
                    answer = _evaluate(stub, "pharmacist.otc_block", facts)
                    ok = answer.result.struct_value.fields["action"].string_value == "HIDE"
                except grpc.RpcError:
                    ok = False
                with attack.lock:
                    attack.bystander_answers.append(ok)
                    if len(attack.bystander_answers) >= BYSTANDER_CALLS:
                        attack.enough.set()

    attackers = [threading.Thread(target=hostile, args=(case,)) for case in cases]
    for thread in attackers:
        thread.start()
    attack.started.wait(timeout=30)  # every hostile thread is about to send its first call
    watcher = threading.Thread(target=bystander)
    watcher.start()
    answered_in_time = attack.enough.wait(timeout=60)
    attack.enough.set()
    watcher.join(timeout=30)
    for thread in attackers:
        thread.join(timeout=60)

    assert answered_in_time, f"the bystander got only {len(attack.bystander_answers)} answers in 60 s"
    assert attack.bystander_answers == [True] * len(attack.bystander_answers)
    assert len(attack.hostile_answers) >= len(cases) and all(attack.hostile_answers)
    assert proc_status_kib(process.proc.pid, "VmHWM") < PEAK_RSS_BOUND_KIB
