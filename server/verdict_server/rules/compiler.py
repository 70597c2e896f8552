"""compile_rule_set: a RuleSet document to a CompiledRuleSet, or DocumentInvalid listing every problem at once.

The QL of a document is compiled here exactly once: `functions` first (their definitions are handed to every rule),
then each rule's `when` and `then_expr`, all with the document's `constants`. A QL error is reported at its position
in the document, translated from its position inside the QL text.
"""

from __future__ import annotations

from typing import Any

from ..document import ProblemCollector, SourceDocument, join_path
from ..ql import Engine, Program, QLError
from .compiled import CompiledRule, CompiledRuleSet
from .model import FIRST
from .spec import RuleSpec, read_rule_set
from .values import literal_result

# A `script:` rule set runs as one anonymous rule without a condition. The contract names no rule for it: its
# failures carry an empty rule_id, and it is never listed in matched_rules or the trace.
SCRIPT_RULE_ID = ""


class _QLCompiler:
    """Compiles the QL texts of one document with its shared constants and functions, recording every error."""

    def __init__(self, engine: Engine, problems: ProblemCollector, constants: dict[str, Any]) -> None:
        self.engine = engine
        self.problems = problems
        self.constants = constants
        self.functions: dict[str, Any] = {}
        self.free_variables: set[str] = set()

    def compile_functions(self, source: str | None) -> None:
        program = self._compile("functions", source)
        if program is None:
            return
        if program.free_variables:
            # A shared function is defined once, outside any evaluation: it never sees the facts, so a variable
            # that is neither a parameter nor a constant would always be null.
            names = ", ".join(sorted(program.free_variables))
            self.problems.add(
                "functions",
                f"functions can read only their parameters and the constants, not {names}: pass facts as arguments",
            )
        self.functions = dict(program.functions)

    def compile(self, path: str, source: str | None) -> Program | None:
        """The Program for the QL at path, or None (no source, or an error that is now a recorded problem)."""
        program = self._compile(path, source)
        if program is not None:
            self.free_variables.update(program.free_variables)
        return program

    def _compile(self, path: str, source: str | None) -> Program | None:
        if source is None:
            return None
        try:
            return self.engine.compile(source, functions=self.functions or None, constants=self.constants or None)
        except QLError as err:
            self.problems.add_ql(path, f"{err.code}: {err.reason}", err.code, err.line, err.column)
            return None


def compile_rule_set(doc: SourceDocument, engine: Engine, version: int) -> CompiledRuleSet:
    """Validates and compiles a RuleSet document. Raises DocumentInvalid with every problem, sorted by position."""
    problems = ProblemCollector(doc)
    spec = read_rule_set(doc, problems)
    ql = _QLCompiler(engine, problems, spec.constants)
    ql.compile_functions(spec.functions)
    if spec.script is not None:
        rules = (CompiledRule(SCRIPT_RULE_ID, 0, True, None, None, ql.compile("script", spec.script)),)
    else:
        rules = tuple(_compile_rule(rule, ql) for rule in spec.rules)
    problems.raise_if_any()
    return CompiledRuleSet(
        name=spec.name,
        version=version,
        description=spec.description,
        hit_policy=FIRST if spec.script is not None else spec.hit_policy,
        default=literal_result(spec.default),
        on_error=spec.on_error,
        timeout_ms=spec.timeout_ms,
        memory_bytes=spec.memory_mb * 1024 * 1024,
        rules=rules,
        free_variables=frozenset(ql.free_variables - spec.constants.keys()),
    )


def _compile_rule(rule: RuleSpec, ql: _QLCompiler) -> CompiledRule:
    # Disabled rules are compiled too: a rule that cannot compile must not wait to fail until someone enables it.
    return CompiledRule(
        id=rule.id,
        priority=rule.priority,
        enabled=rule.enabled,
        when=ql.compile(join_path(rule.path, "when"), rule.when),
        literal=literal_result(rule.then) if rule.has_then else None,
        expression=ql.compile(join_path(rule.path, "then_expr"), rule.then_expr),
    )
