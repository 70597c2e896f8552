"""The documents and requests the suite measures: generated rule sets and route tables, and the facts and message.

Everything is deterministic (no randomness), so two runs measure the same work. Documents are JSON text, which is
valid YAML, the format AdminService.PutDocument takes (DESIGN.md, "Rule sets" and "Route tables").
"""

from __future__ import annotations

import json

from google.protobuf.struct_pb2 import Struct

from verdict.v1 import decision_pb2

# The facts of every Evaluate scenario: ten fields, of which the rules read a few (a typical order-queue call).
FACTS = {
    "scene": "NON_MEDICAL",
    "role": "PHARMACIST",
    "categoryId": 1001,
    "pin": "user-123456",
    "appVersion": "2.10.3",
    "storeId": 88231,
    "city": "Hangzhou",
    "amount": 129.5,
    "tags": ["new", "vip"],
    "patient": {"age": 35, "gender": "F"},
}

# The Route scenario's message: matched by examples/route-tables/order-events.yaml (the seeded table).
MESSAGE = {
    "topic": "order.status.paid",
    "tags": ["PAID"],
    "key": "order-42",
    "properties": {"env": "prod"},
    "body": {"amount": 99.5, "prescriptionId": "rx-7", "pharmacyId": 311, "items": 3},
}

PHARMACIST = "pharmacist.otc_block"
FIRST_50 = "bench.first50"
COLLECT = "bench.collect"
BULK_PREFIX = "bench.bulk-"


def first_50_rules() -> str:
    """50 rules under `first`; only the last one matches FACTS, so every condition runs (the worst case)."""
    rules = [
        {
            "id": f"rule-{n:02d}",
            "when": f"role == 'ROLE_{n}' && categoryId in [{n * 10}, {n * 10 + 1}, {n * 10 + 2}] || amount > {10_000 + n}",
            "then": {"action": "HIDE", "rule": n},
        }
        for n in range(49)
    ]
    rules.append({"id": "rule-49", "when": "role == 'PHARMACIST' && amount > 100", "then": {"action": "REVIEW"}})
    return _json(
        {
            "kind": "RuleSet",
            "name": FIRST_50,
            "description": "benchmark: 50 rules, first hit policy, the last one matches",
            "hit_policy": "first",
            "default": {"action": "SHOW"},
            "rules": rules,
        }
    )


def collect_rules() -> str:
    """20 rules under `collect`; half of them match FACTS, their results are gathered in a list."""
    rules = []
    for n in range(20):
        when = f"amount > {n}" if n % 2 == 0 else f"city == 'City{n}' && storeId > {n}"
        rules.append({"id": f"tag-{n:02d}", "when": when, "then": {"tag": f"t{n}"}})
    return _json(
        {
            "kind": "RuleSet",
            "name": COLLECT,
            "description": "benchmark: 20 rules, collect hit policy, half of them match",
            "hit_policy": "collect",
            "default": [],
            "rules": rules,
        }
    )


def bulk_rule_set(number: int, variant: int = 0) -> str:
    """One of the 1,000 or 10,000 rule sets of the cold-path measurements: five rules, constants, a function.

    `variant` changes the result of the first rule, for the hot-reload measurement.
    """
    return _json(
        {
            "kind": "RuleSet",
            "name": f"{BULK_PREFIX}{number:05d}",
            "description": f"benchmark bulk rule set {number}",
            "hit_policy": "first",
            "default": {"action": "SHOW"},
            "constants": {"blocked": [number, number + 1, number + 2], "limit": 100 + number},
            "functions": "function isBlocked(cat) { return cat in blocked }",
            "rules": [
                {
                    "id": "blocked",
                    "when": "scene == 'NON_MEDICAL' && role == 'PHARMACIST' && isBlocked(categoryId)",
                    "then": {"action": "HIDE", "variant": variant},
                },
                {"id": "large", "when": "amount > limit", "then": {"action": "REVIEW", "variant": variant}},
                {"id": "vip", "when": "'vip' in tags && city == 'Hangzhou'", "then": {"action": "FAST"}},
                {"id": "old-app", "when": "appVersion == null", "then": {"action": "UPGRADE"}},
                {
                    "id": "audit",
                    "when": "role == 'PHARMACIST'",
                    "then_expr": "{action: 'SHOW', note: 'pharmacist ' + pin}",
                },
            ],
        }
    )


def bulk_topic(number: int) -> str:
    """A topic that bulk_route_table(number) matches."""
    return f"dom{number // 200}.ent{number // 10 % 20}.evt{number % 10}"


def bulk_table_name(number: int) -> str:
    return f"bench.table-{number:05d}"


def bulk_route_table(number: int) -> str:
    """One of the 10,000 route tables: literal and wildcard topics of other domains (none matches MESSAGE's topic)."""
    domain, entity = number // 200, number // 10 % 20
    shape = number % 10
    if shape < 7:
        pattern = bulk_topic(number)
    elif shape < 9:
        pattern = f"dom{domain}.ent{entity}.*"
    else:
        pattern = f"dom{domain}.#"
    systems = [
        {"system": "primary", "selected": True, "target": f"t{number}.primary", "priority": 10},
        {"system": "tagged", "selected": True, "target": f"t{number}.tagged", "tags": "PAID || REFUNDED"},
        {"system": "gray", "selected": True, "target": f"t{number}.gray", "gray": {"percent": 50}},
        {"system": "off", "selected": False, "target": f"t{number}.off"},
    ]
    return _json({"kind": "RouteTable", "name": bulk_table_name(number), "topic": pattern, "systems": systems})


def struct_of(values: dict) -> Struct:
    struct = Struct()
    struct.update(values)
    return struct


def evaluate_request(rule_set: str) -> bytes:
    return decision_pb2.EvaluateRequest(rule_set=rule_set, facts=struct_of(FACTS)).SerializeToString()


def batch_request(rule_set: str, size: int) -> bytes:
    facts = [struct_of(FACTS) for _ in range(size)]
    return decision_pb2.EvaluateBatchRequest(rule_set=rule_set, facts=facts).SerializeToString()


def route_request() -> bytes:
    return decision_pb2.RouteRequest(
        topic=MESSAGE["topic"],
        tags=MESSAGE["tags"],
        key=MESSAGE["key"],
        properties=MESSAGE["properties"],
        body_json=struct_of(MESSAGE["body"]),
    ).SerializeToString()


def echo_request(values: dict) -> bytes:
    """The floor's request: a Struct holding the same values as the Verdict request it is compared with."""
    return struct_of(values).SerializeToString()


def _json(document: dict) -> str:
    return json.dumps(document, indent=1)
