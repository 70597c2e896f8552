"""Rule sets: RuleSet documents checked and compiled once, then evaluated under a hit policy.

Imports only the QL engine and the document loader; the service, store and routing layers build on this one.
"""

from .compiled import BatchStopped, CompiledRuleSet
from .compiler import compile_rule_set
from .model import Decision, EvalFailure, RuleSetFailure, RuleTraceEntry

__all__ = [
    "BatchStopped",
    "CompiledRuleSet",
    "Decision",
    "EvalFailure",
    "RuleSetFailure",
    "RuleTraceEntry",
    "compile_rule_set",
]
