"""Fixtures for the in-process rule-set tests: the engine the service uses, and a compile-from-text helper."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from verdict_server import ql
from verdict_server.document import DocumentInvalid, Problem, load_document
from verdict_server.rules import CompiledRuleSet, compile_rule_set


@pytest.fixture(scope="session")
def engine() -> ql.Engine:
    return ql.Engine(stdlib=True)


@pytest.fixture
def compile_text(engine: ql.Engine) -> Callable[..., CompiledRuleSet]:
    """Compiles a RuleSet document written as an indented triple-quoted string."""

    def compile_text(text: str, version: int = 1) -> CompiledRuleSet:
        return compile_rule_set(load_document(textwrap.dedent(text)), engine, version)

    return compile_text


@pytest.fixture
def problems_of(compile_text: Callable[..., CompiledRuleSet]) -> Callable[[str], list[Problem]]:
    """The problems a document is rejected with (the test fails if it compiles)."""

    def problems_of(text: str) -> list[Problem]:
        with pytest.raises(DocumentInvalid) as caught:
            compile_text(text)
        return caught.value.problems

    return problems_of


@pytest.fixture(scope="session")
def compile_text_cached(engine: ql.Engine) -> Callable[[str], CompiledRuleSet]:
    """compile_text for property tests: each distinct text is compiled once per session (compiled sets are immutable)."""
    compiled: dict[str, CompiledRuleSet] = {}

    def compile_text(text: str) -> CompiledRuleSet:
        if text not in compiled:
            compiled[text] = compile_rule_set(load_document(textwrap.dedent(text)), engine, 1)
        return compiled[text]

    return compile_text
