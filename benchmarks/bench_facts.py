"""Facts conversion on the Evaluate hot path: the direct walk (service/facts.py) against json_format.MessageToDict.

    .venv/bin/python benchmarks/bench_facts.py

Prints µs per call and the ratios, all measured in the same run (the machine is shared; absolute times drift).
"""

from __future__ import annotations

import timeit

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from verdict_server.service.facts import select_facts, struct_to_dict

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
READ_BY_RULES = frozenset({"scene", "role", "categoryId", "pin"})


def measure(function, number: int = 20_000, repeat: int = 7) -> float:
    """Best of `repeat` runs, in µs per call: the least disturbed run on a noisy machine."""
    return min(timeit.repeat(function, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    struct = Struct()
    struct.update(FACTS)
    floor = measure(lambda: json_format.MessageToDict(struct))
    full = measure(lambda: struct_to_dict(struct))
    selected = measure(lambda: select_facts(struct, READ_BY_RULES))
    print(f"MessageToDict (10 facts)         {floor:7.2f} µs   1.00x")
    print(f"struct_to_dict (10 facts)        {full:7.2f} µs   {full / floor:.2f}x")
    print(f"select_facts (4 of 10 facts)     {selected:7.2f} µs   {selected / floor:.2f}x")


if __name__ == "__main__":
    main()
