"""Reading a RuleSet document into a checked, plain description of the rule set (no QL compiled yet).

Every structural problem is recorded in the ProblemCollector instead of raised, so the author sees all of them at
once; the compiler adds the QL problems to the same collector before anything is raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..document import NAME_PATTERN, RULE_SET, ProblemCollector, SourceDocument, join_path, type_name
from .model import FIRST, HIT_POLICIES, ON_ERROR_DEFAULT, ON_ERROR_MODES

DEFAULT_TIMEOUT_MS = 50
MAX_TIMEOUT_MS = 1_000  # one evaluation may hold a server thread at most this long (as for route tables)
MAX_RULES = 1_000
DEFAULT_MEMORY_MB = 64  # the memory budget of each QL run of the rule set (ql/budget.py)
MAX_MEMORY_MB = 1_024  # what a document may ask for; the server's --max-run-memory-mb may cap it lower

TOP_LEVEL_FIELDS = (
    "kind",
    "name",
    "description",
    "hit_policy",
    "default",
    "on_error",
    "timeout_ms",
    "memory_mb",
    "constants",
    "functions",
    "rules",
    "script",
)
RULE_FIELDS = ("id", "description", "priority", "enabled", "when", "then", "then_expr")

# A constant is read by QL as a variable, so its name must be one; `$` is allowed as in Java identifiers.
CONSTANT_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


@dataclass(frozen=True)
class RuleSpec:
    id: str
    path: str  # where the rule stands in the document ("rules[2]"), for QL problem positions
    priority: int = 0
    enabled: bool = True
    when: str | None = None  # QL; None = the rule always matches
    has_then: bool = False  # `then: null` is a valid literal result, so presence is tracked apart from the value
    then: Any = None
    then_expr: str | None = None


@dataclass(frozen=True)
class RuleSetSpec:
    name: str
    description: str
    hit_policy: str
    default: Any
    on_error: str
    timeout_ms: int
    memory_mb: int
    constants: dict[str, Any]
    functions: str | None
    rules: tuple[RuleSpec, ...]
    script: str | None  # when set, `rules` is empty: the script's value is the result


def read_rule_set(doc: SourceDocument, problems: ProblemCollector) -> RuleSetSpec:
    """The rule set described by doc; problems found are added to `problems` (the spec is then only best-effort)."""
    data = doc.data
    if doc.kind != RULE_SET:
        problems.add("kind", f"expected a {RULE_SET} document, got kind {doc.kind!r}")
    problems.unknown_fields(data, "", TOP_LEVEL_FIELDS)
    script = _ql_source(data, "", "script", problems)
    rules = _read_rules(data, problems)
    has_rules, has_script = data.get("rules") is not None, data.get("script") is not None
    if has_rules and has_script:
        problems.add("script", "give either 'rules' or 'script', not both")
    elif not has_rules and not has_script:
        problems.add("", "'rules' (a list of rules) or 'script' (one QL script) is required")
    hit_policy = _choice(data, problems, "hit_policy", HIT_POLICIES, FIRST)
    if has_script and data.get("hit_policy") is not None:
        problems.add("hit_policy", "'hit_policy' chooses among rules; a 'script' rule set has none")
    return RuleSetSpec(
        name=doc.name,
        description=problems.field(data, "", "description", str, default=""),
        hit_policy=hit_policy,
        default=data.get("default"),
        on_error=_choice(data, problems, "on_error", ON_ERROR_MODES, ON_ERROR_DEFAULT),
        timeout_ms=_timeout(data, problems),
        memory_mb=_memory(data, problems),
        constants=_constants(data, problems),
        functions=_ql_source(data, "", "functions", problems),
        rules=rules,
        script=script,
    )


def _choice(data: dict[str, Any], problems: ProblemCollector, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = problems.field(data, "", key, str, default=default)
    if value not in allowed:
        problems.add(key, f"'{key}' must be one of {', '.join(allowed)}, got {value!r}")
        return default
    return value


def _timeout(data: dict[str, Any], problems: ProblemCollector) -> int:
    value = _integer(data, "", "timeout_ms", problems, DEFAULT_TIMEOUT_MS)
    if not 1 <= value <= MAX_TIMEOUT_MS:
        problems.add("timeout_ms", f"'timeout_ms' must be between 1 and {MAX_TIMEOUT_MS}, got {value}")
        return DEFAULT_TIMEOUT_MS
    return value


def _memory(data: dict[str, Any], problems: ProblemCollector) -> int:
    value = _integer(data, "", "memory_mb", problems, DEFAULT_MEMORY_MB)
    if not 1 <= value <= MAX_MEMORY_MB:
        problems.add("memory_mb", f"'memory_mb' must be between 1 and {MAX_MEMORY_MB}, got {value}")
        return DEFAULT_MEMORY_MB
    return value


def _constants(data: dict[str, Any], problems: ProblemCollector) -> dict[str, Any]:
    constants = problems.field(data, "", "constants", dict, default={})
    for name in constants:
        if not CONSTANT_NAME.match(name):
            problems.add(
                join_path("constants", name),
                f"constant name {name!r} must be a QL identifier (letters, digits, '_' or '$', not starting with a digit)",
            )
    return constants


def _read_rules(data: dict[str, Any], problems: ProblemCollector) -> tuple[RuleSpec, ...]:
    items = problems.field(data, "", "rules", list, default=[])
    if isinstance(data.get("rules"), list) and not items:
        problems.add("rules", "'rules' must hold at least one rule (disable a rule with 'enabled: false' instead)")
    if len(items) > MAX_RULES:
        problems.add("rules", f"at most {MAX_RULES} rules per rule set, got {len(items)}")
        return ()
    rules = []
    first_seen: dict[str, str] = {}
    for index, item in enumerate(items):
        path = f"rules[{index}]"
        rule = problems.mapping(item, path)
        if rule is None:
            continue
        spec = _read_rule(rule, path, problems)
        if spec.id in first_seen:
            problems.add(join_path(path, "id"), f"duplicate rule id '{spec.id}' (first used at {first_seen[spec.id]})")
        elif spec.id:
            first_seen[spec.id] = path
        rules.append(spec)
    return tuple(rules)


def _read_rule(rule: dict[str, Any], path: str, problems: ProblemCollector) -> RuleSpec:
    problems.unknown_fields(rule, path, RULE_FIELDS)
    rule_id = problems.field(rule, path, "id", str, required=True, default="")
    if rule_id and not NAME_PATTERN.match(rule_id):
        problems.add(
            join_path(path, "id"),
            "rule 'id' must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    problems.field(rule, path, "description", str)
    has_then = "then" in rule  # `then: null` is a literal null result
    has_then_expr = rule.get("then_expr") is not None
    then_expr = _ql_source(rule, path, "then_expr", problems)
    if has_then and has_then_expr:
        problems.add(
            join_path(path, "then_expr"), "give either 'then' (a literal result) or 'then_expr' (QL), not both"
        )
    elif not has_then and not has_then_expr:
        problems.add(path, "a rule needs 'then' (a literal result) or 'then_expr' (a QL expression)")
    return RuleSpec(
        id=rule_id,
        path=path,
        priority=_integer(rule, path, "priority", problems, 0),
        enabled=problems.field(rule, path, "enabled", bool, default=True),
        when=_ql_source(rule, path, "when", problems),
        has_then=has_then,
        then=rule.get("then"),
        then_expr=then_expr,
    )


def _ql_source(mapping: dict[str, Any], path: str, key: str, problems: ProblemCollector) -> str | None:
    source = problems.field(mapping, path, key, str)
    if source is not None and not source.strip():
        problems.add(join_path(path, key), f"'{key}' is empty: write a QL expression or leave the field out")
        return None
    return source


def _integer(mapping: dict[str, Any], path: str, key: str, problems: ProblemCollector, default: int) -> int:
    value = mapping.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        shown = repr(value) if isinstance(value, float) else type_name(value)
        problems.add(join_path(path, key), f"'{key}' must be an integer, got {shown}")
        return default
    return value
