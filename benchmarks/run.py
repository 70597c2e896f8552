"""Verdict's benchmark suite: one command, one run, every number beside the floor it is judged against.

    .venv/bin/python benchmarks/run.py [--quick] [--out benchmarks/out]

Writes OUT/results.json (every number), OUT/report.md (the targets of issue 7, met or missed) and OUT/*.png (latency
distribution per RPC; throughput against concurrency). benchmarks/README.md says what each number means.

Every server and the load generator are separate processes; the echo floor (echo_server.py) is measured in the same
run, on the same machine, right before Verdict, so the ratios hold even where absolute times drift.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import documents
import grpc
import loadgen
import servers
from echo_server import METHOD as ECHO_METHOD
from progress import Progress, note, ticking

from verdict import Client
from verdict.v1 import decision_pb2

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
EVALUATE = "/verdict.v1.DecisionService/Evaluate"
EVALUATE_BATCH = "/verdict.v1.DecisionService/EvaluateBatch"
ROUTE = "/verdict.v1.DecisionService/Route"
PEER_SCRIPTS = ("bench_ql.py", "bench_routing.py", "bench_facts.py", "bench_forward.py")  # own floors, owned elsewhere
REPLICAS_SCRIPT = "bench_replicas.py"  # a fleet on one PostgreSQL (issue 12)


@dataclass(frozen=True)
class Budget:
    """How long each part runs. --quick keeps the whole suite under 2 minutes; the full run has steadier tails."""

    sequential_calls: int  # per server
    warmup_calls: int
    duration_s: float  # per server and concurrency level
    warmup_s: float  # per server, before its first round
    rounds: int  # the floor and Verdict alternate this many times within one measurement
    in_flight: tuple[int, ...]
    small_bulk: int  # rule sets for start-to-SERVING, hot reload and RSS
    samples: int  # of those, how many are compiled in-process, and how many PutDocument calls are timed
    large_bulk: int  # rule sets for RSS and start time (0: skipped)
    route_tables: int
    reload_load_s: float  # how long the load runs around a hot reload
    quick: bool


# --quick skips the second memory point (10,000 rule sets): starting a server on them takes most of a minute.
QUICK = Budget(500, 100, 0.5, 0.2, 6, (1, 16, 64), 1_000, 30, 0, 10_000, 4.0, True)
FULL = Budget(20_000, 500, 6.0, 0.5, 12, (1, 16, 64), 1_000, 1_000, 10_000, 10_000, 8.0, False)


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    request: bytes
    floor: str  # the floor scenario its ratios use ("" for a floor)
    decisions_per_call: int = 1


FLOORS = {
    "floor.facts": Scenario("floor.facts", ECHO_METHOD, documents.echo_request(documents.FACTS), ""),
    "floor.message": Scenario("floor.message", ECHO_METHOD, documents.echo_request(documents.MESSAGE), ""),
}


def verdict_scenarios() -> list[Scenario]:
    evaluate = [
        Scenario(f"evaluate.{label}", EVALUATE, documents.evaluate_request(name), "floor.facts")
        for label, name in (
            ("pharmacist", documents.PHARMACIST),
            ("first50", documents.FIRST_50),
            ("collect", documents.COLLECT),
        )
    ]
    batches = [
        Scenario(
            f"batch.{size}", EVALUATE_BATCH, documents.batch_request(documents.PHARMACIST, size), "floor.facts", size
        )
        for size in (1, 10, 100)
    ]
    route = [Scenario("route.1-table", ROUTE, documents.route_request(), "floor.message")]
    return evaluate + batches + route


# ----------------------------------------------------------------------------------------------------- measuring


def measure(
    client: loadgen.LoadClient, spec: loadgen.Spec, measured: list[servers.ServerProcess], label: str
) -> list[dict]:
    """One load run over every arm, with each server's CPU time per call (steadier than wall time when shared)."""
    cpu_before = [server.cpu_s() for server in measured]
    with ticking(label, loadgen.expected_seconds(spec)):
        found = client.run(spec)
    for result, server, before in zip(found, measured, cpu_before, strict=True):
        calls = result["calls"] + sum(result["errors"].values()) + result["warmup_calls"]
        result["server_cpu_us_per_call"] = (server.cpu_s() - before) / calls * 1e6 if calls else None
    return found


