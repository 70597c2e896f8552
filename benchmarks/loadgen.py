"""The load generator: a client process that sends pre-serialized requests over and over and times the calls.

    python benchmarks/loadgen.py < specs.jsonl > results.jsonl

It sends raw request bytes and keeps raw response bytes (no protobuf work in the client), so the client costs the
same whichever server it measures; the echo floor and Verdict are driven by the very same code.

A spec has one or more *arms* (a server and the request to send it). With two arms, the floor and Verdict, the
measurement alternates between them in `rounds` slices, so both see the same machine: drift from other work on a
shared machine moves both sides of a ratio alike. Two modes:

- sequential: one call at a time from one thread; per arm `calls` timed calls after `warmup_calls`.
- concurrent: `in_flight` calls kept in flight with grpc.aio for `duration_s` per arm (after `warmup_s` in the
  first round), spread over `channels` connections, each its own subchannel so SO_REUSEPORT spreads them over processes.

Specs and results are JSON lines (see Spec and summarise(); one result per arm). run.py keeps this running as a
separate process with LoadClient, so the client never shares an interpreter or a GIL with the orchestrator.
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
PIPELINE_FILL_S = 0.05  # before each later round's window: longer than a call takes at 64 in flight


@dataclass
class Arm:
    target: str
    method: str  # full method path, e.g. /verdict.v1.DecisionService/Evaluate
    request_b64: str  # the serialized request message

    @classmethod
    def of(cls, target: str, method: str, request: bytes) -> Arm:
        return cls(target, method, base64.b64encode(request).decode())

    @property
    def request(self) -> bytes:
        return base64.b64decode(self.request_b64)


@dataclass
class Spec:
    arms: list[Arm]
    mode: str = "concurrent"  # sequential | concurrent
    in_flight: int = 1
    duration_s: float = 3.0  # per arm, over all rounds
    warmup_s: float = 0.5  # per arm, in the first round (later rounds: PIPELINE_FILL_S)
    calls: int = 2_000  # sequential mode, per arm, over all rounds
    warmup_calls: int = 200  # sequential mode, per arm, once
    rounds: int = 1
    channels: int = 8  # concurrent mode: at most this many connections per arm (never more than in_flight)
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        self.arms = [arm if isinstance(arm, Arm) else Arm(**arm) for arm in self.arms]


@dataclass
class _Tally:
    """What one arm collected over every round."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    warmup_calls: int = 0


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarise(spec: Spec, tally: _Tally, cpu_s: float) -> dict:
    ordered = sorted(tally.latencies)
    samples = (
        ordered if len(ordered) <= MAX_SAMPLES_RETURNED else random.Random(1).sample(ordered, MAX_SAMPLES_RETURNED)
    )
    return {
        "mode": spec.mode,
        "in_flight": spec.in_flight if spec.mode == "concurrent" else 1,
        "rounds": spec.rounds,
        "calls": len(ordered),
        "errors": dict(tally.errors),
        "elapsed_s": tally.elapsed_s,
        "calls_per_s": len(ordered) / tally.elapsed_s if tally.elapsed_s > 0 else 0.0,
        "latency_us": {f"p{pct:g}": percentile(ordered, pct) * 1e6 for pct in PERCENTILES}
        | {"mean": (sum(ordered) / len(ordered) * 1e6) if ordered else math.nan},
        "samples_us": sorted(s * 1e6 for s in samples),
        "client_cpu_s": cpu_s,  # the client process over the whole spec (every arm)
        "warmup_calls": tally.warmup_calls,  # made before the timed parts (the server's CPU time counts them too)
    }


