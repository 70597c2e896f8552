"""What an evaluation answers: decisions, failures and the explain trace, as plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Hit policies: how the matching rules make one result.
FIRST = "first"  # the first matching rule in listed order
PRIORITY = "priority"  # the first matching rule by priority (highest first), ties in listed order
COLLECT = "collect"  # a list of every matching rule's result, in listed order
UNIQUE = "unique"  # at most one rule may match; two matches are a failure
HIT_POLICIES = (FIRST, PRIORITY, COLLECT, UNIQUE)

# What a failure does to the answer.
ON_ERROR_DEFAULT = "default"  # answer the default result, flagged degraded, with the failure attached
ON_ERROR_FAIL = "fail"  # the evaluation raises RuleSetFailure
ON_ERROR_MODES = (ON_ERROR_DEFAULT, ON_ERROR_FAIL)

# Failure codes of the rules layer; QL failures keep their QL error code (SCRIPT_TIME_OUT, INVALID_BINARY_OPERAND, ...).
CONDITION_BOOL_REQUIRED = "CONDITION_BOOL_REQUIRED"  # `when` gave something other than true, false or null
UNIQUE_VIOLATION = "UNIQUE_VIOLATION"  # hit policy unique and more than one rule matched
INVALID_RESULT = "INVALID_RESULT"  # a QL result that is not JSON-like (a lambda, a non-string map key, too deep)
SCRIPT_TIME_OUT = "SCRIPT_TIME_OUT"  # the rule set's timeout_ms budget ran out


@dataclass(frozen=True, slots=True)
class EvalFailure:
    """Why an evaluation could not decide. line/column are 1-based in the failing rule's QL source; 0 = unknown."""

    code: str
    message: str
    rule_id: str = ""
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        where = f" at line {self.line}, column {self.column}" if self.line else ""
        return f"{self.code}: {self.message}{where}"


@dataclass(frozen=True, slots=True)
class RuleTraceEntry:
    """One rule's part in an explained decision. `condition` is the value of `when` (true when the rule has none)."""

    rule_id: str
    evaluated: bool
    matched: bool = False
    condition: Any = None
    error: EvalFailure | None = None
    note: str = ""


@dataclass(slots=True)
class Decision:
    """The answer for one facts map. `result` is a fresh plain value the caller owns and may change freely.

    Not frozen: one is made per evaluation and never shared, and a frozen dataclass costs about 1 µs more to build
    (an eighth of a whole evaluation of a typical rule set).
    """

    result: Any
    matched_rules: tuple[str, ...] = ()
    degraded: bool = False
    error: EvalFailure | None = None
    trace: tuple[RuleTraceEntry, ...] = ()
    defaulted: bool = False  # the result is the rule set's `default` (no rule matched, or a failure degraded)


class RuleSetFailure(Exception):
    """Raised by evaluate() when a rule set with `on_error: fail` cannot decide."""

    def __init__(self, failure: EvalFailure) -> None:
        self.failure = failure
        super().__init__(str(failure))
