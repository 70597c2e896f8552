"""The example rule sets compile and decide as their comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from verdict_server.document import load_document
from verdict_server.ql.stdlib import hash_bucket
from verdict_server.rules import compile_rule_set

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rule-sets"


def _example(engine, name):
    path = EXAMPLES / f"{name}.yaml"
    doc = load_document(path.read_text(encoding="utf-8"))
    assert doc.name == name, "the file is named after its rule set"
    return compile_rule_set(doc, engine, 1)


def test_every_example_compiles(engine):
    paths = sorted(EXAMPLES.glob("*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        compile_rule_set(load_document(path.read_text(encoding="utf-8")), engine, 1)


@pytest.mark.parametrize(
    ("facts", "result", "matched"),
    [
        (
            {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1002, "pin": "p1"},
            {"action": "HIDE", "reason": "otc"},
            ("block-otc",),
        ),
        (
            {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 2001, "pin": "p1"},
            {"action": "SHOW", "note": "pharmacist p1"},
            ("audit",),
        ),
        (
            {"scene": "MEDICAL", "role": "PHARMACIST", "categoryId": 1001, "pin": "p2"},
            {"action": "SHOW", "note": "pharmacist p2"},
            ("audit",),
        ),
        ({"scene": "NON_MEDICAL", "role": "DOCTOR", "categoryId": 1001, "pin": "d1"}, {"action": "SHOW"}, ()),
    ],
)
def test_pharmacists_do_not_see_otc_categories_in_the_non_medical_scene(engine, facts, result, matched):
    decision = _example(engine, "pharmacist.otc_block").evaluate(facts)
    assert (decision.result, decision.matched_rules, decision.degraded) == (result, matched, False)


def test_the_pharmacist_rule_set_reads_only_the_facts_it_needs(engine):
    assert _example(engine, "pharmacist.otc_block").free_variables == {"scene", "role", "categoryId", "pin"}


@pytest.mark.parametrize(
    ("facts", "result"),
    [
        ({"role": "DOCTOR", "appVersion": "2.5.2"}, {"showGrabList": True}),
        ({"role": "DOCTOR", "appVersion": "2.10.0"}, {"showGrabList": True}),  # numeric, not string order
        ({"role": "DOCTOR", "appVersion": "3.0"}, {"showGrabList": True}),
        (
            {"role": "DOCTOR", "appVersion": "2.5.1"},
            {"showGrabList": False, "reason": "upgrade-required", "minVersion": "2.5.2"},
        ),
        (
            {"role": "DOCTOR", "appVersion": "2.4.10"},
            {"showGrabList": False, "reason": "upgrade-required", "minVersion": "2.5.2"},
        ),
        ({"role": "DOCTOR"}, {"showGrabList": False, "reason": "unknown-version"}),
        ({"role": "PHARMACIST", "appVersion": "9.9.9"}, {"showGrabList": False, "reason": "not-a-doctor"}),
    ],
)
def test_the_grab_list_needs_app_version_2_5_2(engine, facts, result):
    decision = _example(engine, "doctor.app_version_gate").evaluate(facts)
    assert decision.result == result and not decision.degraded


def test_a_malformed_app_version_degrades_to_the_default(engine):
    decision = _example(engine, "doctor.app_version_gate").evaluate({"role": "DOCTOR", "appVersion": "banana"})
    assert decision.degraded and decision.error.rule_id == "supported-version"
    assert decision.result == {"showGrabList": False, "reason": "not-a-doctor"}


def test_gray_release_takes_the_whitelist_and_a_stable_ten_percent(engine):
    rule_set = _example(engine, "gray.release")
    for pin in ("pin-alice", "pin-bob"):
        assert rule_set.evaluate({"pin": pin}).result == {"variant": "new", "why": "whitelist"}
    pins = [f"user-{n}" for n in range(1000)]
    chosen = {pin for pin in pins if rule_set.evaluate({"pin": pin}).result == {"variant": "new", "why": "percentage"}}
    assert chosen == {pin for pin in pins if hash_bucket(pin, 100) < 10}
    assert 50 < len(chosen) < 150
    assert all(rule_set.evaluate({"pin": pin}).result == {"variant": "stable"} for pin in set(pins[:100]) - chosen)
    assert rule_set.evaluate({}).result == {"variant": "stable"}
