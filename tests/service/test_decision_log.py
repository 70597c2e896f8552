from __future__ import annotations

import json
from pathlib import Path

from verdict_server.service.decision_log import MASK, DecisionLog, mask


def test_mask_replaces_names_at_any_depth_and_dotted_paths_without_touching_the_input() -> None:
    facts = {"pin": "u1", "patient": {"phone": "138", "age": 3, "pin": "u2"}, "phone": "keep"}
    masked = mask(facts, frozenset({"pin", "patient.phone"}))
    assert masked == {"pin": MASK, "patient": {"phone": MASK, "age": 3, "pin": MASK}, "phone": "keep"}
    assert facts["pin"] == "u1" and facts["patient"]["phone"] == "138"


def test_log_lines_are_json_with_masked_facts(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    log = DecisionLog(str(path), masked=frozenset({"pin"}))
    log.write({"decision_id": "d-1", "facts": {"pin": "secret", "n": 1}})
    log.close()
    (entry,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert entry == {"decision_id": "d-1", "facts": {"pin": MASK, "n": 1}}
    assert "secret" not in path.read_text()


def test_sampling_keeps_about_the_configured_fraction(tmp_path: Path) -> None:
    log = DecisionLog(str(tmp_path / "d.jsonl"), sample=0.25)
    kept = sum(log.sampled() for _ in range(4000))
    log.close()
    assert 800 < kept < 1200
    assert not any(DecisionLog(str(tmp_path / "e.jsonl"), sample=0.0).sampled() for _ in range(100))


def test_a_masked_value_copied_into_the_result_is_scrubbed(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    log = DecisionLog(str(path), masked=frozenset({"pin", "patient.phone"}))
    log.write(
        {
            "result": {"note": 'pharmacist pin-"4711"', "call": "13800000000"},
            "facts": {"pin": 'pin-"4711"', "patient": {"phone": 13800000000}, "n": 7},
        }
    )
    log.close()
    text = path.read_text()
    assert "4711" not in text and "13800000000" not in text
    assert json.loads(text)["result"] == {"note": f"pharmacist {MASK}", "call": MASK}
