"""Routing cost with many route tables: the topic trie against a naive scan of every pattern, in the same run.

    .venv/bin/python benchmarks/bench_routing.py                  # 1, 100, 1,000 and 10,000 tables
    .venv/bin/python benchmarks/bench_routing.py --tables 1000 --conditions
    .venv/bin/python benchmarks/bench_routing.py --quick                 # 1, 100 and 1,000 tables

For each table count it prints, per message (microseconds):
  match  trie      RouteIndex's trie finding the matching tables
  match  scan      the naive floor: TopicPattern.matches on every table (what the trie replaces)
  route  trie      a full RouteIndex.route (match + every system's checks)
  route  scan      the same checks after the naive scan
and the scan/trie ratios, and in-process routes per second on one core. Tables use realistic patterns (mostly literal, some `*` and `#`); each has three systems
(one switched off, tags, a 50% gray rule; with --conditions also a QL condition).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from verdict_server.document import load_document
from verdict_server.routing import Message, RouteIndex, compile_route_table
from verdict_server.routing.route import route_through

TOPICS_PER_RUN = 2_000


def pattern_for(number: int, rng: random.Random, domains: int) -> str:
    domain, entity, event = rng.randrange(domains), rng.randrange(20), rng.randrange(10)
    shape = number % 10
    if shape < 6:
        return f"dom{domain}.ent{entity}.evt{event}"
    if shape < 8:
        return f"dom{domain}.ent{entity}.*"
    if shape == 8:
        return f"dom{domain}.#"
    if number < 100:  # a few catch-all tables (audit, archive) that match across every domain
        return f"#.evt{event}"
    return f"dom{domain}.*.evt{event}"


def table_text(number: int, pattern: str, conditions: bool) -> str:
    systems = [
        {"system": "primary", "selected": True, "target": f"t{number}.primary", "priority": 10},
        {"system": "tagged", "selected": True, "target": f"t{number}.tagged", "tags": "PAID || REFUNDED"},
        {"system": "gray", "selected": True, "target": f"t{number}.gray", "gray": {"percent": 50}},
        {"system": "off", "selected": False, "target": f"t{number}.off"},
    ]
    if conditions:
        systems[0]["when"] = "properties.env != 'test' && 'PAID' in tags"
    return json.dumps({"kind": "RouteTable", "name": f"table-{number:05d}", "topic": pattern, "systems": systems})


def build_tables(count: int, conditions: bool, engine) -> list:
    rng = random.Random(20261125)
    domains = max(1, count // 20)
    return [
        compile_route_table(load_document(table_text(n, pattern_for(n, rng, domains), conditions)), engine, 1)
        for n in range(count)
    ]


def messages_for(count: int) -> list[Message]:
    rng = random.Random(7)
    domains = max(1, count // 20)
    return [
        Message(
            f"dom{rng.randrange(domains)}.ent{rng.randrange(20)}.evt{rng.randrange(10)}",
            tags=(rng.choice(["PAID", "CREATED"]),),
            key=f"order-{n}",
            properties={"env": "prod"},
        )
        for n in range(TOPICS_PER_RUN)
    ]


def per_message_us(call: Callable[[Message], object], messages: list[Message], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for message in messages:
            call(message)
        best = min(best, time.perf_counter() - start)
    return best / len(messages) * 1e6


def naive_route(tables: list, message: Message):
    return route_through((t for t in tables if t.pattern.matches(message.topic)), message)


def measure(count: int, conditions: bool, engine, repeats: int) -> dict[str, float]:
    tables = sorted(build_tables(count, conditions, engine), key=lambda t: t.name)
    index = RouteIndex(tables)
    messages = messages_for(count)
    for message in messages[:200]:  # the two ways must agree before their speed means anything
        assert index.route(message) == naive_route(tables, message), message.topic
    # The scan is slow with many tables; a smaller sample of the same messages keeps the run short.
    scan_sample = messages[: max(200, TOPICS_PER_RUN * 100 // max(count, 100))]
    matched = sum(len(index.matching_tables(m.topic)) for m in messages) / len(messages)
    return {
        "tables": count,
        "matched": matched,
        "match_trie": per_message_us(lambda m: index.matching_tables(m.topic), messages, repeats),
        "match_scan": per_message_us(lambda m: [t for t in tables if t.pattern.matches(m.topic)], scan_sample, repeats),
        "route_trie": per_message_us(index.route, messages, repeats),
        "route_scan": per_message_us(lambda m: naive_route(tables, m), scan_sample, repeats),
    }


def engine_or_none():
    from verdict_server import ql

    engine_class = getattr(ql, "Engine", None)
    return engine_class(stdlib=True) if engine_class else None


def report(rows: list[dict[str, float]], conditions: bool, repeats: int) -> str:
    lines = [
        f"per message, best of {repeats} runs over {TOPICS_PER_RUN} messages; conditions={'on' if conditions else 'off'}",
        f"{'tables':>7} {'matched':>8} {'match trie':>11} {'match scan':>11} {'ratio':>7} "
        f"{'route trie':>11} {'route scan':>11} {'ratio':>7} {'routes/s':>9}",
    ]
    for r in rows:
        lines.append(
            f"{r['tables']:>7} {r['matched']:>8.2f} {r['match_trie']:>9.2f}us {r['match_scan']:>9.2f}us "
            f"{r['match_scan'] / r['match_trie']:>6.1f}x {r['route_trie']:>9.2f}us {r['route_scan']:>9.2f}us "
            f"{r['route_scan'] / r['route_trie']:>6.1f}x {1e6 / r['route_trie']:>9,.0f}"
        )
    return "\n".join(lines)


def run(quick: bool = False, tables: list[int] | None = None, conditions: bool = False) -> dict:
    """Entry point for benchmarks/run.py: the measurements, plus the printed table under "text"."""
    repeats = 3 if quick else 5
    counts = tables or ([1, 100, 1_000] if quick else [1, 100, 1_000, 10_000])
    engine = engine_or_none()
    if conditions and engine is None:
        raise SystemExit("--conditions needs the QL engine (verdict_server.ql.Engine)")
    rows = [measure(count, conditions, engine, repeats) for count in counts]
    return {"rows": rows, "text": report(rows, conditions, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, nargs="*", help="table counts (default 1 100 1000 10000)")
    parser.add_argument("--conditions", action="store_true", help="give one system per table a QL condition")
    parser.add_argument("--quick", action="store_true", help="1, 100 and 1,000 tables, 3 runs each")
    args = parser.parse_args()
    print(run(args.quick, args.tables, args.conditions)["text"])


if __name__ == "__main__":
    main()