def _slices(total: int, rounds: int) -> list[int]:
    return [total // rounds + (1 if n < total % rounds else 0) for n in range(rounds)]


def run_sequential(spec: Spec) -> list[dict]:
    tallies = [_Tally() for _ in spec.arms]
    channels = [grpc.insecure_channel(arm.target) for arm in spec.arms]
    cpu0 = time.process_time()
    try:
        calls = [channel.unary_unary(arm.method) for channel, arm in zip(channels, spec.arms, strict=True)]
        requests = [arm.request for arm in spec.arms]
        for call, request, tally in zip(calls, requests, tallies, strict=True):
            for _ in range(spec.warmup_calls):
                call(request, timeout=spec.timeout_s)
            tally.warmup_calls = spec.warmup_calls
        for count in _slices(spec.calls, spec.rounds):
            for call, request, tally in zip(calls, requests, tallies, strict=True):
                _sequential_slice(call, request, count, spec.timeout_s, tally)
    finally:
        for channel in channels:
            channel.close()
    cpu = time.process_time() - cpu0
    return [summarise(spec, tally, cpu) for tally in tallies]


def _sequential_slice(call, request: bytes, count: int, timeout_s: float, tally: _Tally) -> None:
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            call(request, timeout=timeout_s)
        except grpc.RpcError as err:
            tally.errors[err.code().name] += 1
            continue
        tally.latencies.append(time.perf_counter() - t0)
    tally.elapsed_s += time.perf_counter() - start


async def _concurrent(spec: Spec) -> list[dict]:
    count = max(1, min(spec.channels, spec.in_flight))
    # A local subchannel pool per channel: otherwise grpc shares one connection between equal channels.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [[grpc.aio.insecure_channel(arm.target, options=options) for _ in range(count)] for arm in spec.arms]
    tallies = [_Tally() for _ in spec.arms]
    cpu0 = time.process_time()
    try:
        await asyncio.gather(*(channel.channel_ready() for group in channels for channel in group))
        for round_number in range(spec.rounds):
            # Later rounds find the connections and the server's threads warm: they only refill the pipeline.
            warmup_s = spec.warmup_s if round_number == 0 else PIPELINE_FILL_S
            for arm, group, tally in zip(spec.arms, channels, tallies, strict=True):
                calls = [channel.unary_unary(arm.method) for channel in group]
                await _concurrent_slice(spec, calls, arm.request, tally, warmup_s)
    finally:
        await asyncio.gather(*(channel.close() for group in channels for channel in group))
    cpu = time.process_time() - cpu0
    return [summarise(spec, tally, cpu) for tally in tallies]


async def _concurrent_slice(spec: Spec, calls: list, request: bytes, tally: _Tally, warmup_s: float) -> None:
    """Keep in_flight calls going: warmup_s to fill the pipeline, then a window of this round's share of duration_s.

    The calls that complete inside the window are counted (calls/s = completions / window, the steady-state rate),
    with their latencies; the calls still in flight when it closes finish uncounted, so no drain is measured.
    """
    record_from = time.perf_counter() + warmup_s
    stop_at = record_from + spec.duration_s / spec.rounds

    async def worker(call) -> None:
        while (started := time.perf_counter()) < stop_at:
            failure = None
            try:
                await call(request, timeout=spec.timeout_s)
            except grpc.aio.AioRpcError as err:
                failure = err.code().name
            finished = time.perf_counter()
            if not record_from <= finished <= stop_at:
                tally.warmup_calls += 1  # outside the window; the server's CPU time per call still counts it
            elif failure is not None:
                tally.errors[failure] += 1
            else:
                tally.latencies.append(finished - started)

    await asyncio.gather(*(worker(calls[i % len(calls)]) for i in range(spec.in_flight)))
    tally.elapsed_s += stop_at - record_from


def run(spec: Spec) -> list[dict]:
    if spec.mode == "sequential":
        return run_sequential(spec)
    if spec.mode == "concurrent":
        return asyncio.run(_concurrent(spec))
    raise ValueError(f"unknown mode {spec.mode!r}")


class LoadClient:
    """A client process kept alive across measurements (starting one costs more than a short measurement).

    run() sends one spec and waits for its results (one per arm); submit() and result() split that, to act on the
    server while the load runs (the hot-reload measurement).
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def submit(self, spec: Spec) -> None:
        self.process.stdin.write(json.dumps(asdict(spec)) + "\n")
        self.process.stdin.flush()

    def result(self) -> list[dict]:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited (code {self.process.wait()}); its error is above")
        answer = json.loads(line)
        if isinstance(answer, dict) and "failure" in answer:
            raise RuntimeError(f"load generator failed: {answer['failure']}")
        return answer

    def run(self, spec: Spec) -> list[dict]:
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
    arms = len(spec.arms)
    if spec.mode == "sequential":
        return arms * (spec.calls + spec.warmup_calls) * 0.0005 + 0.3
    return arms * (spec.duration_s + spec.warmup_s + spec.rounds * PIPELINE_FILL_S) + 0.3


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
