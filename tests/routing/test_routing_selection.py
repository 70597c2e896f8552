"""set_selection rewrites one system's `selected` value in the text, keeping comments and layout."""

from __future__ import annotations

import json

import pytest

from verdict_server.document import DocumentInvalid, load_document
from verdict_server.routing import SystemNotFound, set_selection

YAML = """\
# Order events, owned by the order team.
kind: RouteTable
name: order-events
topic: order.status.*
systems:
  - system: settlement      # money first
    selected: true          # switched on 2026-11-02
    target: settlement.order.status
    priority: 10
  - system: crm
    target: crm.order.status
    tags: "PAID || REFUNDED"
  - {system: audit, target: audit.in, selected: false}
  - system: pharmacy
    selected:
    target: pharmacy.order.status
"""


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    return [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b]


def test_flips_an_existing_value_and_nothing_else():
    after = set_selection(YAML, "settlement", False)
    assert after == YAML.replace("selected: true          #", "selected: false          #")
    assert load_document(after).data["systems"][0]["selected"] is False


def test_setting_the_current_value_leaves_the_text_unchanged():
    assert set_selection(YAML, "settlement", True) == YAML


def test_inserts_the_key_under_the_system_line_when_absent():
    after = set_selection(YAML, "crm", True)
    assert after == YAML.replace("  - system: crm\n", "  - system: crm\n    selected: true\n")


def test_flow_mapping_and_empty_value():
    after = set_selection(YAML, "audit", True)
    assert changed_lines(YAML, after) == [
        (
            "  - {system: audit, target: audit.in, selected: false}",
            "  - {system: audit, target: audit.in, selected: true}",
        )
    ]
    after = set_selection(YAML, "pharmacy", True)
    assert changed_lines(YAML, after) == [("    selected:", "    selected: true")]


def test_json_documents_stay_json():
    text = json.dumps(
        {
            "kind": "RouteTable",
            "name": "t",
            "topic": "a.#",
            "systems": [{"system": "x", "target": "x.in"}, {"system": "y", "target": "y.in", "selected": True}],
        },
        indent=2,
    )
    after = set_selection(set_selection(text, "x", True), "y", False)
    data = json.loads(after)
    assert [s["selected"] for s in data["systems"]] == [True, False]


def test_windows_line_endings_are_kept():
    text = YAML.replace("\n", "\r\n")
    after = set_selection(text, "crm", False)
    assert "\r\n    selected: false\r\n" in after
    assert "\n" not in after.replace("\r\n", "")


def test_non_ascii_text_before_the_value():
    text = YAML.replace("money first", "结算优先 😀")
    after = set_selection(text, "settlement", False)
    assert load_document(after).data["systems"][0]["selected"] is False
    assert "结算优先 😀" in after


def test_unknown_system():
    with pytest.raises(SystemNotFound, match="no system 'billing'"):
        set_selection(YAML, "billing", True)


def test_invalid_text_is_reported_not_rewritten():
    with pytest.raises(DocumentInvalid):
        set_selection("kind: RouteTable\nname: [", "crm", True)
