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
    """Calls per second against calls in flight, one panel per process count; floors dashed."""
    figure, axes = plt.subplots(1, len(rpc), figsize=(6 * len(rpc), 4.5), squeeze=False)
    for axis, (processes, found) in zip(axes[0], rpc.items(), strict=True):
        for name, runs, is_floor in _with_floors(found, "", "concurrent"):
            levels = sorted(runs, key=int)
            calls = [runs[level]["calls_per_s"] for level in levels]
            axis.plot([int(level) for level in levels], calls, "--o" if is_floor else "-o", label=name)
        axis.set_xscale("log", base=2)
        axis.set_title(f"throughput ({processes})")
        axis.set_xlabel("calls in flight")
        axis.set_ylabel("calls/s")
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
