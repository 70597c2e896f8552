"""`verdict forward` against the floor (forward_floor.py: a plain pika consume → publish → confirm → ack loop),
on the same private RabbitMQ node, prefetch and message size, alternating in rounds within one run.

    .venv/bin/python benchmarks/bench_forward.py              # 20,000 messages per round, 3 rounds
    .venv/bin/python benchmarks/bench_forward.py --quick      # 5,000 messages, 2 rounds
    .venv/bin/python benchmarks/bench_forward.py --broker amqp://guest:guest@127.0.0.1:5672/%2F   # an existing broker

Throughput: the source queue is filled with N messages, then the forwarder (or the floor) starts and drains it into
a sink queue; msgs/s = messages / time between the first and the last arrival at the sink (start-up excluded).
Latency: with the forwarder running, messages are published at a steady rate (a quarter and half of the floor's
throughput) with
their send time in a header; end-to-end latency = arrival at the sink − send time (publisher, forwarder and sink
on the same machine and clock). The route table has one system with a tag filter and a QL condition on the body,
so Verdict does its real work (mapping, tags, body parse, condition, headers) on every message.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "tests"))  # the private broker node the tests use

import pika  # noqa: E402
from mq_support import RabbitNode, connect, ensure_rabbitmq  # noqa: E402

TABLE = """
kind: RouteTable
name: bench
topic: bench.#
systems:
  - system: sink
    selected: true
    target: bench.sink
    tags: "PAID || REFUNDED"
    when: body.amount > 0
