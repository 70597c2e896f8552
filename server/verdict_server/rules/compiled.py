"""A compiled rule set: immutable after construction, shared by every thread, evaluated without any re-parse.

An evaluation runs in two steps: select the matching rules (the hit policy decides which conditions run and when to
stop), then produce the result from the selected rules. Any failure stops the evaluation; `on_error` decides whether
the caller gets the default result flagged as degraded, or a RuleSetFailure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..ql import Program, QLError
from ..ql.budget import DEFAULT_MEMORY_BYTES
from ..ql.runtime import describe
from .model import (
    COLLECT,
    CONDITION_BOOL_REQUIRED,
    FIRST,
    INVALID_RESULT,
    ON_ERROR_FAIL,
    PRIORITY,
    SCRIPT_TIME_OUT,
    UNIQUE,
    UNIQUE_VIOLATION,
    Decision,
    EvalFailure,
    RuleSetFailure,
    RuleTraceEntry,
)
from .values import NotPlain, plain

NO_CONDITION = True  # what the trace shows as the condition of a rule without `when`


class BatchStopped(Exception):
    """An EvaluateBatch stopped before its end: its deadline passed or its caller went away."""


class _Failed(Exception):
    """Internal: stops an evaluation and carries its EvalFailure to evaluate()."""

    def __init__(self, failure: EvalFailure) -> None:
        self.failure = failure


class _Deadline:
    """The timeout budget of one evaluation, shared by every QL program it runs, and each run's memory budget.
    A caller's own deadline (`until`, a time.monotonic() value) ends it earlier when it comes first."""

    __slots__ = ("_end", "_timeout_ms", "memory_bytes")

    def __init__(self, timeout_ms: int, memory_bytes: int, until: float | None = None) -> None:
        self._timeout_ms = timeout_ms
        self._end = time.monotonic() + timeout_ms / 1000
        if until is not None and until < self._end:
            self._end = until
        self.memory_bytes = memory_bytes

    def remaining_ms(self, rule_id: str) -> float:
        remaining = (self._end - time.monotonic()) * 1000
        if remaining <= 0:
            raise _Failed(
                EvalFailure(
                    SCRIPT_TIME_OUT, f"the rule set's timeout_ms budget of {self._timeout_ms} ms ran out", rule_id
                )
            )
        return remaining


def _run(program: Program, facts: dict[str, Any], deadline: _Deadline, rule_id: str) -> Any:
    """Runs one QL program within what is left of the evaluation's budget; any QL error becomes a _Failed."""
    try:
        return program.run(facts, timeout_ms=deadline.remaining_ms(rule_id), memory_bytes=deadline.memory_bytes)
    except QLError as err:
        raise _Failed(EvalFailure(err.code, err.reason, rule_id, err.line or 0, err.column or 0)) from None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    priority: int
    enabled: bool
    when: Program | None  # None: the rule always matches
    literal: Callable[[], Any] | None  # `then:` as a copy factory (see values.literal_result), or
    expression: Program | None  # `then_expr:` (or a `script:`)

    def condition(self, facts: dict[str, Any], deadline: _Deadline) -> Any:
        """The value of `when`: True, False or None (null counts as false); anything else is a failure."""
        if self.when is None:
            return NO_CONDITION
        value = _run(self.when, facts, deadline, self.id)
        if value is None or value is True or value is False:
            return value
        raise _Failed(
            EvalFailure(
                CONDITION_BOOL_REQUIRED,
                f"'when' must give true, false or null, got {type(value).__name__} {_shown(value)}",
                self.id,
            )
        )

    def result(self, facts: dict[str, Any], deadline: _Deadline) -> Any:
        if self.literal is not None:
            return self.literal()
        value = _run(self.expression, facts, deadline, self.id)
        try:
            return plain(value)
        except NotPlain as err:
            raise _Failed(EvalFailure(INVALID_RESULT, str(err), self.id)) from None