def measure_scenario(
    client: loadgen.LoadClient,
    server: servers.ServerProcess,
    scenario: Scenario,
    echo: servers.ServerProcess,
    budget: Budget,
    prefix: str,
    sequential: bool = True,
) -> dict:
    """The scenario and its floor, alternating in rounds: sequential latency, then each concurrency level."""
    floor = FLOORS[scenario.floor]
    arms = [
        loadgen.Arm.of(server.target, scenario.method, scenario.request),
        loadgen.Arm.of(echo.target, floor.method, floor.request),
    ]
    base = {
        "arms": arms,
        "duration_s": budget.duration_s,
        "warmup_s": budget.warmup_s,
        "calls": budget.sequential_calls,
        "warmup_calls": budget.warmup_calls,
        "rounds": budget.rounds,
    }
    found: dict = {"decisions_per_call": scenario.decisions_per_call, "floor": floor.name, "concurrent": {}}
    floor_run: dict = {"concurrent": {}}
    pair = [server, echo]
    if sequential:
        spec = loadgen.Spec(**base, mode="sequential")
        found["sequential"], floor_run["sequential"] = measure(
            client, spec, pair, f"{prefix} {scenario.name} sequential"
        )
    for in_flight in budget.in_flight:
        spec = loadgen.Spec(**base, mode="concurrent", in_flight=in_flight)
        label = f"{prefix} {scenario.name} {in_flight} in flight"
        found["concurrent"][str(in_flight)], floor_run["concurrent"][str(in_flight)] = measure(
            client, spec, pair, label
        )
    found["floor_run"] = floor_run
    return found


# ------------------------------------------------------------------------------------------------------ loading


def put_documents(server: servers.ServerProcess, texts: list[str], label: str, threads: int = 4) -> list[float]:
    """PutDocument every text through the AdminService; returns each call's time in ms (validate, compile, store)."""
    times: list[float] = []
    bar = Progress(label, len(texts), unit="")
    with Client(server.target, token=server.token, timeout=60) as admin:

        def put(text: str) -> None:
            started = time.perf_counter()
            admin.put_document(text, author="benchmarks")
            times.append((time.perf_counter() - started) * 1e3)
            bar.update(len(times))

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, texts))
    bar.done()
    return times


def wait_for_reload(server: servers.ServerProcess, check: Callable[[Client], bool], timeout_s: float = 30.0) -> float:
    """Seconds until check(client) holds: the server's change poller has swapped in the new snapshot."""
    started = time.perf_counter()
    with Client(server.target, timeout=5) as client:
        while time.perf_counter() - started < timeout_s:
            if check(client):
                return time.perf_counter() - started
            time.sleep(0.01)
    raise RuntimeError(f"the change was not visible after {timeout_s}s")


def check_answers(server: servers.ServerProcess) -> dict[str, str]:
    """What each Verdict scenario answers, checked once before it is timed: fast wrong answers mean nothing."""
    facts = documents.FACTS
    with Client(server.target, timeout=10) as client:
        found = {
            "evaluate.pharmacist": client.evaluate(documents.PHARMACIST, facts),
            "evaluate.first50": client.evaluate(documents.FIRST_50, facts),
            "evaluate.collect": client.evaluate(documents.COLLECT, facts),
        }
        batch = client.evaluate_batch(documents.PHARMACIST, [facts] * 10)
        message = documents.MESSAGE
        routing = client.route(
            message["topic"],
            tags=message["tags"],
            key=message["key"],
            properties=message["properties"],
            body=message["body"],
        )
    problems = {
        "evaluate.pharmacist": found["evaluate.pharmacist"].result != {"action": "HIDE", "reason": "otc"},
        "evaluate.first50": found["evaluate.first50"].matched_rules != ["rule-49"],
        "evaluate.collect": len(found["evaluate.collect"].matched_rules) != 10,
        "batch": len(batch) != 10 or any(b.result != found["evaluate.pharmacist"].result for b in batch),
        "route.1-table": not routing.destinations,
    }
    answers = {name: repr(answer.result)[:120] for name, answer in found.items()}
    answers["route.1-table"] = (
        f"destinations {[d.system for d in routing.destinations]}, skipped {[(s.system, s.reason) for s in routing.skipped]}"
    )
    for name, wrong in problems.items():
        if wrong:
            note(f"WARNING: {name} answered unexpectedly: {answers.get(name, '')}")
    return {name: ("unexpected: " if problems.get(name) else "") + text for name, text in answers.items()}


