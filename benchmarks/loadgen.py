"""The load generator: a client process that sends one pre-serialized request over and over and times the calls.

    python benchmarks/loadgen.py < specs.jsonl > results.jsonl

It sends raw request bytes and keeps raw response bytes (no protobuf work in the client), so the client costs the
same whichever server it measures; the echo floor and Verdict are driven by the very same code. Two modes:

- sequential: one call at a time from one thread, `calls` timed calls after `warmup_calls`; for latency percentiles.
- concurrent: `in_flight` calls kept in flight with grpc.aio for `duration_s` after `warmup_s`, spread over
  `channels` connections (each its own subchannel, so SO_REUSEPORT can spread them over server processes).

Specs and results are JSON lines (see Spec and summarise()). run.py keeps this running as a separate process with
LoadClient, so the client never shares an interpreter or a GIL with the orchestrator or the servers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import grpc

PERCENTILES = (50.0, 90.0, 99.0, 99.9)
MAX_SAMPLES_RETURNED = 5_000  # enough to draw a distribution; percentiles use every sample


@dataclass
class Spec:
    target: str
    method: str  # full method path, e.g. /verdict.v1.DecisionService/Evaluate
    request_b64: str  # the serialized request message
    mode: str = "concurrent"  # sequential | concurrent
    in_flight: int = 1
    duration_s: float = 3.0
    warmup_s: float = 0.5
    calls: int = 2_000  # sequential mode
    warmup_calls: int = 200  # sequential mode
    channels: int = 8  # concurrent mode: at most this many connections (never more than in_flight)
    timeout_s: float = 10.0
    metadata: list[list[str]] = field(default_factory=list)

    @property
    def request(self) -> bytes:
        return base64.b64decode(self.request_b64)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(
    spec: Spec, latencies_s: list[float], errors: Counter, elapsed_s: float, cpu_s: float, warmup_calls: int
) -> dict:
    ordered = sorted(latencies_s)
    samples = (
        ordered if len(ordered) <= MAX_SAMPLES_RETURNED else random.Random(1).sample(ordered, MAX_SAMPLES_RETURNED)
    )
    return {
        "mode": spec.mode,
        "in_flight": spec.in_flight if spec.mode == "concurrent" else 1,
        "calls": len(ordered),
        "errors": dict(errors),
        "elapsed_s": elapsed_s,
        "calls_per_s": len(ordered) / elapsed_s if elapsed_s > 0 else 0.0,
        "latency_us": {f"p{pct:g}": percentile(ordered, pct) * 1e6 for pct in PERCENTILES}
        | {"mean": (sum(ordered) / len(ordered) * 1e6) if ordered else math.nan},
        "samples_us": sorted(s * 1e6 for s in samples),
        "client_cpu_s": cpu_s,
        "warmup_calls": warmup_calls,  # made before the timed part (the server's CPU time counts them too)
    }


def run_sequential(spec: Spec) -> dict:
    request, metadata = spec.request, [tuple(pair) for pair in spec.metadata] or None
    errors: Counter = Counter()
    latencies: list[float] = []
    with grpc.insecure_channel(spec.target) as channel:
        call = channel.unary_unary(spec.method)
        for _ in range(spec.warmup_calls):
            call(request, timeout=spec.timeout_s, metadata=metadata)
        cpu0, start = time.process_time(), time.perf_counter()
        for _ in range(spec.calls):
            t0 = time.perf_counter()
            try:
                call(request, timeout=spec.timeout_s, metadata=metadata)
            except grpc.RpcError as err:
                errors[err.code().name] += 1
                continue
            latencies.append(time.perf_counter() - t0)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return summarise(spec, latencies, errors, elapsed, cpu, spec.warmup_calls)


async def _concurrent(spec: Spec) -> dict:
    request, metadata = spec.request, tuple(tuple(pair) for pair in spec.metadata) or None
    count = max(1, min(spec.channels, spec.in_flight))
    # A local subchannel pool per channel: otherwise grpc shares one connection between equal channels.
    channels = [
        grpc.aio.insecure_channel(spec.target, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(count)
    ]
    calls = [channel.unary_unary(spec.method) for channel in channels]
    errors: Counter = Counter()
    latencies: list[float] = []
    recording = False
    warmup_calls = 0

    async def worker(call, stop_at: float) -> None:
        nonlocal warmup_calls
        while (t0 := time.perf_counter()) < stop_at:
            warmup_calls += not recording
            try:
                await call(request, timeout=spec.timeout_s, metadata=metadata)
            except grpc.aio.AioRpcError as err:
                if recording:
                    errors[err.code().name] += 1
                continue
            if recording:
                latencies.append(time.perf_counter() - t0)

    try:
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        await asyncio.gather(
            *(worker(calls[i % count], time.perf_counter() + spec.warmup_s) for i in range(spec.in_flight))
        )
        recording = True
        cpu0, start = time.process_time(), time.perf_counter()
        stop_at = start + spec.duration_s
        await asyncio.gather(*(worker(calls[i % count], stop_at) for i in range(spec.in_flight)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu0
    finally:
        await asyncio.gather(*(channel.close() for channel in channels))
    return summarise(spec, latencies, errors, elapsed, cpu, warmup_calls)


def run(spec: Spec) -> dict:
    if spec.mode == "sequential":
        return run_sequential(spec)
    if spec.mode == "concurrent":
        return asyncio.run(_concurrent(spec))
    raise ValueError(f"unknown mode {spec.mode!r}")


class LoadClient:
    """A client process kept alive across measurements (starting one costs more than a short measurement).

    run() sends one spec and waits for its result; submit() and result() split that, to act on the server while
    the load runs (the hot-reload measurement).
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def submit(self, spec: Spec) -> None:
        self.process.stdin.write(json.dumps(asdict(spec)) + "\n")
        self.process.stdin.flush()

    def result(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited (code {self.process.wait()}); its error is above")
        answer = json.loads(line)
        if "failure" in answer:
            raise RuntimeError(f"load generator failed: {answer['failure']}")
        return answer

    def run(self, spec: Spec) -> dict:
        self.submit(spec)
        return self.result()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def expected_seconds(spec: Spec) -> float:
    """A rough duration for the progress bar."""
    if spec.mode == "sequential":
        return (spec.calls + spec.warmup_calls) * 0.0004 + 0.5
    return spec.warmup_s + spec.duration_s + 0.5


def main() -> None:
    """One JSON spec per input line, one JSON result per output line, until stdin closes."""
    for line in sys.stdin:
        try:
            answer = run(Spec(**json.loads(line)))
        except Exception as err:  # reported to the orchestrator, which stops the suite with this message
            answer = {"failure": f"{type(err).__name__}: {err}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