class CompiledRuleSet:
    """One (name, version) of a rule set, ready to evaluate. Thread-safe: nothing changes after __init__."""

    def __init__(
        self,
        *,
        name: str,
        version: int,
        description: str,
        hit_policy: str,
        default: Callable[[], Any],
        on_error: str,
        timeout_ms: int,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        rules: tuple[CompiledRule, ...],
        free_variables: frozenset[str],
    ) -> None:
        self.name = name
        self.version = version
        self.description = description
        self.hit_policy = hit_policy
        self.on_error = on_error
        self.timeout_ms = timeout_ms
        self.memory_bytes = memory_bytes
        self.rules = rules  # every rule, in document order (disabled ones too, for the trace)
        self.free_variables = free_variables
        self._default = default
        self._order = _evaluation_order(rules, hit_policy)

    def __repr__(self) -> str:
        return f"CompiledRuleSet({self.name!r}, version={self.version}, hit_policy={self.hit_policy!r})"

    def evaluate(self, facts: dict[str, Any], explain: bool = False, until: float | None = None) -> Decision:
        """The decision for one facts map. Raises RuleSetFailure only when the rule set says `on_error: fail`.
        `until` (a time.monotonic() value) is the caller's deadline, when it comes before timeout_ms runs out."""
        deadline = _Deadline(self.timeout_ms, self.memory_bytes, until)
        matched: list[CompiledRule] = []
        conditions: dict[str, Any] = {}  # rule id -> the value of its `when`, kept for the trace
        try:
            self._select(facts, deadline, matched, conditions)
            result = self._result(facts, deadline, matched)
        except _Failed as failed:
            return self._failed(failed.failure, matched, conditions, explain)
        trace = self._trace(matched, conditions, None) if explain else ()
        return Decision(result, tuple([rule.id for rule in matched if rule.id]), trace=trace, defaulted=not matched)

    def evaluate_many(
        self,
        facts_list: list[dict[str, Any]],
        explain: bool = False,
        until: float | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[Decision]:
        """One decision per facts map, each with its own timeout budget, all of them within the batch's deadline
        `until` (a time.monotonic() value): past it, or once `cancelled()` says so, BatchStopped is raised."""
        decisions = []
        for facts in facts_list:
            if until is not None and time.monotonic() >= until:
                raise BatchStopped(f"the batch deadline passed after {len(decisions)} of {len(facts_list)} decisions")
            if cancelled is not None and cancelled():
                raise BatchStopped(f"the call was cancelled after {len(decisions)} of {len(facts_list)} decisions")
            decisions.append(self.evaluate(facts, explain, until))
        return decisions

    # Selecting and producing --------------------------------------------------------------------------------------

    def _select(
        self, facts: dict[str, Any], deadline: _Deadline, matched: list[CompiledRule], conditions: dict[str, Any]
    ) -> None:
        stop_at_first = self.hit_policy in (FIRST, PRIORITY)
        for rule in self._order:
            value = rule.condition(facts, deadline)
            conditions[rule.id] = value
            if value is True:
                matched.append(rule)
                if stop_at_first:
                    return
        if self.hit_policy == UNIQUE and len(matched) > 1:
            ids = ", ".join(f"'{rule.id}'" for rule in matched)
            raise _Failed(
                EvalFailure(
                    UNIQUE_VIOLATION,
                    f"rules {ids} matched together; hit policy unique allows at most one",
                    matched[1].id,
                )
            )

    def _result(self, facts: dict[str, Any], deadline: _Deadline, matched: list[CompiledRule]) -> Any:
        if not matched:
            return self._default()
        if self.hit_policy == COLLECT:
            return [rule.result(facts, deadline) for rule in matched]
        return matched[0].result(facts, deadline)

    def _failed(
        self, failure: EvalFailure, matched: list[CompiledRule], conditions: dict[str, Any], explain: bool
    ) -> Decision:
        if self.on_error == ON_ERROR_FAIL:
            raise RuleSetFailure(failure)
        trace = self._trace(matched, conditions, failure) if explain else ()
        return Decision(self._default(), degraded=True, error=failure, trace=trace, defaulted=True)

    # Explaining ---------------------------------------------------------------------------------------------------

    def _trace(
        self, matched: list[CompiledRule], conditions: dict[str, Any], failure: EvalFailure | None
    ) -> tuple[RuleTraceEntry, ...]:
        """One entry per rule in document order: what its condition gave, or why it was not evaluated."""
        skipped_note = self._skipped_note(matched, failure)
        entries = []
        for rule in self.rules:
            if not rule.id:  # the anonymous rule of a `script:` rule set
                continue
            error = failure if failure is not None and failure.rule_id == rule.id else None
            if rule.id in conditions:
                condition = conditions[rule.id]
                entries.append(RuleTraceEntry(rule.id, True, condition is True, condition, error))
            elif not rule.enabled:
                entries.append(RuleTraceEntry(rule.id, False, note="disabled (enabled: false)"))
            elif error is not None:  # failed before its condition gave a value (a QL error or the timeout)
                entries.append(RuleTraceEntry(rule.id, True, error=error))
            else:
                entries.append(RuleTraceEntry(rule.id, False, note=skipped_note))
        return tuple(entries)

    def _skipped_note(self, matched: list[CompiledRule], failure: EvalFailure | None) -> str:
        if failure is not None:
            where = f"rule '{failure.rule_id}'" if failure.rule_id else "the rule set"
            return f"not evaluated: the evaluation stopped at {failure.code} in {where}"
        if matched:
            return f"not evaluated: rule '{matched[0].id}' matched first (hit policy {self.hit_policy})"
        return "not evaluated"


def _evaluation_order(rules: tuple[CompiledRule, ...], hit_policy: str) -> tuple[CompiledRule, ...]:
    enabled = [rule for rule in rules if rule.enabled]
    if hit_policy == PRIORITY:
        enabled.sort(key=lambda rule: -rule.priority)  # stable: equal priorities keep document order
    return tuple(enabled)


def _shown(value: Any) -> str:
    return describe(value, 60)
