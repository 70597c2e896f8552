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
        found = rpc.get(processes, {})
        for name in ("evaluate.pharmacist", "evaluate.first50", "evaluate.collect", "route.1-table"):
            if name not in found:
                continue
            floor = found[name]["floor"]
            if processes == P1:
                targets.append(
                    Target(f"{name} p50 / floor p50", _ratio(_p50(found, name), _p50(found, floor)), 1.15, False, "x")
                )
            targets.append(
                Target(
                    f"{name} calls/s at 64 in flight / floor ({processes})",
                    _ratio(_calls_per_s(found, name, "64"), _calls_per_s(found, floor, "64")),
                    0.85,
                    True,
                    "x",
                )
            )
        for name in found:
            if name.startswith("route.") and name.endswith("-tables"):
                targets.append(
                    Target(
                        f"{name} calls/s at 64 in flight / floor ({processes})",
                        _ratio(_calls_per_s(found, name, "64"), _calls_per_s(found, found[name]["floor"], "64")),
                        0.7,
                        True,
                        "x",
                    )
                )
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
    starts = cold.get("start_to_serving_s", {})
    for count, seconds in starts.items():
        if int(count) <= 1_000:
            targets.append(Target(f"start to SERVING with {int(count):,} rule sets", seconds, 5.0, False, "s"))
    reload = cold.get("hot_reload")
    if reload:
        failed = reload["failed_calls"]
        targets.append(
            Target(
                "hot reload of one rule set visible under load",
                reload["visible_s"],
                2.0,
                False,
                "s",
                note=f"{failed} failed calls of {reload['calls_during_load'] + failed}",
            )
        )
        targets.append(Target("failed calls during the hot reload", float(failed), 0.0, False, " calls"))
    return targets


def _p50(found: dict, name: str) -> float | None:
    return found.get(name, {}).get("sequential", {}).get("latency_us", {}).get("p50")


def _calls_per_s(found: dict, name: str, in_flight: str) -> float | None:
    return found.get(name, {}).get("concurrent", {}).get(in_flight, {}).get("calls_per_s")


def _peak_decisions(scenario: dict) -> float:
    return max(run["calls_per_s"] for run in scenario["concurrent"].values()) * scenario["decisions_per_call"]


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# ----------------------------------------------------------------------------------------------------- markdown


def markdown(results: dict) -> str:
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
    for target in results.get("targets", []):
        target = target if isinstance(target, Target) else Target(**target)
        measured = "n/a" if target.met is None else f"{target.measured:.2f}{target.unit}"
        goal = f"{'≥' if target.higher_is_better else '≤'} {target.goal:g}{target.unit}"
        note = f" ({target.note})" if target.note else ""
        lines.append(f"| {target.name} | {measured} | {goal} | {target.verdict()} | {target.margin()}{note} |")
    for processes, found in results.get("rpc", {}).items():
        lines += _latency_table(processes, found) + _throughput_table(processes, found)
    lines += _batch_table(results) + _cold(results) + _memory(results) + _answers(results) + _in_process(results)
    lines += _plots(results)
    return "\n".join(lines) + "\n"


def _machine(machine: dict) -> str:
    dirty = " (with uncommitted changes)" if machine.get("dirty") else ""
    return (
        f"Machine: {machine['nproc']} CPUs, {machine['cpu']}; Python {machine['python']}, grpcio {machine['grpcio']}, "
        f"protobuf {machine['protobuf']}; {machine['os']}; commit {machine['commit']}{dirty}."
    )


