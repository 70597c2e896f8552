"""Judging the targets of issue 7 and writing report.md from results.json (run.py calls both).

python benchmarks/report.py benchmarks/out/results.json    # rewrite report.md from saved results
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

P1, P2 = "processes=1", "processes=2"


@dataclass
class Target:
    name: str
    measured: float | None  # None: not measured in this run
    goal: float
    higher_is_better: bool
    unit: str  # "x" for ratios, "s" for times
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.measured is None or math.isnan(self.measured):
            return None
        return self.measured >= self.goal if self.higher_is_better else self.measured <= self.goal

    def margin(self) -> str:
        if self.met is None:
            return "not measured in this run"
        if self.goal == 0:
            return "" if self.met else f"{self.measured:g}{self.unit} over"
        gap = abs(self.measured - self.goal) / self.goal
        return f"{gap:.0%} to spare" if self.met else f"missed by {gap:.0%}"

    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "n/a"}[self.met]


def judge(results: dict) -> list[Target]:
    rpc = results.get("rpc", {})
    targets: list[Target] = []
    for processes in (P1, P2):
        for name, scenario in rpc.get(processes, {}).items():
            targets += _rpc_targets(name, scenario, processes)
    p1 = rpc.get(P1, {})
    if "batch.100" in p1 and "evaluate.pharmacist" in p1:
        targets.append(
            Target(
                "EvaluateBatch(100) decisions/s / Evaluate decisions/s (best concurrency of each)",
                _ratio(_peak_decisions(p1["batch.100"]), _peak_decisions(p1["evaluate.pharmacist"])),
                50.0,
                True,
                "x",
            )
        )
    cold = results.get("cold", {})
    small = f"{results.get('budget', {}).get('small_bulk', 1_000):,} rule sets"
    if small in cold.get("start_to_serving_s", {}):
        targets.append(Target(f"start to SERVING with {small}", cold["start_to_serving_s"][small], 5.0, False, "s"))
    for key, processes in (("hot_reload", 1), ("hot_reload_2_processes", 2)):
        reload = cold.get(key)
        if not reload:
            continue
        failed = reload["failed_calls"]
        where = f"(processes={processes})"
        targets.append(
            Target(f"hot reload of one rule set visible under load {where}", reload["visible_s"], 2.0, False, "s")
        )
        targets.append(
            Target(
                f"failed calls during the hot reload {where}",
                float(failed),
                0.0,
                False,
                "",
                note=f"of {reload['calls_during_load'] + failed:,} calls",
            )
        )
    return targets


def _rpc_targets(name: str, scenario: dict, processes: str) -> list[Target]:
    """p50 and throughput at 64 in flight against the floor measured alongside (issue 7's RPC targets)."""
    floor = scenario.get("floor_run", {})
    found = []
    if name.startswith("evaluate.") or name == "route.1-table":
        if "sequential" in scenario:
            found.append(Target(f"{name} p50 / floor p50 ({processes})", _p50_ratio(scenario, floor), 1.15, False, "x"))
        found.append(
            Target(
                f"{name} calls/s at 64 in flight / floor ({processes})",
                _calls_ratio(scenario, floor, "64"),
                0.85,
                True,
                "x",
            )
        )
    elif name.startswith("route.") and name.endswith("-tables"):
        found.append(
            Target(
                f"{name} calls/s at 64 in flight / floor ({processes})",
                _calls_ratio(scenario, floor, "64"),
                0.7,
                True,
                "x",
            )
        )
    return found


def _p50_ratio(scenario: dict, floor: dict) -> float | None:
    if "sequential" not in scenario or "sequential" not in floor:
        return None
    return _ratio(scenario["sequential"]["latency_us"]["p50"], floor["sequential"]["latency_us"]["p50"])


def _calls_ratio(scenario: dict, floor: dict, in_flight: str) -> float | None:
    mine, theirs = scenario["concurrent"].get(in_flight), floor.get("concurrent", {}).get(in_flight)
    return _ratio(mine["calls_per_s"], theirs["calls_per_s"]) if mine and theirs else None


def _peak_decisions(scenario: dict) -> float:
    return max(run["calls_per_s"] for run in scenario["concurrent"].values()) * scenario["decisions_per_call"]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# ----------------------------------------------------------------------------------------------------- markdown


def markdown(results: dict, plot_prefix: str = "") -> str:
    """The report; plot_prefix is the plots' folder relative to where the markdown file is written."""
    lines = [
        "# Verdict benchmark report",
        "",
        f"Command: `{results['command']}`, started {results['started']}, took {results.get('duration_s', 0):.0f} s.",
        "",
        _machine(results["machine"]),
        "",
        "Ratios compare Verdict with the echo floor (benchmarks/echo_server.py: the same grpcio threaded server, "
        "16 threads, the same options, returning its Struct request) measured in the same run. benchmarks/README.md "
        "explains every number.",
        "",
        "## Targets (issue 7)",
        "",
        "| Target | Measured | Goal | Result | Margin |",
        "|---|---|---|---|---|",
    ]
    for target in judge(results):
        measured = "n/a" if target.met is None else f"{target.measured:.2f}{target.unit}"
        goal = f"{'≥' if target.higher_is_better else '≤'} {target.goal:g}{target.unit}"
        note = f" ({target.note})" if target.note else ""
        lines.append(f"| {target.name} | {measured} | {goal} | {target.verdict()} | {target.margin()}{note} |")
    lines += _calibration(results)
    for processes, found in results.get("rpc", {}).items():
        lines += _latency_table(processes, found) + _throughput_table(processes, found)
    lines += (
        _drift(results)
        + _batch_table(results)
        + _cold(results)
        + _memory(results)
        + _answers(results)
        + _in_process(results)
        + _replicas(results)
        + _hostile()
    )
    lines += _plots(results, plot_prefix)
    return "\n".join(lines) + "\n"


def _replicas(results: dict) -> list[str]:
    found = results.get("replicas")
    if not found:
        return []
    if "text" not in found:
        return ["", "## Replicas on one PostgreSQL", "", f"failed: {found.get('errors', '')}"]
    return [
        "",
        "## Replicas on one PostgreSQL (issue 12)",
        "",
        f"`{found['command']}`",
        "",
        "```",
        found["text"],
        "```",
    ]


def _hostile() -> list[str]:
    """The last hostile-load run (bench_hostile.py --publish keeps it in results/hostile.md), repeated here."""
    path = Path(__file__).resolve().parent / "results" / "hostile.md"
    return ["", *path.read_text().rstrip("\n").splitlines()] if path.exists() else []


def _machine(machine: dict) -> str:
    dirty = " (with uncommitted changes)" if machine.get("dirty") else ""
    return (
        f"Machine: {machine['nproc']} CPUs, {machine['cpu']}; Python {machine['python']}, grpcio {machine['grpcio']}, "
        f"protobuf {machine['protobuf']}; {machine['os']}; commit {machine['commit']}{dirty}. Load average "
        f"(1, 5, 15 min) {machine.get('load_average_at_start', '?')} at the start, "
        f"{machine.get('load_average_at_end', '?')} at the end (the machine is shared)."
    )


def _latency_table(processes: str, found: dict) -> list[str]:
    rows = [name for name in found if "sequential" in found[name]]
    if not rows:
        return []
    lines = [
        "",
        f"## Latency, sequential calls from one client ({processes})",
        "",
        "Each row alternates with its floor (the echo server, same payload) in the same measurement.",
        "",
        "| Scenario | p50 µs | p90 µs | p99 µs | p99.9 µs | floor p50 µs | p50 / floor | server CPU µs/call "
        "| CPU / floor | calls |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in rows:
        run, floor = found[name]["sequential"], found[name]["floor_run"]["sequential"]
        latency = run["latency_us"]
        lines.append(
            f"| {name} | {latency['p50']:.0f} | {latency['p90']:.0f} | {latency['p99']:.0f} | {latency['p99.9']:.0f} "
            f"| {floor['latency_us']['p50']:.0f} | {_fmt_ratio(latency['p50'], floor['latency_us']['p50'])} "
            f"| {_fmt(run['server_cpu_us_per_call'])} "
            f"| {_fmt_ratio(run['server_cpu_us_per_call'], floor['server_cpu_us_per_call'])} | {run['calls']:,} |"
        )
    return lines


def _throughput_table(processes: str, found: dict) -> list[str]:
    levels = sorted({level for run in found.values() for level in run.get("concurrent", {})}, key=int)
    if not levels:
        return []
    lines = [
        "",
        f"## Throughput under concurrent load from a separate client process ({processes})",
        "",
        "Each cell: the scenario's calls/s / its floor's calls/s = ratio; the scenario's p50 / p99 latency under "
        "that load.",
        "",
        "| Scenario | " + " | ".join(f"{level} in flight" for level in levels) + " | server CPU µs/call at "
        f"{levels[-1]} (floor) | errors (floor errors) |",
        "|---|" + "---|" * (len(levels) + 2),
    ]
    for name, scenario in found.items():
        runs, floor_runs = scenario["concurrent"], scenario["floor_run"]["concurrent"]
        cells = []
        for level in levels:
            run, floor = runs.get(level), floor_runs.get(level)
            if run is None or floor is None:
                cells.append("")
                continue
            latency = run["latency_us"]
            cells.append(
                f"{run['calls_per_s']:,.0f} / {floor['calls_per_s']:,.0f} = "
                f"{_fmt_ratio(run['calls_per_s'], floor['calls_per_s'])}; "
                f"{latency['p50'] / 1e3:.1f} / {latency['p99'] / 1e3:.1f} ms"
            )
        top, top_floor = runs.get(levels[-1], {}), floor_runs.get(levels[-1], {})
        cpu = f"{_fmt(top.get('server_cpu_us_per_call'))} ({_fmt(top_floor.get('server_cpu_us_per_call'))})"
        lines.append(
            f"| {name} | {' | '.join(cells)} | {cpu} | {_errors(runs.values())} ({_errors(floor_runs.values())}) |"
        )
    return lines


def _errors(runs) -> str:
    total: dict[str, int] = {}
    for run in runs:
        for code, count in run["errors"].items():
            total[code] = total.get(code, 0) + count
    return ", ".join(f"{code} {count}" for code, count in total.items()) or "0"


def _calibration(results: dict) -> list[str]:
    scenario = results.get("rpc", {}).get(P1, {}).get("calibration.echo-vs-echo")
    if not scenario:
        return []
    floor = scenario["floor_run"]
    ratios = [
        f"p50 {_fmt_ratio(scenario['sequential']['latency_us']['p50'], floor['sequential']['latency_us']['p50'])}"
    ]
    for level, run in scenario["concurrent"].items():
        ratios.append(f"{level} in flight {_fmt_ratio(run['calls_per_s'], floor['concurrent'][level]['calls_per_s'])}")
    return [
        "",
        "## Calibration (A/A)",
        "",
        "A second echo server measured exactly like a Verdict scenario against the floor. Every ratio should be 1.00; "
        f"this run measured {', '.join(ratios)}. Their distance from 1.00 is the resolution of the other ratios of "
        "this run: a target missed or met by less than that is a tie.",
    ]


def _drift(results: dict) -> list[str]:
    """How much the same floor moved between the measurements of one run: the noise the ratios sit in."""
    lines = []
    for processes, found in results.get("rpc", {}).items():
        by_floor: dict[str, list[float]] = {}
        for scenario in found.values():
            top = scenario["floor_run"]["concurrent"].get("64")
            if top:
                by_floor.setdefault(scenario["floor"], []).append(top["calls_per_s"])
        for floor, values in by_floor.items():
            if len(values) > 1:
                low, high = min(values), max(values)
                lines.append(
                    f"- {floor} at 64 in flight ({processes}), over its {len(values)} pairings: "
                    f"{low:,.0f}–{high:,.0f} calls/s (spread {(high - low) / high:.0%})."
                )
    if not lines:
        return []
    return [
        "",
        "## Noise",
        "",
        "The same floor measured at different times of this run (each paired with another scenario). Ratios are "
        "taken within a pair, so drift between pairs cancels; the spread shows how noisy the machine was.",
        "",
        *lines,
    ]


def _batch_table(results: dict) -> list[str]:
    found = results.get("rpc", {}).get(P1, {})
    rows = [name for name in ("evaluate.pharmacist", "batch.1", "batch.10", "batch.100") if name in found]
    if not rows:
        return []
    lines = [
        "",
        "## Decisions per second (pharmacist rule set, processes=1, best concurrency of each)",
        "",
        "| Call | decisions/call | decisions/s | / single Evaluate |",
        "|---|---|---|---|",
    ]
    single = _peak_decisions(found["evaluate.pharmacist"]) if "evaluate.pharmacist" in found else None
    for name in rows:
        peak = _peak_decisions(found[name])
        lines.append(f"| {name} | {found[name]['decisions_per_call']} | {peak:,.0f} | {_fmt_ratio(peak, single)} |")
    return lines


def _cold(results: dict) -> list[str]:
    cold = results.get("cold")
    if not cold:
        return []
    lines = ["", "## Cold paths", ""]
    compile_ms = cold.get("compile_ms")
    if compile_ms:
        lines.append(
            f"- Compile one rule set (5 rules, constants, a function; parse + compile in the benchmark's process): "
            f"mean {compile_ms['mean']:.2f} ms, p50 {compile_ms['p50']:.2f} ms, p99 {compile_ms['p99']:.2f} ms "
            f"over {compile_ms['count']:,}."
        )
    put_ms = cold.get("put_document_ms")
    if put_ms:
        lines.append(
            f"- AdminService.PutDocument of one such rule set (validate, compile, durable SQLite write; "
            f"{put_ms['count']:,} calls one at a time into a store of {results['budget']['small_bulk']:,} rule sets): "
            f"mean {put_ms['mean']:.1f} ms, p50 {put_ms['p50']:.1f} ms, p99 {put_ms['p99']:.1f} ms."
        )
    for what, seconds in cold.get("start_to_serving_s", {}).items():
        cpu = cold.get("start_cpu_s", {}).get(what)
        cpu_text = f" ({cpu:.2f} s of CPU time in the server)" if cpu is not None else ""
        lines.append(
            f"- Start to SERVING with {what} in the store (process start, imports, load and compile, health "
            f"SERVING): {seconds:.2f} s{cpu_text}."
        )
    for key in ("hot_reload", "hot_reload_2_processes"):
        reload = cold.get(key)
        if not reload:
            continue
        visible = "never (30 s)" if reload["visible_s"] is None else f"{reload['visible_s']:.2f} s"
        lines.append(
            f"- Hot reload of one changed rule set under 16 calls in flight, processes={reload['processes']}: "
            f"PutDocument {reload['put_s'] * 1e3:.0f} ms; every worker ({reload['workers_seen']} seen) answers with "
            f"the new version {visible} after the write began; {reload['failed_calls']} failed calls of "
            f"{reload['calls_during_load'] + reload['failed_calls']:,} (p99 under load "
            f"{reload['load_p99_us'] / 1e3:.1f} ms)."
        )
    return lines


def _memory(results: dict) -> list[str]:
    rss = results.get("rss_kib")
    if not rss:
        return []
    lines = ["", "## Memory (VmRSS of the serving process)", "", "| Store holds | RSS MiB |", "|---|---|"]
    lines += [f"| {what} | {kib / 1024:.0f} |" for what, kib in rss.items()]
    return lines


def _answers(results: dict) -> list[str]:
    answers = results.get("answers")
    if not answers:
        return []
    lines = ["", "## Answers checked before timing", ""]
    lines += [f"- {name}: `{text}`" for name, text in answers.items()]
    return lines


def _in_process(results: dict) -> list[str]:
    found = results.get("in_process")
    if not found:
        return []
    lines = ["", "## In-process comparisons (same run)", ""]
    for script, outcome in found.items():
        if outcome.get("missing"):
            lines.append(f"- {script}: not present in this checkout.")
            continue
        status = "" if outcome["exit_code"] == 0 else f" (exit {outcome['exit_code']})"
        shown = outcome["output"] or outcome["errors"] or json.dumps(outcome.get("result"), indent=1)
        lines += ["", f"`{outcome['command']}`{status}", "", "```", shown, "```"]
    return lines


def _plots(results: dict, prefix: str) -> list[str]:
    plots = results.get("plots")
    if not plots:
        return []
    return ["", "## Plots", ""] + [f"![{Path(path).stem}]({prefix}{Path(path).name})" for path in plots]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _fmt_ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}x"


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "out" / "results.json")
    results = json.loads(path.read_text())
    (path.parent / "report.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
