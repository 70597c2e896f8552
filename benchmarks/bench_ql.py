"""QL evaluation speed: Verdict's compiled QL against a hand-written Python lambda and peer engines, in one run.

    .venv/bin/python benchmarks/bench_ql.py [--quick]

Three typical rules (issue 3): R1 a membership and an equality, R2 arithmetic and comparisons in && / || chains,
R3 a nested path with a string method (stdlib engine). Every engine evaluates the same rule on the same facts in its
own syntax, with the expression compiled once outside the timing. The floor is a hand-written lambda that gives the
same answer with the same null-safety (a missing fact is None, not a KeyError). Engines are measured in many short
alternating rounds; "ns" is the best round, "x floor" the median of each round's ratio to the floor measured in the
same round, so load that comes and goes on the shared machine hits both sides of a ratio alike. The A/A line
measures the floor twice: its distance from 1.00 is the resolution of the run. Compile time is a cold compile.
"""

from __future__ import annotations

import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from verdict_server import ql

CATALOG = {"category": "OTC", "channel": "pharmacist", "age": 35, "price": 12.5}
PRICED = {**CATALOG, "qty": 10, "vip": False, "city": "Beijing"}
ORDER = {"order": {"items": [{"sku": "OTC-123", "qty": 2}]}, "user": {"level": 4}}


@dataclass
class Rule:
    name: str
    ql: str
    facts: dict[str, Any]
    floor: Callable[[dict[str, Any]], Any]
    stdlib: bool = False
    peers: dict[str, str] = field(default_factory=dict)  # engine -> the rule in that engine's syntax


RULES = [
    Rule(
        "R1",
        "category in ['OTC', 'VITAMIN'] && channel == 'pharmacist'",
        CATALOG,
        lambda f: f.get("category") in ("OTC", "VITAMIN") and f.get("channel") == "pharmacist",
        peers={
            "zen-engine": "category in ['OTC', 'VITAMIN'] and channel == 'pharmacist'",
            "simpleeval": "category in ['OTC', 'VITAMIN'] and channel == 'pharmacist'",
            "cel-expr-python": "category in ['OTC', 'VITAMIN'] && channel == 'pharmacist'",
            "common-expression-language": "category in ['OTC', 'VITAMIN'] && channel == 'pharmacist'",
        },
    ),
    Rule(
        "R2",
        "(age >= 18 && age < 65 && price * qty > 100) || (vip == true && city in ['Beijing','Shanghai'])",
        PRICED,
        lambda f: (
            (18 <= f.get("age") < 65 and f.get("price") * f.get("qty") > 100)
            or (f.get("vip") is True and f.get("city") in ("Beijing", "Shanghai"))
        ),
        peers={
            "zen-engine": "(age >= 18 and age < 65 and price * qty > 100) or (vip == true and city in ['Beijing','Shanghai'])",
            "simpleeval": "(age >= 18 and age < 65 and price * qty > 100) or (vip == True and city in ['Beijing','Shanghai'])",
            "cel-expr-python": "(age >= 18 && age < 65 && price * double(qty) > 100.0) || (vip == true && city in ['Beijing','Shanghai'])",
            "common-expression-language": "(age >= 18 && age < 65 && price * double(qty) > 100.0) || (vip == true && city in ['Beijing','Shanghai'])",
        },
    ),
    Rule(
        "R3",
        "order.items[0].sku.startsWith('OTC') && user.level >= 3",
        ORDER,
        lambda f: f.get("order")["items"][0]["sku"].startswith("OTC") and f.get("user")["level"] >= 3,
        stdlib=True,
        peers={
            "zen-engine": "startsWith(order.items[0].sku, 'OTC') and user.level >= 3",
            "simpleeval": "order['items'][0]['sku'].startswith('OTC') and user['level'] >= 3",
            "cel-expr-python": "order.items[0].sku.startsWith('OTC') && user.level >= 3",
            "common-expression-language": "order.items[0].sku.startsWith('OTC') && user.level >= 3",
        },
    ),
]