# ------------------------------------------------------------------------------------------------------ sections


def calibration_section(budget: Budget, work: Path, results: dict) -> None:
    """An A/A test: the floor against a second copy of itself. Its ratios should be 1.00; the distance from 1.00 is
    the resolution of every other ratio in this run."""
    found = results["rpc"].setdefault("processes=1", {})
    with loadgen.LoadClient() as client, servers.start_echo() as echo, servers.start_echo() as other:
        same = Scenario("calibration.echo-vs-echo", ECHO_METHOD, FLOORS["floor.facts"].request, "floor.facts")
        found[same.name] = measure_scenario(client, other, same, echo, budget, "[p1]")


def rpc_section(budget: Budget, work: Path, results: dict) -> None:
    """Verdict, one process, every Evaluate, EvaluateBatch and Route scenario, each paired with the echo floor."""
    found = results["rpc"].setdefault("processes=1", {})
    with (
        loadgen.LoadClient() as client,
        servers.start_echo() as echo,
        servers.start_verdict(work / "main") as verdict,
    ):
        results["rss_kib"]["seeded examples"] = verdict.rss_kib()
        put_documents(verdict, [documents.first_50_rules(), documents.collect_rules()], "load scenario rule sets")
        wait_for_reload(verdict, lambda c: _has_rule_set(c, documents.COLLECT))
        results["answers"] = check_answers(verdict)
        for scenario in verdict_scenarios():
            found[scenario.name] = measure_scenario(client, verdict, scenario, echo, budget, "[p1]")
        results["rss_kib"]["after the RPC scenarios"] = verdict.rss_kib()


def many_tables_section(budget: Budget, work: Path, results: dict) -> None:
    """Route when the store holds route_tables tables besides the seeded one (the topic trie must keep it flat)."""
    found = results["rpc"].setdefault("processes=1", {})
    name = f"route.{budget.route_tables}-tables"
    label = f"{budget.route_tables:,} route tables"
    with contextlib.ExitStack() as stack:
        data = memory_folder(stack, work) / "tables"
        prefill(data, [documents.bulk_route_table(n) for n in range(budget.route_tables)], label)
        client = stack.enter_context(loadgen.LoadClient())
        echo = stack.enter_context(servers.start_echo())
        verdict = stack.enter_context(servers.start_verdict(data, progress=f"start verdict with {label}"))
        cold = results.setdefault("cold", {})
        cold.setdefault("start_to_serving_s", {})[label] = verdict.serving_after_s
        cold.setdefault("start_cpu_s", {})[label] = verdict.serving_cpu_s
        last = budget.route_tables - 1
        if not _routes_to(verdict, documents.bulk_topic(last), documents.bulk_table_name(last)):
            note(f"WARNING: {documents.bulk_topic(last)} is not routed to {documents.bulk_table_name(last)}")
        scenario = Scenario(name, ROUTE, documents.route_request(), "floor.message")
        found[name] = measure_scenario(client, verdict, scenario, echo, budget, "[p1]")
        results["rss_kib"][label] = verdict.rss_kib()


def memory_folder(stack: contextlib.ExitStack, fallback: Path) -> Path:
    """A folder in memory (/dev/shm) when there is one: 10,000 durable writes to a shared disk can take most of
    a minute, and this store is only read. (The rule-set stores stay on disk: PutDocument is timed on them.)"""
    if Path("/dev/shm").is_dir():
        return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="verdict-bench-", dir="/dev/shm")))
    return fallback


