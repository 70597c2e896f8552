"""docs/schemas/ruleset.schema.json says what the validator enforces: the same fields, choices and limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from verdict_server.document import NAME_PATTERN
from verdict_server.rules import spec
from verdict_server.rules.model import HIT_POLICIES, ON_ERROR_MODES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "ruleset.schema.json").read_text(encoding="utf-8"))
RULE = SCHEMA["$defs"]["rule"]


def test_the_schema_lists_exactly_the_fields_the_validator_accepts():
    assert set(SCHEMA["properties"]) == set(spec.TOP_LEVEL_FIELDS)
    assert set(RULE["properties"]) == set(spec.RULE_FIELDS)
    assert SCHEMA["additionalProperties"] is False and RULE["additionalProperties"] is False


def test_the_schema_has_the_validators_choices_defaults_and_limits():
    properties = SCHEMA["properties"]
    assert tuple(properties["hit_policy"]["enum"]) == HIT_POLICIES
    assert tuple(properties["on_error"]["enum"]) == ON_ERROR_MODES
    timeout = properties["timeout_ms"]
    assert (timeout["minimum"], timeout["maximum"], timeout["default"]) == (
        1,
        spec.MAX_TIMEOUT_MS,
        spec.DEFAULT_TIMEOUT_MS,
    )
    assert properties["rules"]["maxItems"] == spec.MAX_RULES
    assert properties["name"]["pattern"] == NAME_PATTERN.pattern == RULE["properties"]["id"]["pattern"]
    assert properties["constants"]["propertyNames"]["pattern"] == spec.CONSTANT_NAME.pattern


def test_the_examples_and_the_broken_documents_agree_with_the_schema():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    for path in sorted((ROOT / "examples" / "rule-sets").glob("*.yaml")):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text(encoding="utf-8")))) == [], path
    broken = [
        {"kind": "RuleSet", "name": "x"},
        {"kind": "RuleSet", "name": "x", "script": "1", "rules": [{"id": "a", "then": 1}]},
        {"kind": "RuleSet", "name": "x", "script": "1", "hit_policy": "first"},
        {"kind": "RuleSet", "name": "x", "rules": [{"id": "a", "then": 1, "then_expr": "1"}]},
        {"kind": "RuleSet", "name": "x", "rules": [{"id": "a"}]},
        {"kind": "RuleSet", "name": "x", "rules": [{"id": "a", "then": 1, "colour": "blue"}]},
        {"kind": "RuleSet", "name": "x", "timeout_ms": 0, "script": "1"},
        {"kind": "RuleSet", "name": "x", "constants": {"2bad": 1}, "script": "1"},
    ]
    for document in broken:
        assert not validator.is_valid(document), document