def _latency_table(processes: str, found: dict) -> list[str]:
    rows = [name for name in found if "sequential" in found[name]]
    if not rows:
        return []
    lines = [
        "",
        f"## Latency, sequential calls from one client ({processes})",
        "",
        "| Scenario | p50 µs | p90 µs | p99 µs | p99.9 µs | p50 / floor | server CPU µs/call | CPU / floor | calls |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in rows:
        run = found[name]["sequential"]
        latency = run["latency_us"]
        floor = found.get(found[name]["floor"], {}).get("sequential")
        ratio = _fmt_ratio(latency["p50"], floor["latency_us"]["p50"] if floor else None)
        cpu_ratio = _fmt_ratio(run["server_cpu_us_per_call"], floor["server_cpu_us_per_call"] if floor else None)
        lines.append(
            f"| {name} | {latency['p50']:.0f} | {latency['p90']:.0f} | {latency['p99']:.0f} | {latency['p99.9']:.0f} "
            f"| {ratio} | {_fmt(run['server_cpu_us_per_call'])} | {cpu_ratio} | {run['calls']:,} |"
        )
    return lines


def _throughput_table(processes: str, found: dict) -> list[str]:
    levels = sorted({level for run in found.values() for level in run.get("concurrent", {})}, key=int)
    if not levels:
        return []
    header = " | ".join(f"{level} in flight: calls/s (p50 / p99 ms)" for level in levels)
    lines = [
        "",
        f"## Throughput under concurrent load from a separate client process ({processes})",
        "",
        f"| Scenario | {header} | at {levels[-1]}: / floor | server CPU µs/call at {levels[-1]} | errors |",
        "|---|" + "---|" * (len(levels) + 3),
    ]
    for name, scenario in found.items():
        runs = scenario["concurrent"]
        cells = []
        for level in levels:
            run = runs.get(level)
            if run is None:
                cells.append("")
                continue
            latency = run["latency_us"]
            cells.append(f"{run['calls_per_s']:,.0f} ({latency['p50'] / 1e3:.1f} / {latency['p99'] / 1e3:.1f})")
        top = runs.get(levels[-1], {})
        floor = found.get(scenario["floor"], {}).get("concurrent", {}).get(levels[-1])
        ratio = _fmt_ratio(top.get("calls_per_s"), floor["calls_per_s"] if floor else None)
        errors = {}
        for run in runs.values():
            for code, count in run["errors"].items():
                errors[code] = errors.get(code, 0) + count
        error_text = ", ".join(f"{code} {count}" for code, count in errors.items()) or "0"
        lines.append(
            f"| {name} | {' | '.join(cells)} | {ratio} | {_fmt(top.get('server_cpu_us_per_call'))} | {error_text} |"
        )
    return lines


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
            f"- Compile one rule set (5 rules, constants, a function; parse + compile in-process): "
            f"mean {compile_ms['mean']:.2f} ms, p50 {compile_ms['p50']:.2f} ms, p99 {compile_ms['p99']:.2f} ms "
            f"over {compile_ms['count']:,}."
        )
    put_ms = cold.get("put_document_ms")
    if put_ms:
        lines.append(
            f"- AdminService.PutDocument of one such rule set (validate, compile, durable SQLite write), 4 writers: "
            f"mean {put_ms['mean']:.1f} ms, p50 {put_ms['p50']:.1f} ms, p99 {put_ms['p99']:.1f} ms."
        )
    for count, seconds in cold.get("start_to_serving_s", {}).items():
        lines.append(
            f"- Start to SERVING with {int(count):,} rule sets (process start, imports, load and compile, health "
            f"SERVING): {seconds:.2f} s."
        )
    reload = cold.get("hot_reload")
    if reload:
        lines.append(
            f"- Hot reload of one changed rule set under 16 calls in flight: PutDocument {reload['put_s'] * 1e3:.0f} "
            f"ms, visible to Evaluate {reload['visible_s']:.2f} s after the write began; {reload['failed_calls']} "
            f"failed calls of {reload['calls_during_load'] + reload['failed_calls']:,} "
            f"(p99 under load {reload['load_p99_us'] / 1e3:.1f} ms)."
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
        lines += ["", f"`{outcome['command']}`{status}", "", "```", outcome["output"] or outcome["errors"], "```"]
    return lines


def _plots(results: dict) -> list[str]:
    plots = results.get("plots")
    if not plots:
        return []
    return ["", "## Plots", ""] + [f"![{Path(path).stem}]({Path(path).name})" for path in plots]


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