def two_processes_section(budget: Budget, work: Path, results: dict) -> None:
    """Evaluate and Route with --processes 2, paired with the floor forked the same way; concurrent load only."""
    found = results["rpc"].setdefault("processes=2", {})
    wanted = {"evaluate.pharmacist", "route.1-table"}
    with (
        loadgen.LoadClient() as client,
        servers.start_echo(processes=2) as echo,
        servers.start_verdict(work / "main", processes=2) as verdict,
    ):
        for scenario in verdict_scenarios():
            if scenario.name in wanted:
                found[scenario.name] = measure_scenario(
                    client, verdict, scenario, echo, budget, "[p2]", sequential=False
                )
        put_documents(verdict, [documents.bulk_rule_set(0)], "load the rule set to change")
        wait_for_reload(verdict, lambda c: _has_rule_set(c, f"{documents.BULK_PREFIX}00000"))
        time.sleep(1.5)  # every worker's poller has picked it up (the hot reload below waits on each anyway)
        results.setdefault("cold", {})["hot_reload_2_processes"] = hot_reload(verdict, budget, processes=2)


def cold_section(budget: Budget, work: Path, results: dict) -> None:
    """Compile time, start to SERVING with many rule sets, PutDocument, a hot reload under load, and memory."""
    cold = results.setdefault("cold", {})
    cold.setdefault("start_to_serving_s", {})
    data = work / "bulk"
    small = [documents.bulk_rule_set(n) for n in range(budget.small_bulk)]
    cold["compile_ms"] = compile_times(small[: budget.samples])
    prefill(data, small, f"{len(small):,} rule sets")
    with servers.start_verdict(data, progress=f"start verdict with {budget.small_bulk:,} rule sets") as verdict:
        cold["start_to_serving_s"][f"{budget.small_bulk:,} rule sets"] = verdict.serving_after_s
        cold.setdefault("start_cpu_s", {})[f"{budget.small_bulk:,} rule sets"] = verdict.serving_cpu_s
        results["rss_kib"][f"{budget.small_bulk:,} rule sets"] = verdict.rss_kib()
        cold["hot_reload"] = hot_reload(verdict, budget)
        writes = [documents.bulk_rule_set(n) for n in range(budget.small_bulk, budget.small_bulk + budget.samples)]
        cold["put_document_ms"] = summary_ms(put_documents(verdict, writes, "PutDocument one at a time", threads=1))
    if budget.large_bulk <= budget.small_bulk + budget.samples:
        return
    large = [documents.bulk_rule_set(n) for n in range(budget.small_bulk + budget.samples, budget.large_bulk)]
    prefill(data, large, f"{budget.large_bulk:,} rule sets")
    with servers.start_verdict(data, progress=f"start verdict with {budget.large_bulk:,} rule sets") as verdict:
        cold["start_to_serving_s"][f"{budget.large_bulk:,} rule sets"] = verdict.serving_after_s
        cold["start_cpu_s"][f"{budget.large_bulk:,} rule sets"] = verdict.serving_cpu_s
        results["rss_kib"][f"{budget.large_bulk:,} rule sets"] = verdict.rss_kib()


def prefill(data_dir: Path, texts: list[str], label: str) -> None:
    """Writes documents straight into a (stopped) server's SQLite store, seeded like a first start.

    The same store.put that PutDocument ends in, without a server: 10,000 documents take seconds instead of the
    minutes of 10,000 validated RPCs. PutDocument itself is timed separately (cold["put_document_ms"]).
    """
    from verdict_server.service.seed import seed_examples
    from verdict_server.service.stores import DB_FILE_NAME
    from verdict_server.store import SqliteStore

    db = data_dir / DB_FILE_NAME
    is_new = not db.exists()
    bar = Progress(f"store {label}", len(texts), unit="")
    with SqliteStore(db) as store:
        if is_new:
            seed_examples(store)
        for number, text in enumerate(texts):
            document = json.loads(text)
            store.put(document["kind"], document["name"], text, author="benchmarks")
            bar.update(number + 1)
    bar.done()


def compile_times(texts: list[str]) -> dict:
    """Parse + compile of each document in this process, as the server's catalog does it on load."""
    from verdict_server import ql
    from verdict_server.service.catalog import compile_document

    engine = ql.Engine(stdlib=True)
    times = []
    bar = Progress("compile rule sets in-process", len(texts), unit="")
    for number, text in enumerate(texts):
        started = time.perf_counter()
        compile_document(text, engine, 1)
        times.append((time.perf_counter() - started) * 1e3)
        bar.update(number + 1)
    bar.done()
    return summary_ms(times)


