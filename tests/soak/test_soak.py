"""The soak: minutes of steady traffic at 80% of the measured maximum, with a hot reload every second.

    VERDICT_SOAK=1 VERDICT_SOAK_MINUTES=10 .venv/bin/python -m pytest tests/soak -m soak

First a closed-loop burst measures the maximum throughput of this machine (client and server share it); then an
open-loop generator sends at 80% of it for VERDICT_SOAK_MINUTES (default 10) while a reloader writes a new version
of a rule set or flips a route-table switch every second. Promised and checked: zero failed calls, every reload
written, and the server's RSS flat: the largest sample of the last fifth of the run is at most RSS_GROWTH_BOUND_MIB
above the sample taken after the warm-up. Per-minute call counts, latency percentiles and RSS samples go to
benchmarks/out/soak.json (or $VERDICT_SOAK_OUT_DIR).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct
from harness import ROOT, ServerProcess
from reliability.reliability_support import Admin, proc_status_kib, rule_set

from verdict.client import DEFAULT_RETRIES, channel_options_for
from verdict.v1 import admin_pb2, decision_pb2, decision_pb2_grpc

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(os.environ.get("VERDICT_SOAK") != "1", reason="soak test: run with VERDICT_SOAK=1"),
]

MINUTES = float(os.environ.get("VERDICT_SOAK_MINUTES", "10"))
OUT_DIR = Path(os.environ.get("VERDICT_SOAK_OUT_DIR", ROOT / "benchmarks" / "out"))
LOAD_FRACTION = 0.8
CALIBRATION_S = 10.0
CALIBRATION_WINDOW = 16  # calls in flight while calibrating
CHANNELS = 4
RSS_SAMPLE_S = 5.0
WARM_UP_S = min(60.0, MINUTES * 60 / 3)
RSS_GROWTH_BOUND_MIB = 16
CALL_TIMEOUT_S = 10.0
REFUSED_STREAM = "RST_STREAM with error code 7"  # HTTP/2: the server did not process the call at all
GATE = "soak.gate"


def _gate(minimum: str) -> str:
    return rule_set(
        GATE,
        f"""\
        hit_policy: first
        default: {{allow: false}}
        constants:
          minimum: "{minimum}"
        rules:
          - id: new-app
            when: versionCompare(appVersion, minimum) >= 0
            then: {{allow: true, minimum: "{minimum}"}}
        """,
    )


def _struct(values: dict) -> Struct:
    struct = Struct()
    struct.update(values)
    return struct


def _requests(rng: random.Random) -> list[tuple[str, object]]:
    """A fixed mix the generator cycles through: (method, request)."""
    mix = []
    for index in range(200):
        category = rng.choice([1001, 1002, 2001, 3005])
        facts = {"scene": rng.choice(["NON_MEDICAL", "MEDICAL"]), "role": "PHARMACIST", "categoryId": category}
        facts["pin"] = f"pin-{index}"
        mix.append(("Evaluate", decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=_struct(facts))))
        version = f"{rng.randint(1, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"
        mix.append(("Evaluate", decision_pb2.EvaluateRequest(rule_set=GATE, facts=_struct({"appVersion": version}))))
        body = _struct({"amount": rng.choice([0, 12.5, 99]), "prescriptionId": rng.choice([None, 7])})
        mix.append(
            (
                "Route",
                decision_pb2.RouteRequest(topic="order.status.paid", tags=["PAID"], key=f"o-{index}", body_json=body),
            )
        )
        if index % 10 == 0:
            batch = [_struct({"appVersion": f"2.{n}.0"}) for n in range(10)]
            mix.append(("EvaluateBatch", decision_pb2.EvaluateBatchRequest(rule_set=GATE, facts=batch)))
    return mix


@dataclass
class _Stats:
    started: float
    latencies: dict[int, list[float]] = field(default_factory=dict)  # minute -> seconds
    failures: list[str] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, KiB)
    reloads: int = 0
    reload_failures: list[str] = field(default_factory=list)
    reload_retries: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    max_lag_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, due: float, sent: float, error: str | None) -> None:
        """One answer; it counts in the minute its call was due to be sent."""
        now = time.monotonic()
        with self.lock:
            self.in_flight -= 1
            if error is not None:
                self.failures.append(f"sent at {sent - self.started:.1f} s, failed after {now - sent:.3f} s: {error}")
                return
            self.latencies.setdefault(int((due - self.started) // 60), []).append(now - sent)


Stubs = list[decision_pb2_grpc.DecisionServiceStub]


def _measure_max_throughput(stubs: Stubs, mix: list[tuple[str, object]]) -> float:
    """Closed loop through the same future-and-callback client path the open-loop sender uses (a blocking client
    costs less CPU per call, and client and server share the machine: calibrating with one overstated the maximum
    by a fifth, and "80%" of it overloaded the server)."""
    done = 0
    lock = threading.Lock()
    stop = threading.Event()

    def send(index: int) -> None:
        method, request = mix[index % len(mix)]
        future = getattr(stubs[index % CHANNELS], method).future(request, timeout=CALL_TIMEOUT_S)
        future.add_done_callback(lambda f: answered(index, f))

    def answered(index: int, future: grpc.Future) -> None:
        nonlocal done
        if future.exception() is None:
            with lock:
                done += 1
        if not stop.is_set():
            send(index + CALIBRATION_WINDOW)

    for index in range(CALIBRATION_WINDOW):
        send(index)
    time.sleep(CALIBRATION_S)
    with lock:
        counted = done
    stop.set()
    time.sleep(1.0)  # let the window drain before the soak starts
    return counted / CALIBRATION_S


def _reload_every_second(process: ServerProcess, stats: _Stats, stop: threading.Event) -> None:
    admin = Admin(process)
    tick = 0
    try:
        while not stop.wait(1.0):
            tick += 1
            try:
                _with_refusals_retried(lambda tick=tick: _reload(admin, tick), stats)
                stats.reloads += 1
            except grpc.RpcError as err:
                stats.reload_failures.append(f"{err.code().name}: {err.details()}")
    finally:
        admin.close()


def _reload(admin: Admin, tick: int) -> None:
    if tick % 2:
        admin.put(_gate(f"2.{tick % 13}.0"), author="soak")
    else:
        request = admin_pb2.SetSelectionRequest(table="order-events", system="crm", selected=tick % 4 == 0)
        admin.stub.SetSelection(request, timeout=CALL_TIMEOUT_S, metadata=admin.metadata)


def _with_refusals_retried(write: Callable[[], None], stats: _Stats) -> None:
    """A write the server refused unseen (REFUSED_STREAM, while a neighbour starves the machine) is sent again, as
    the SDK does for idempotent calls; writes are not retried on anything else."""
    for attempt in range(DEFAULT_RETRIES + 1):
        try:
            return write()
        except grpc.RpcError as err:
            refused = err.code() == grpc.StatusCode.UNAVAILABLE and REFUSED_STREAM in (err.details() or "")
            if not refused or attempt == DEFAULT_RETRIES:
                raise
            stats.reload_retries += 1
            time.sleep(0.1 * 2**attempt)


def _sample_rss(pid: int, stats: _Stats, stop: threading.Event) -> None:
    while not stop.wait(RSS_SAMPLE_S):
        stats.rss.append((round(time.monotonic() - stats.started, 1), proc_status_kib(pid, "VmRSS")))


def _send_steadily(stubs: Stubs, mix, rate: float, seconds: float, stats: _Stats) -> int:
    """Open loop: call n is sent at start + n / rate whatever the answers do, so slow answers cannot slow the load."""
    sent = 0
    start = stats.started
    while True:
        due = start + sent / rate
        now = time.monotonic()
        if due - start >= seconds:
            return sent
        if due > now:
            time.sleep(due - now)
        else:
            stats.max_lag_s = max(stats.max_lag_s, now - due)
        method, request = mix[sent % len(mix)]
        with stats.lock:
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        sent_at = time.monotonic()
        future = getattr(stubs[sent % CHANNELS], method).future(request, timeout=CALL_TIMEOUT_S)
        future.add_done_callback(
            lambda f, d=due, t=sent_at, m=method: stats.record(
                d, t, None if f.exception() is None else f"{m} {_status(f)}"
            )
        )
        sent += 1


def _status(future: grpc.Future) -> str:
    error = future.exception()
    return f"{error.code().name}: {error.details()}" if isinstance(error, grpc.RpcError) else repr(error)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_steady_load_with_a_reload_every_second(tmp_path: Path) -> None:
    # A large concurrency limit: a scheduling hiccup of the shared machine must not turn into load shedding here.
    with ServerProcess(tmp_path / "data", "--max-concurrent-rpcs", "2500") as process:
        admin = Admin(process)
        admin.put(_gate("2.0.0"), author="soak")
        admin.close()
        # Callers use the SDK, whose channels retry an idempotent call the server refused unseen (UNAVAILABLE).
        options = channel_options_for(DEFAULT_RETRIES, ())
        channels = [grpc.insecure_channel(process.target, options=options) for _ in range(CHANNELS)]
        stubs = [decision_pb2_grpc.DecisionServiceStub(channel) for channel in channels]
        mix = _requests(random.Random(8))
        maximum = _measure_max_throughput(stubs, mix)
        rate = LOAD_FRACTION * maximum

        load_at_start = os.getloadavg()
        stats = _Stats(started=time.monotonic())
        stop = threading.Event()
        helpers = [
            threading.Thread(target=_reload_every_second, args=(process, stats, stop)),
            threading.Thread(target=_sample_rss, args=(process.proc.pid, stats, stop)),
        ]
        for thread in helpers:
            thread.start()
        seconds = MINUTES * 60
        sent = _send_steadily(stubs, mix, rate, seconds, stats)
        deadline = time.monotonic() + CALL_TIMEOUT_S + 5
        while stats.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for thread in helpers:
            thread.join(timeout=30)
        peak_kib = proc_status_kib(process.proc.pid, "VmHWM")
        for channel in channels:
            channel.close()

    answered = sum(len(values) for values in stats.latencies.values())
    warm = next(kib for at, kib in stats.rss if at >= WARM_UP_S)
    tail = [kib for at, kib in stats.rss if at >= seconds * 0.8]
    summary = {
        "minutes": MINUTES,
        "max_throughput_per_s": round(maximum, 1),
        "rate_per_s": round(rate, 1),
        "sent": sent,
        "answered": answered,
        "failed": len(stats.failures),
        "failures_sample": stats.failures[:10],
        "reloads": stats.reloads,
        "reload_failures": stats.reload_failures,
        "reload_retries_after_refused_stream": stats.reload_retries,
        "load_average_at_start": [round(load, 2) for load in load_at_start],
        "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
        "max_in_flight": stats.max_in_flight,
        "max_send_lag_ms": round(stats.max_lag_s * 1000, 1),
        "per_minute": [
            {
                "minute": minute + 1,
                "calls": len(values),
                "p50_ms": round(statistics.median(values) * 1000, 2),
                "p99_ms": round(_percentile(values, 0.99) * 1000, 2),
                "max_ms": round(max(values) * 1000, 2),
            }
            for minute, values in sorted(stats.latencies.items())
        ],
        "rss_kib": stats.rss,
        "rss_after_warm_up_kib": warm,
        "rss_tail_max_kib": max(tail),
        "rss_growth_bound_mib": RSS_GROWTH_BOUND_MIB,
        "peak_rss_kib": peak_kib,
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")

    assert stats.failures == []
    assert answered == sent
    assert stats.reload_failures == []
    assert stats.reloads >= int(seconds * 0.9)
    assert max(tail) - warm <= RSS_GROWTH_BOUND_MIB * 1024, f"RSS grew from {warm} KiB to {max(tail)} KiB"
