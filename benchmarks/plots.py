"""The report's PNG plots, drawn from results.json with matplotlib (the `bench` extra).

python benchmarks/plots.py benchmarks/out/results.json     # redraw from saved results
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server
import matplotlib.pyplot as plt  # noqa: E402

RPC_GROUPS = {"Evaluate": "evaluate.", "EvaluateBatch": "batch.", "Route": "route."}


def draw(results: dict, out: Path) -> list[str]:
    """Writes every plot the results allow; returns their paths."""
    written = []
    p1 = results.get("rpc", {}).get("processes=1", {})
    if any("sequential" in run for run in p1.values()):
        written.append(latency_distribution(p1, out / "latency_sequential.png"))
    if results.get("rpc"):
        written.append(throughput(results["rpc"], out / "throughput_concurrency.png"))
    return [str(path) for path in written]


def latency_distribution(found: dict, path: Path) -> Path:
    """One panel per RPC: the cumulative distribution of sequential call latency; its floor drawn dashed."""
    figure, axes = plt.subplots(1, len(RPC_GROUPS), figsize=(5 * len(RPC_GROUPS), 4), sharey=True)
    for axis, (rpc, prefix) in zip(axes, RPC_GROUPS.items(), strict=True):
        for name, run, is_floor in _with_floors(found, prefix, "sequential"):
            samples = run["samples_us"]
            if samples:
                fractions = [(i + 1) / len(samples) for i in range(len(samples))]
                axis.plot(samples, fractions, "--" if is_floor else "-", label=name)
        axis.set_xscale("log")
        axis.set_title(f"{rpc}: sequential latency")
        axis.set_xlabel("latency (µs, log scale)")
        axis.grid(True, which="both", alpha=0.3)
        if axis.lines:
            axis.legend(fontsize="small")
    axes[0].set_ylabel("fraction of calls ≤ latency")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def throughput(rpc: dict, path: Path) -> Path:
    """Per process count: calls/s against calls in flight (floors dashed), and below it each scenario's calls/s as a
    fraction of the floor it alternated with (the line at 0.85 is issue 7's target for Evaluate and Route)."""
    figure, axes = plt.subplots(2, len(rpc), figsize=(6.5 * len(rpc), 9), squeeze=False)
    for column, (processes, found) in enumerate(rpc.items()):
        absolute, relative = axes[0][column], axes[1][column]
        measured = {name: scenario for name, scenario in found.items() if not name.startswith("calibration.")}
        for name, runs, is_floor in _with_floors(measured, "", "concurrent"):
            levels = sorted(runs, key=int)
            calls = [runs[level]["calls_per_s"] for level in levels]
            absolute.plot([int(level) for level in levels], calls, "--o" if is_floor else "-o", label=name)
        for name, scenario in found.items():
            floor_runs = scenario["floor_run"]["concurrent"]
            levels = sorted((level for level in scenario["concurrent"] if level in floor_runs), key=int)
            ratios = [scenario["concurrent"][lv]["calls_per_s"] / floor_runs[lv]["calls_per_s"] for lv in levels]
            style = ":o" if name.startswith("calibration.") else "-o"
            relative.plot([int(level) for level in levels], ratios, style, label=name)
        relative.axhline(0.85, color="grey", linewidth=1)
        relative.axhline(1.0, color="black", linewidth=0.5)
        absolute.set_title(f"throughput ({processes})")
        absolute.set_ylabel("calls/s")
        relative.set_title(f"throughput / its floor ({processes})")
        relative.set_ylabel("calls/s ÷ floor calls/s")
        for axis in (absolute, relative):
            axis.set_xscale("log", base=2)
            axis.set_xlabel("calls in flight")
            axis.grid(True, alpha=0.3)
            if axis.lines:
                axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _with_floors(found: dict, prefix: str, part: str):
    """(label, measurement, is_floor) for each scenario with `part`, each floor once (from its first pairing)."""
    seen_floors = set()
    for name, scenario in found.items():
        if not name.startswith(prefix) or part not in scenario:
            continue
        floor = scenario["floor"]
        if floor not in seen_floors and part in scenario["floor_run"]:
            seen_floors.add(floor)
            yield f"{floor} (with {name})", scenario["floor_run"][part], True
        yield name, scenario[part], False


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "out" / "results.json")
    print("\n".join(draw(json.loads(path.read_text()), path.parent)))


if __name__ == "__main__":
    main()