def hot_reload(verdict: servers.ServerProcess, budget: Budget, processes: int = 1) -> dict:
    """Change one rule set while 16 calls are in flight on it; time until every serving process answers with it.

    With --processes N each worker has its own snapshot: the writing worker reloads at once, the others on their
    next poll of the store, so the time is taken on one connection to each worker.
    """
    name = f"{documents.BULK_PREFIX}00000"
    request = decision_pb2.EvaluateRequest(rule_set=name, facts=documents.struct_of(documents.FACTS))
    spec = loadgen.Spec(
        [loadgen.Arm.of(verdict.target, EVALUATE, request.SerializeToString())],
        in_flight=16,
        duration_s=budget.reload_load_s,
        warmup_s=0.2,
    )
    channels = channels_to_each_worker(verdict.target, processes, request)
    with loadgen.LoadClient() as client, ticking(f"hot reload under load ({processes} process)", spec.duration_s + 0.7):
        client.submit(spec)
        time.sleep(spec.warmup_s + spec.duration_s / 4)
        with Client(verdict.target, token=verdict.token, timeout=30) as admin:
            started = time.perf_counter()
            written = admin.put_document(documents.bulk_rule_set(0, variant=1), author="benchmarks")
            put_s = time.perf_counter() - started
        stale = list(channels)
        while stale and time.perf_counter() - started < 30:
            stale = [channel for channel in stale if _version_on(channel, request) != written.version]
            time.sleep(0.01)
        visible_s = time.perf_counter() - started
        (load,) = client.result()
    for channel in channels:
        channel.close()
    return {
        "processes": processes,
        "workers_seen": len(channels),
        "put_s": put_s,
        "visible_s": visible_s if not stale else None,
        "calls_during_load": load["calls"],
        "failed_calls": sum(load["errors"].values()),
        "errors": load["errors"],
        "load_p99_us": load["latency_us"]["p99"],
    }


def _version_on(channel: grpc.Channel, request: decision_pb2.EvaluateRequest) -> int:
    answer = channel.unary_unary(EVALUATE)(request.SerializeToString(), timeout=5)
    return decision_pb2.EvaluateResponse.FromString(answer).version


def channels_to_each_worker(target: str, processes: int, request: decision_pb2.EvaluateRequest) -> list[grpc.Channel]:
    """One connection per serving process, told apart by the `verdict-worker` header (pid) of their answers."""
    found: dict[str, grpc.Channel] = {}
    for _ in range(8 * processes):
        channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        _, call = channel.unary_unary(EVALUATE).with_call(request.SerializeToString(), timeout=5)
        headers = dict(call.initial_metadata() or ()) | dict(call.trailing_metadata() or ())
        worker = headers.get("verdict-worker", f"unknown-{len(found)}")
        if worker in found or len(found) == processes:
            channel.close()
        else:
            found[worker] = channel
        if len(found) == processes:
            break
    return list(found.values())


def summary_ms(times: list[float]) -> dict:
    ordered = sorted(times)
    return {
        "count": len(ordered),
        "mean": statistics.fmean(ordered),
        "p50": loadgen.percentile(ordered, 50),
        "p99": loadgen.percentile(ordered, 99),
        "max": ordered[-1],
    }


def peers_section(budget: Budget, work: Path, results: dict) -> None:
    """The in-process comparisons (QL engines, routing index, facts conversion), each in its own process.

    A script that exposes `run(quick: bool) -> dict` is called through it (its dict goes into results.json, and its
    "text" entry, if any, into the report); any other is run as a script and its printed ratios are kept.
    """
    found = results.setdefault("in_process", {})
    for script in PEER_SCRIPTS:
        path = BENCH_DIR / script
        if not path.exists():
            found[script] = {"missing": True}
            continue
        source = path.read_text(encoding="utf-8")
        if "def run(" in source:
            call = f"import json, {path.stem}; print(json.dumps({path.stem}.run(quick={budget.quick!r}), default=str))"
            command = [sys.executable, "-c", call]
            shown = f"python -c 'import {path.stem}; {path.stem}.run(quick={budget.quick!r})'  # in benchmarks/"
        else:
            flags = ["--quick"] if budget.quick and "--quick" in source else []
            command = [sys.executable, str(path), *flags]
            shown = shlex.join(["python", f"benchmarks/{script}", *flags])
        with ticking(f"in-process {script}", 20.0 if budget.quick else 60.0):
            done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=BENCH_DIR)
        outcome = {"command": shown, "exit_code": done.returncode, "errors": done.stderr.strip()[-2000:]}
        if done.returncode == 0 and "def run(" in source:
            outcome["result"] = json.loads(done.stdout.strip().splitlines()[-1])
            outcome["output"] = outcome["result"].get("text", "") if isinstance(outcome["result"], dict) else ""
        else:
            outcome["output"] = done.stdout.strip()
        found[script] = outcome