def peer_evaluators(rule: Rule) -> dict[str, Callable[[], Any]]:
    """Each installed peer, compiled once: a no-argument callable evaluating the rule on its facts."""
    evaluators: dict[str, Callable[[], Any]] = {}
    facts = rule.facts
    try:
        import zen

        expression = zen.compile_expression(rule.peers["zen-engine"])
        evaluators["zen-engine"] = lambda: expression.evaluate(facts)
    except ImportError:
        pass
    try:
        from simpleeval import EvalWithCompoundTypes

        evaluator = EvalWithCompoundTypes(names=facts)
        source = rule.peers["simpleeval"]
        parsed = evaluator.parse(source)
        evaluators["simpleeval"] = lambda: evaluator.eval(source, previously_parsed=parsed)
    except ImportError:
        pass
    try:
        from cel_expr_python import cel as google_cel

        env = google_cel.NewEnv(variables={name: google_cel.Type.DYN for name in facts})
        compiled = env.compile(rule.peers["cel-expr-python"])
        evaluators["cel-expr-python"] = lambda: compiled.eval(data=facts).value()
    except ImportError:
        pass
    try:
        import cel

        program = cel.compile(rule.peers["common-expression-language"])
        evaluators["common-expression-language"] = lambda: program.execute(facts)
    except ImportError:
        pass
    return evaluators


def per_call_ns(function: Callable[[], Any], number: int) -> float:
    return timeit.timeit(function, number=number) / number * 1e9


def compile_us(rule: Rule, repeat: int) -> float:
    """A cold compile: parse, generate Python code, compile it, bind it (a fresh engine has an empty cache)."""
    best = float("inf")
    for _ in range(repeat):
        engine = ql.Engine(stdlib=rule.stdlib)
        started = time.perf_counter()
        engine.compile(rule.ql)
        best = min(best, time.perf_counter() - started)
    return best * 1e6


def bench_rule(rule: Rule, quick: bool) -> dict[str, Any]:
    program = ql.Engine(stdlib=rule.stdlib).compile(rule.ql)
    facts = rule.facts
    floor = rule.floor
    expected = floor(facts)
    candidates: dict[str, Callable[[], Any]] = {
        "lambda (floor)": lambda: floor(facts),
        "lambda (A/A)": lambda: floor(facts),
        "verdict ql": lambda: program.run(facts),
    }
    for name, evaluator in peer_evaluators(rule).items():
        if evaluator() != expected:
            raise AssertionError(f"{name} answers {evaluator()!r} for {rule.name}, expected {expected!r}")
        candidates[name] = evaluator
    if program.run(facts) != expected:
        raise AssertionError(f"verdict answers {program.run(facts)!r} for {rule.name}, expected {expected!r}")
    rounds, number = (8, 5_000) if quick else (40, 10_000)
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, evaluator in candidates.items():
            slow_peer = name not in ("lambda (floor)", "lambda (A/A)", "verdict ql")
            samples[name].append(per_call_ns(evaluator, number // 10 if slow_peer else number))
    floor_samples = samples["lambda (floor)"]
    return {
        "ns": {name: min(values) for name, values in samples.items()},
        # Each round's ratio to the floor of the same round, then the median: load that comes and goes during the
        # run moves both sides of a round alike.
        "ratio": {
            name: statistics.median(v / f for v, f in zip(values, floor_samples, strict=True))
            for name, values in samples.items()
        },
        "compile_us": compile_us(rule, 5 if quick else 20),
    }


def report(results: dict[str, dict[str, Any]]) -> str:
    lines = []
    for rule in RULES:
        result = results[rule.name]
        ns, ratio = result["ns"], result["ratio"]
        peers = {name: value for name, value in ratio.items() if not name.startswith(("lambda", "verdict"))}
        fastest_peer = min(peers.values()) if peers else None
        lines.append(f"{rule.name}  {rule.ql}")
        for name, value in ns.items():
            extra = ""
            if name == "verdict ql" and fastest_peer:
                extra = f"   {fastest_peer / ratio[name]:5.1f}x faster than the fastest peer"
            lines.append(f"  {name:28s} {value:9.0f} ns   {ratio[name]:6.2f}x floor{extra}")
        lines.append(f"  {'compile (cold)':28s} {result['compile_us']:9.0f} µs")
    return "\n".join(lines)


def run(quick: bool = False) -> dict[str, Any]:
    results = {rule.name: bench_rule(rule, quick) for rule in RULES}
    return {"rules": results, "text": report(results)}


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv[1:])["text"])
