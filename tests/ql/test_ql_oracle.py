"""The QLExpress 4 oracle vectors (tests/ql/oracle_seedA.jsonl): generated programs with the real QLExpress's answers.

Every vector either agrees with QLExpress or is listed in tests/ql/oracle_differences.json under a class whose
docs/ql-compat.md row says why QL differs. A difference that is not listed fails the test (it is a bug, or a new
deliberate difference to document), and so does a listed vector that now agrees (the list must stay true). The
terminal summary (tests/ql/conftest.py) prints agree / documented / open by class on every run.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ql_vectors import REPORT, outcome

HERE = Path(__file__).parent
CASES = [json.loads(line) for line in (HERE / "oracle_seedA.jsonl").read_text(encoding="utf-8").splitlines()]
DIFFERENCES = json.loads((HERE / "oracle_differences.json").read_text(encoding="utf-8"))
CLASSES: dict[str, dict[str, str]] = DIFFERENCES["classes"]
LISTED: dict[str, str] = DIFFERENCES["vectors"]
COMPAT = (HERE.parents[1] / "docs" / "ql-compat.md").read_text(encoding="utf-8")
MIN_AGREEMENT = 0.94  # 2,786 of 2,951 on 2026-12-03; every other vector is in a documented class

RESULTS = REPORT.setdefault(
    "oracle_seedA.jsonl", {"total": len(CASES), "agree": 0, "documented": Counter(), "open": []}
)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_oracle_vector(case: dict[str, Any]) -> None:
    problem = outcome(case)
    difference_class = LISTED.get(case["id"])
    if problem is None:
        RESULTS["agree"] += 1
        assert difference_class is None, (
            f"{case['id']} now agrees with QLExpress: remove it from oracle_differences.json"
        )
    elif difference_class is not None:
        RESULTS["documented"][difference_class] += 1
    else:
        RESULTS["open"].append(case["id"])
        pytest.fail(f"{case['id']} differs from QLExpress and no documented class covers it: {problem}\n{case['expr']}")


def test_every_class_names_its_compat_row() -> None:
    for name, spec in CLASSES.items():
        assert spec.get("why"), f"class {name} needs its reason"
        assert f"| {spec['compat']} |" in COMPAT, f"class {name}: docs/ql-compat.md has no row '{spec['compat']}'"
    assert set(LISTED.values()) <= set(CLASSES), "a vector names a class that is not defined"
    assert set(LISTED) <= {case["id"] for case in CASES}, "oracle_differences.json lists unknown vectors"


def test_agreement_stays_high() -> None:
    agreeing = len(CASES) - len(LISTED)
    assert agreeing / len(CASES) >= MIN_AGREEMENT
