"""Routing cost with many route tables: the topic trie against a naive scan of every pattern, in the same run.

    .venv/bin/python benchmarks/bench_routing.py                  # 1, 100, 1,000 and 10,000 tables
    .venv/bin/python benchmarks/bench_routing.py --tables 1000 --conditions

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


def per_message_us(run: Callable[[Message], object], messages: list[Message], repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for message in messages:
            run(message)
        best = min(best, time.perf_counter() - start)
    return best / len(messages) * 1e6


def naive_route(tables: list, message: Message):
    return route_through((t for t in tables if t.pattern.matches(message.topic)), message)


def measure(count: int, conditions: bool, engine) -> dict[str, float]:
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
        "match_trie": per_message_us(lambda m: index.matching_tables(m.topic), messages),
        "match_scan": per_message_us(lambda m: [t for t in tables if t.pattern.matches(m.topic)], scan_sample),
        "route_trie": per_message_us(index.route, messages),
        "route_scan": per_message_us(lambda m: naive_route(tables, m), scan_sample),
    }


def engine_or_none():
    from verdict_server import ql

    engine_class = getattr(ql, "Engine", None)
    return engine_class(stdlib=True) if engine_class else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, nargs="*", default=[1, 100, 1_000, 10_000])
    parser.add_argument("--conditions", action="store_true", help="give one system per table a QL condition")
    args = parser.parse_args()
    engine = engine_or_none()
    if args.conditions and engine is None:
        parser.error("--conditions needs the QL engine (verdict_server.ql.Engine)")
    print(
        f"per message, best of 5 runs over {TOPICS_PER_RUN} messages; conditions={'on' if args.conditions else 'off'}"
    )
    header = f"{'tables':>7} {'matched':>8} {'match trie':>11} {'match scan':>11} {'ratio':>7} {'route trie':>11} {'route scan':>11} {'ratio':>7} {'routes/s':>9}"
    print(header)
    for count in args.tables:
        r = measure(count, args.conditions, engine)
        print(
            f"{r['tables']:>7} {r['matched']:>8.2f} {r['match_trie']:>9.2f}us {r['match_scan']:>9.2f}us "
            f"{r['match_scan'] / r['match_trie']:>6.1f}x {r['route_trie']:>9.2f}us {r['route_scan']:>9.2f}us "
            f"{r['route_scan'] / r['route_trie']:>6.1f}x {1e6 / r['route_trie']:>9,.0f}"
        )


if __name__ == "__main__":
    main()
