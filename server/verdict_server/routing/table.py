"""Route-table documents: validation (every problem at once, with positions) and compilation.

A compiled table holds everything the router needs, already parsed: the topic pattern, each system's tag filter,
gray rule and compiled QL condition, and the systems in the order they are checked (priority, highest first, then
the order they are listed in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import ql
from ..document import NAME_PATTERN, ROUTE_TABLE, ProblemCollector, SourceDocument, join_path, type_name
from ..ql.errors import QLError
from .gray import BY_KEY, GrayRule, gray_salt, valid_by
from .tags import TagExpressionError, TagFilter
from .topics import TopicPattern, TopicPatternError

MODE_ALL = "all"
MODE_FIRST = "first"
MODES = (MODE_ALL, MODE_FIRST)
DEFAULT_TIMEOUT_MS = 20
MAX_TIMEOUT_MS = 1000
MAX_SYSTEMS = 1000
INT32 = (-(2**31), 2**31 - 1)
CONDITION_VARIABLES = frozenset({"topic", "tags", "key", "properties", "body"})

TABLE_FIELDS = ("kind", "name", "description", "topic", "mode", "timeout_ms", "systems")
SYSTEM_FIELDS = ("system", "description", "selected", "target", "tags", "when", "gray", "priority")
GRAY_FIELDS = ("percent", "by", "allow", "deny")


@dataclass(frozen=True)
class Condition:
    source: str
    program: Any  # ql Program
    reads_body: bool
    path: str  # where the source stands in the document, to report runtime errors at document positions


@dataclass(frozen=True)
class CompiledSystem:
    system: str
    target: str
    selected: bool
    priority: int
    tags: TagFilter
    gray: GrayRule | None
    condition: Condition | None
    description: str = ""


@dataclass(frozen=True)
class CompiledRouteTable:
    name: str
    version: int
    topic: str
    pattern: TopicPattern
    mode: str
    systems: tuple[CompiledSystem, ...]  # in checking order: priority descending, then listed order
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    description: str = ""
    document: SourceDocument | None = field(default=None, repr=False, compare=False)

    def system(self, name: str) -> CompiledSystem | None:
        return next((s for s in self.systems if s.system == name), None)


def compile_route_table(doc: SourceDocument, engine: ql.Engine, version: int) -> CompiledRouteTable:
    """Validates and compiles a RouteTable document; raises DocumentInvalid listing every problem found."""
    problems = ProblemCollector(doc)
    if doc.kind != ROUTE_TABLE:
        problems.add("kind", f"expected kind {ROUTE_TABLE}, got {doc.kind!r}")
        problems.raise_if_any()
    data = doc.data
    problems.unknown_fields(data, "", TABLE_FIELDS)
    description = problems.field(data, "", "description", str, default="")
    pattern = _topic_pattern(problems, data)
    mode = _mode(problems, data)
    timeout_ms = _timeout(problems, data)
    raw_systems = problems.field(data, "", "systems", list, required=True, default=[])
    if isinstance(data.get("systems"), list) and not raw_systems:
        problems.add("systems", "a route table needs at least one system")
    if len(raw_systems) > MAX_SYSTEMS:
        problems.add("systems", f"a route table has at most {MAX_SYSTEMS} systems, got {len(raw_systems)}")
    builder = _SystemBuilder(problems, engine, doc.name)
    systems = [builder.build(raw, f"systems[{i}]") for i, raw in enumerate(raw_systems[:MAX_SYSTEMS])]
    problems.raise_if_any()
    ordered = sorted(systems, key=lambda s: -s.priority)  # sorted() is stable: ties keep the listed order
    return CompiledRouteTable(
        name=doc.name,
        version=version,
        topic=pattern.text,
        pattern=pattern,
        mode=mode,
        systems=tuple(ordered),
        timeout_ms=timeout_ms,
        description=description,
        document=doc,
    )


def _topic_pattern(problems: ProblemCollector, data: dict[str, Any]) -> TopicPattern:
    text = problems.field(data, "", "topic", str, required=True)
    if text is None:
        return TopicPattern("#", ("#",))
    try:
        return TopicPattern.parse(text)
    except TopicPatternError as err:
        problems.add("topic", f"invalid topic pattern {text!r}: {err}")
        return TopicPattern("#", ("#",))


def _mode(problems: ProblemCollector, data: dict[str, Any]) -> str:
    mode = problems.field(data, "", "mode", str, default=MODE_ALL)
    if mode not in MODES:
        problems.add("mode", f"'mode' must be {' or '.join(MODES)}, got {mode!r}")
        return MODE_ALL
    return mode


def _timeout(problems: ProblemCollector, data: dict[str, Any]) -> int:
    timeout_ms = problems.field(data, "", "timeout_ms", int, default=DEFAULT_TIMEOUT_MS)
    if not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
        problems.add("timeout_ms", f"'timeout_ms' must be between 1 and {MAX_TIMEOUT_MS}, got {timeout_ms}")
        return DEFAULT_TIMEOUT_MS
    return timeout_ms


class _SystemBuilder:
    """Validates and compiles one entry of `systems` after another, remembering names to reject duplicates."""

    def __init__(self, problems: ProblemCollector, engine: ql.Engine, table: str) -> None:
        self.problems = problems
        self.engine = engine
        self.table = table
        self.seen: set[str] = set()

    def build(self, raw: Any, path: str) -> CompiledSystem:
        entry = self.problems.mapping(raw, path) or {}
        if "enabled" in entry:
            self.problems.add(
                join_path(path, "enabled"),
                "there is no 'enabled': a system's one switch is 'selected' (true to receive messages)",
            )
        self.problems.unknown_fields(entry, path, (*SYSTEM_FIELDS, "enabled"))
        name = self._name(entry, path)
        return CompiledSystem(
            system=name,
            target=self._target(entry, path),
            selected=self.problems.field(entry, path, "selected", bool, default=False),
            priority=self._priority(entry, path),
            tags=self._tags(entry, path),
            gray=self._gray(entry, path, name),
            condition=self._condition(entry, path),
            description=self.problems.field(entry, path, "description", str, default=""),
        )

    def _name(self, entry: dict[str, Any], path: str) -> str:
        name = self.problems.field(entry, path, "system", str, required=True, default="")
        if name and not NAME_PATTERN.match(name):
            self.problems.add(
                join_path(path, "system"),
                "'system' must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        elif name in self.seen:
            self.problems.add(join_path(path, "system"), f"system '{name}' is listed twice")
        self.seen.add(name)
        return name

    def _target(self, entry: dict[str, Any], path: str) -> str:
        target = self.problems.field(entry, path, "target", str, required=True, default="")
        if "target" in entry and isinstance(entry["target"], str) and not target.strip():
            self.problems.add(join_path(path, "target"), "'target' must not be empty")
        return target

    def _priority(self, entry: dict[str, Any], path: str) -> int:
        priority = self.problems.field(entry, path, "priority", int, default=0)
        low, high = INT32
        if not low <= priority <= high:
            self.problems.add(join_path(path, "priority"), f"'priority' must be between {low} and {high}")
            return 0
        return priority

    def _tags(self, entry: dict[str, Any], path: str) -> TagFilter:
        text = self.problems.field(entry, path, "tags", str)
        try:
            return TagFilter.parse(text)
        except TagExpressionError as err:
            self.problems.add(join_path(path, "tags"), f"invalid tag expression {text!r}: {err}")
            return TagFilter.parse(None)

    def _gray(self, entry: dict[str, Any], path: str, system: str) -> GrayRule | None:
        raw = self.problems.field(entry, path, "gray", dict)
        if raw is None:
            return None
        gray_path = join_path(path, "gray")
        self.problems.unknown_fields(raw, gray_path, GRAY_FIELDS)
        percent = self.problems.field(raw, gray_path, "percent", (int, float), required=True, default=100)
        if not 0 <= percent <= 100:
            self.problems.add(join_path(gray_path, "percent"), f"'percent' must be between 0 and 100, got {percent}")
        by = self.problems.field(raw, gray_path, "by", str, default=BY_KEY)
        if not valid_by(by):
            self.problems.add(join_path(gray_path, "by"), f"'by' must be 'key' or 'properties.NAME', got {by!r}")
        return GrayRule(
            percent=float(percent),
            by=by,
            allow=self._values(raw, gray_path, "allow"),
            deny=self._values(raw, gray_path, "deny"),
            salt=gray_salt(self.table, system),
        )

    def _values(self, raw: dict[str, Any], path: str, key: str) -> frozenset[str]:
        values = self.problems.field(raw, path, key, list, default=[])
        accepted = set()
        for i, value in enumerate(values):
            # Keys and properties are strings on the wire; a YAML author may write a numeric pin without quotes.
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
                accepted.add(str(value))
            else:
                self.problems.add(f"{path}.{key}[{i}]", f"'{key}' entries must be strings, got {type_name(value)}")
        return frozenset(accepted)

    def _condition(self, entry: dict[str, Any], path: str) -> Condition | None:
        source = self.problems.field(entry, path, "when", str)
        if source is None:
            return None
        when_path = join_path(path, "when")
        if not source.strip():
            self.problems.add(when_path, "'when' is empty: leave it out to match every message")
            return None
        try:
            program = self.engine.compile(source)
        except QLError as err:
            self.problems.add_ql(when_path, f"condition does not compile: {err.reason}", err.code, err.line, err.column)
            return None
        unknown = sorted(set(program.free_variables) - CONDITION_VARIABLES)
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            self.problems.add(
                when_path,
                f"condition reads {names}, which a message does not have: a condition can read "
                "topic, tags, key, properties and body",
            )
        return Condition(source, program, "body" in program.free_variables, when_path)
