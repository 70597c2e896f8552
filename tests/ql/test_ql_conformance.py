"""Every QLExpress 4 conformance vector (tests/ql/cases.jsonl, format: ql-spec §14) through a bare ql.Engine().

A vector listed in docs/ql-compat.md ("Conformance vectors QL does not follow") must still deviate; every other
vector must pass. So the documented list and the behaviour cannot drift apart.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ql_vectors import outcome

HERE = Path(__file__).parent
CASES = [json.loads(line) for line in (HERE / "cases.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
COMPAT = HERE.parents[1] / "docs" / "ql-compat.md"


def documented_deviations() -> dict[str, str]:
    """Vector id -> reason, from the first table of docs/ql-compat.md."""
    text = COMPAT.read_text(encoding="utf-8")
    section = text.split("## Conformance vectors QL does not follow", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([a-z]+-\d+) \|(.*)\|\s*$", section, flags=re.MULTILINE)
    return {vector: reason.strip() for vector, reason in rows}


DEVIATIONS = documented_deviations()


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_vector(case: dict[str, Any]) -> None:
    problem = outcome(case)
    if case["id"] in DEVIATIONS:
        assert problem is not None, f"{case['id']} now passes: remove it from docs/ql-compat.md"
    else:
        assert problem is None, f"{case['id']}: {problem}\n{case['expr']}"


def test_documented_deviations_exist_and_are_few() -> None:
    ids = {case["id"] for case in CASES}
    assert set(DEVIATIONS) <= ids, "docs/ql-compat.md lists vectors that are not in cases.jsonl"
    assert all(DEVIATIONS.values()), "every deviation needs its reason"
    assert len(CASES) >= 300
    passing = len(CASES) - len(DEVIATIONS)
    assert passing / len(CASES) >= 0.98
