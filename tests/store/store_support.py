"""Helpers the store test modules import (conftest.py holds the fixtures)."""

from __future__ import annotations


def rule_set(name: str, marker: str = "v") -> str:
    return f"kind: RuleSet\nname: {name}\ndefault: {{note: {marker}}}\nrules: []\n"