def _has_rule_set(client: Client, name: str) -> bool:
    try:
        client.evaluate(name, documents.FACTS)
    except Exception:  # NOT_FOUND until the poller has swapped in the new snapshot
        return False
    return True


def _routes_to(server: servers.ServerProcess, topic: str, table: str) -> bool:
    with Client(server.target, timeout=10) as client:
        return any(d.table == table for d in client.route(topic, tags=["PAID"], key="k").destinations)


def publish(results: dict, out: Path) -> None:
    """The committed copy of the report: RESULTS.md beside this file, its plots in results/ (out/ is ignored)."""
    import report

    folder = BENCH_DIR / "results"
    folder.mkdir(exist_ok=True)
    published = []
    for plot in results["plots"]:
        target = folder / Path(plot).name
        shutil.copyfile(plot, target)
        published.append(str(target))
    (BENCH_DIR / "RESULTS.md").write_text(report.markdown({**results, "plots": published}, plot_prefix="results/"))
    note(f"published {BENCH_DIR / 'RESULTS.md'}")


# -------------------------------------------------------------------------------------------------------- machine


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import google.protobuf

    return {
        "nproc": os.cpu_count(),
        "cpu": model or platform.processor(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "os": platform.platform(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "load_average_at_start": _load_average(),
    }


def _load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the shared machine was around the run."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO)
    return done.stdout.strip()


# ----------------------------------------------------------------------------------------------------------- main


def replicas_section(budget: Budget, work: Path, results: dict) -> None:
    """bench_replicas.py in its own process (it starts its own PostgreSQL and three replicas)."""
    out = work / "replicas.json"
    command = [
        sys.executable,
        str(BENCH_DIR / REPLICAS_SCRIPT),
        "--json",
        str(out),
        *(["--quick"] if budget.quick else []),
    ]
    with ticking("replicas on one PostgreSQL", 60.0 if budget.quick else 180.0):
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=BENCH_DIR)
    if done.returncode != 0:
        results["replicas"] = {"exit_code": done.returncode, "errors": done.stderr.strip()[-2000:]}
        return
    results["replicas"] = json.loads(out.read_text())


SECTIONS = {
    "calibration": calibration_section,
    "rpc": rpc_section,
    "tables": many_tables_section,
    "processes": two_processes_section,
    "cold": cold_section,
    "peers": peers_section,
    "replicas": replicas_section,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (under 2 minutes) for development")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out", help="where results, report and plots go")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=list(SECTIONS),
        help="run only these parts (development; the report marks targets it could not judge)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also write benchmarks/RESULTS.md and its plots in benchmarks/results/ (the committed latest report)",
    )
    args = parser.parse_args()
    budget = QUICK if args.quick else FULL
    wanted = args.only or list(SECTIONS)
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "command": shlex.join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": machine(),
        "budget": asdict(budget),
        "rpc": {},
        "rss_kib": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="verdict-bench-") as work:
        for name, section in SECTIONS.items():
            if name in wanted:
                section(budget, Path(work), results)
    results["duration_s"] = time.monotonic() - started
    results["machine"]["load_average_at_end"] = _load_average()

    import plots
    import report

    results["targets"] = [asdict(target) for target in report.judge(results)]
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    results["plots"] = plots.draw(results, args.out)
    (args.out / "report.md").write_text(report.markdown(results))
    if args.publish:
        publish(results, args.out)
    note(f"wrote {args.out}/results.json, report.md and {len(results['plots'])} plots in {results['duration_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
