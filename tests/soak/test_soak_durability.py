"""Issue 8's full durability experiment: 1,000 acknowledged writes from concurrent admin clients, with the server
SIGKILLed ten times at random moments. The default run does a 150-write share (tests/reliability/test_durability.py).

    VERDICT_SOAK=1 .venv/bin/python -m pytest tests/soak -m soak
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from harness import ROOT
from reliability.durability import durability_violations, run_writes_with_kills

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(os.environ.get("VERDICT_SOAK") != "1", reason="soak test: run with VERDICT_SOAK=1"),
]

WRITES = 1_000
KILLS = 10
OUT_DIR = Path(os.environ.get("VERDICT_SOAK_OUT_DIR", ROOT / "benchmarks" / "out"))


def test_a_thousand_acknowledged_writes_survive_ten_sigkills(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    started = time.monotonic()
    log = run_writes_with_kills(data_dir, writes=WRITES, kills=KILLS, writers=6, documents=5, seed=1000)
    violations = durability_violations(data_dir, log)
    summary = {
        "acknowledged_writes": len(log.acked),
        "attempted_writes": len(log.attempts),
        "answers_lost_to_kills": log.lost_answers,
        "kills": log.kills,
        "violations": violations,
        "seconds": round(time.monotonic() - started, 1),
    }
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "soak-durability.json").write_text(json.dumps(summary, indent=2) + "\n")
    assert log.kills == KILLS
    assert len(log.acked) >= WRITES
    assert violations == []