"""
EXCHANGE_IN, EXCHANGE_OUT, DLX = "bench.in", "bench.out", "bench.dlx"
SOURCE, SINK = "bench.source", "bench.sink.q"
LATENCY_SHARES = (0.25, 0.5)  # of the floor's throughput: the steady publishing rates latency is measured at


def message_body(size: int) -> bytes:
    head = '{"amount": 99.5, "orderId": "order-1", "pad": "'
    return (head + "x" * max(0, size - len(head) - 2) + '"}').encode()


def declare(url: str) -> None:
    conn = connect(url)
    channel = conn.channel()
    for exchange in (EXCHANGE_IN, EXCHANGE_OUT, DLX):
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    channel.queue_declare(SOURCE, durable=True)
    channel.queue_bind(SOURCE, EXCHANGE_IN, routing_key="bench.#")
    channel.queue_declare(SINK, durable=True)
    channel.queue_bind(SINK, EXCHANGE_OUT, routing_key="bench.sink")
    channel.queue_purge(SOURCE)
    channel.queue_purge(SINK)
    conn.close()


def fill(url: str, count: int, body: bytes, stamp: bool = False, rate: float = 0.0) -> None:
    conn = connect(url)
    channel = conn.channel()
    start = time.monotonic()
    for number in range(count):
        headers = {"tags": "PAID", "key": f"order-{number}"}
        if stamp:
            headers["sent"] = time.time_ns() // 1000  # µs: pika encodes no floats
        channel.basic_publish(
            EXCHANGE_IN, "bench.order.paid", body, pika.BasicProperties(headers=headers, delivery_mode=2)
        )
        if rate:
            delay = start + (number + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    conn.process_data_events(time_limit=0)
    conn.close()


def drain_sink(url: str, count: int, timeout_s: float) -> tuple[list[float], list[float]]:
    """Arrival times and (for stamped messages) latencies of `count` messages at the sink."""
    arrivals: list[float] = []
    latencies: list[float] = []
    conn = connect(url)
    channel = conn.channel()
    channel.basic_qos(prefetch_count=1000)

    def on_message(ch, method, properties, _body) -> None:
        now = time.time_ns() // 1000
        arrivals.append(time.monotonic())
        sent = (properties.headers or {}).get("sent")
        if sent is not None:
            latencies.append((now - sent) / 1e6)
        ch.basic_ack(method.delivery_tag, multiple=False)

    channel.basic_consume(SINK, on_message)
    deadline = time.monotonic() + timeout_s
    while len(arrivals) < count and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.2)
    conn.close()
    if len(arrivals) < count:
        raise RuntimeError(f"only {len(arrivals)} of {count} messages reached the sink within {timeout_s}s")
    return arrivals, latencies


def start_side(side: str, url: str, rules_dir: Path, prefetch: int, workers: int, log: Path) -> subprocess.Popen:
    if side == "floor":
        command = [sys.executable, str(BENCH_DIR / "forward_floor.py"), "--broker", url, "--queue", SOURCE]
        command += ["--exchange", EXCHANGE_OUT, "--routing-key", "bench.sink", "--prefetch", str(prefetch)]
        ready = "floor: consuming"
    else:
        command = [sys.executable, "-m", "verdict_server", "--log-level", "warning", "forward", "--broker", url]
        command += ["--queue", SOURCE, "--rules-dir", str(rules_dir), "--target-exchange", EXCHANGE_OUT]
        command += ["--dead-letter-exchange", DLX, "--prefetch", str(prefetch), "--workers", str(workers)]
        command += ["--decision-log-sample", "0"]
        ready = "verdict: forwarding queue"
    with log.open("a") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO)
    line = proc.stdout.readline()
    if ready not in line:
        raise RuntimeError(f"{side} did not start ({proc.poll()}): {log.read_text()[-3000:]}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def throughput(url, side, count, body, rules_dir, prefetch, workers, log) -> float:
    declare(url)
    fill(url, count, body)
    proc = start_side(side, url, rules_dir, prefetch, workers, log)
    try:
        arrivals, _ = drain_sink(url, count, timeout_s=300)
    finally:
        stop(proc)
    return (count - 1) / (arrivals[-1] - arrivals[0])


def latency(url, side, count, rate, body, rules_dir, prefetch, workers, log) -> dict:
    declare(url)
    proc = start_side(side, url, rules_dir, prefetch, workers, log)
    result: dict = {}
    try:
        sink = threading.Thread(
            target=lambda: result.update(zip(("arrivals", "latencies"), drain_sink(url, count, 300), strict=True))
        )
        sink.start()
        fill(url, count, body, stamp=True, rate=rate)
        sink.join()
    finally:
        stop(proc)
    samples = sorted(result["latencies"])
    return {
        "p50_ms": 1000 * samples[len(samples) // 2],
        "p99_ms": 1000 * samples[int(len(samples) * 0.99)],
        "rate": rate,
        "messages": count,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--broker", help="an existing broker's AMQP URL (default: start a private node)")
    parser.add_argument("--messages", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--size", type=int, default=512, help="message body bytes")
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    count = args.messages or (5_000 if args.quick else 20_000)
    rounds = args.rounds or (2 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="verdict-bench-forward-"))
    rules_dir = work / "rules"
    rules_dir.mkdir()
    (rules_dir / "bench.yaml").write_text(TABLE)
    node = None
    url = args.broker
    if url is None:
        ensure_rabbitmq()
        node = RabbitNode(work / "rabbitmq").start()
        url = node.url
    body = message_body(args.size)
    log = work / "processes.log"
    rates: dict[str, list[float]] = {"floor": [], "verdict": []}
    try:
        for _ in range(rounds):
            for side in ("floor", "verdict"):
                rates[side].append(throughput(url, side, count, body, rules_dir, args.prefetch, args.workers, log))
        floor_rate = statistics.median(rates["floor"])
        latencies = {}
        for share in LATENCY_SHARES:
            rate = round(floor_rate * share)
            lat_count = min(count, max(1000, rate * 4))
            latencies[share] = {
                side: latency(url, side, lat_count, rate, body, rules_dir, args.prefetch, args.workers, log)
                for side in ("floor", "verdict")
            }
    finally:
        if node is not None:
            node.close()
    verdict_rate = statistics.median(rates["verdict"])
    ratio = verdict_rate / floor_rate
    results = {
        "messages": count,
        "rounds": rounds,
        "size": args.size,
        "prefetch": args.prefetch,
        "workers": args.workers,
        "throughput": rates,
        "ratio": ratio,
        "latency": {str(share): values for share, values in latencies.items()},
        "cpus": os.cpu_count(),
        "load": os.getloadavg(),
    }
    print(f"forwarding {count} messages of {args.size} bytes, prefetch {args.prefetch}, {args.workers} workers")
    heads = "".join(" " + format(f"p50/p99 ms at {lat['floor']['rate']:,}/s", ">26") for lat in latencies.values())
    print(f"{'':10} {'msgs/s (median)':>16} {'rounds':>30}{heads}")
    for side in ("floor", "verdict"):
        shown = ", ".join(f"{r:,.0f}" for r in rates[side])
        cells = "".join(
            " " + format(f"{lat[side]['p50_ms']:.1f} / {lat[side]['p99_ms']:.1f}", ">26") for lat in latencies.values()
        )
        print(f"{side:10} {statistics.median(rates[side]):>16,.0f} {shown:>30}{cells}")
    print(f"verdict / floor throughput: {ratio:.2f}x (goal >= 0.7x: {'met' if ratio >= 0.7 else 'MISSED'})")
    shares = " and ".join(f"{share:.0%}" for share in LATENCY_SHARES)
    print(f"latency: messages published at a steady {shares} of the floor's throughput")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
