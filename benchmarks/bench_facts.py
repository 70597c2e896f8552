"""Facts conversion on the Evaluate hot path: the direct walk (service/facts.py) against json_format.MessageToDict.

    .venv/bin/python benchmarks/bench_facts.py [--quick]

Prints µs per call and the ratios, all measured in the same run (the machine is shared; absolute times drift).
"""

from __future__ import annotations

import sys
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


def run(quick: bool = False) -> dict:
    """Entry point for benchmarks/run.py: µs per call of each way, and the printed lines under "text"."""
    number, repeat = (5_000, 3) if quick else (20_000, 7)
    struct = Struct()
    struct.update(FACTS)
    found = {
        "MessageToDict (10 facts)": measure(lambda: json_format.MessageToDict(struct), number, repeat),
        "struct_to_dict (10 facts)": measure(lambda: struct_to_dict(struct), number, repeat),
        "select_facts (4 of 10 facts)": measure(lambda: select_facts(struct, READ_BY_RULES), number, repeat),
    }
    floor = found["MessageToDict (10 facts)"]
    text = "\n".join(f"{name:<32} {us:7.2f} µs   {us / floor:.2f}x" for name, us in found.items())
    return {"us_per_call": found, "text": text}


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    print(run(quick)["text"])


if __name__ == "__main__":
    main()
