"""Routing one message: which tables apply, and for each of their systems, deliver or skip (with the reason).

Every table whose topic pattern matches is applied (a message can fan out through several tables). Tables are
applied in name order; within a table, systems are checked in priority order (highest first, ties in listed order),
and each system goes through the checks cheapest first, stopping at the first that fails:

    selected -> tags -> gray -> when

so a switched-off, mistagged or out-of-rollout system never costs a QL run and never makes the body be parsed.
In mode `first` every system is still checked (so the answer explains each one), but only the first that passes is a
destination; the others that passed are skipped as NOT_FIRST.

Route is pure: the answer depends only on the message and the table versions. A QL run never modifies the context it
is given (a script that assigns works on its own copy), so all conditions share one context and none can change what
the next one sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..document import type_name
from ..ql.errors import QLError
from ..ql.runtime import describe
from .body import BodyError
from .table import MODE_FIRST, CompiledRouteTable, CompiledSystem, Condition
from .topics import TopicTrie

NOT_SELECTED = "NOT_SELECTED"
TAG_MISMATCH = "TAG_MISMATCH"
CONDITION_FALSE = "CONDITION_FALSE"
GRAY_EXCLUDED = "GRAY_EXCLUDED"
ERROR = "ERROR"
NOT_FIRST = "NOT_FIRST"
# Every condition of one Route call shares this budget (each also has its table's timeout_ms): past it, the conditions
# not yet run are skipped as ERROR, so that many tables of slow conditions cannot hold a server thread for long.
MAX_ROUTE_MS = 1_000


def _no_body() -> Any:
    return None


@dataclass(frozen=True)
class Message:
    topic: str
    tags: tuple[str, ...] = ()
    key: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    # Loads the body on demand; called at most once per route, and only if a condition that reads `body` runs.
    # It may raise BodyError.
    body: Callable[[], Any] = _no_body


@dataclass(frozen=True)
class Destination:
    system: str
    target: str
    priority: int
    table: str
    version: int


@dataclass(frozen=True)
class Skipped:
    system: str
    table: str
    version: int
    reason: str  # one of NOT_SELECTED, TAG_MISMATCH, CONDITION_FALSE, GRAY_EXCLUDED, ERROR, NOT_FIRST
    detail: str


@dataclass(frozen=True)
class RouteOutcome:
    destinations: tuple[Destination, ...]
    skipped: tuple[Skipped, ...]


class RouteIndex:
    """The route tables of one snapshot, indexed by topic pattern. Immutable; safe to share between threads."""

    def __init__(self, tables: Iterable[CompiledRouteTable]) -> None:
        self.tables: tuple[CompiledRouteTable, ...] = tuple(sorted(tables, key=lambda t: t.name))
        self._trie = TopicTrie((number, table.pattern) for number, table in enumerate(self.tables))

    def matching_tables(self, topic: str) -> list[CompiledRouteTable]:
        return [self.tables[number] for number in sorted(self._trie.match(topic))]

    def route(self, message: Message) -> RouteOutcome:
        return route_through(self.matching_tables(message.topic), message)


def route_through(tables: Iterable[CompiledRouteTable], message: Message) -> RouteOutcome:
    """Applies each of these tables (already known to match the topic) to the message, in the order given."""
    reading = _Reading(message)
    destinations: list[Destination] = []
    skipped: list[Skipped] = []
    for table in tables:
        _apply_table(table, reading, destinations, skipped)
    return RouteOutcome(tuple(destinations), tuple(skipped))


def _apply_table(
    table: CompiledRouteTable, reading: _Reading, destinations: list[Destination], skipped: list[Skipped]
) -> None:
    chosen: CompiledSystem | None = None
    for system in table.systems:
        refusal = _refusal(table, system, reading)
        if refusal is None and table.mode == MODE_FIRST and chosen is not None:
            refusal = (NOT_FIRST, f"mode first: '{chosen.system}' (priority {chosen.priority}) was chosen")
        if refusal is not None:
            reason, detail = refusal
            skipped.append(Skipped(system.system, table.name, table.version, reason, detail))
            continue
        chosen = chosen or system
        destinations.append(Destination(system.system, system.target, system.priority, table.name, table.version))


def _refusal(table: CompiledRouteTable, system: CompiledSystem, reading: _Reading) -> tuple[str, str] | None:
    """Why this system does not get the message (reason, detail), or None when it does."""
    message = reading.message
    if not system.selected:
        return NOT_SELECTED, "the system is not selected (its switch is off)"
    if not system.tags.matches(message.tags):
        shown = ", ".join(message.tags) if message.tags else "no tags"
        return TAG_MISMATCH, f"message tags ({shown}) do not match '{system.tags.text}'"
    if system.gray is not None:
        exclusion = system.gray.exclusion(message.key, message.properties)
        if exclusion is not None:
            return GRAY_EXCLUDED, exclusion
    if system.condition is not None:
        return _condition_refusal(table, system.condition, reading)
    return None


def _condition_refusal(table: CompiledRouteTable, condition: Condition, reading: _Reading) -> tuple[str, str] | None:
    try:
        context = reading.context(condition.reads_body)
    except BodyError as err:
        return ERROR, f"the condition reads body, which cannot be read: {err}"
    remaining_ms = reading.remaining_ms()
    if remaining_ms <= 0:
        return ERROR, f"not evaluated: the route's budget of {MAX_ROUTE_MS} ms ran out"
    try:
        result = condition.program.run(context, timeout_ms=min(table.timeout_ms, remaining_ms))
    except QLError as err:  # the engine turns every failure of a run into a QLError
        return ERROR, f"condition failed{_where(table, condition, err)}: {err.code}: {err.reason}"
    if result is True:
        return None
    if result is False:
        return CONDITION_FALSE, "the condition is false"
    if result is None:
        return CONDITION_FALSE, "the condition is null (counts as false)"
    return ERROR, f"the condition must give a boolean, got {type_name(result)} {describe(result)}"


def _where(table: CompiledRouteTable, condition: Condition, err: QLError) -> str:
    if err.line is None or table.document is None:
        return ""
    line, column = table.document.ql_position(condition.path, err.line, err.column or 1)
    return f" at line {line}, column {column} ({condition.path})"


class _Reading:
    """One message as conditions see it, with the body loaded at most once and only when first needed."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self._end = time.monotonic() + MAX_ROUTE_MS / 1000
        self._context: dict[str, Any] | None = None
        self._body_loaded = False
        self._loaded_body: Any = None
        self._body_error: BodyError | None = None

    def remaining_ms(self) -> float:
        return (self._end - time.monotonic()) * 1000

    def context(self, with_body: bool) -> dict[str, Any]:
        if self._context is None:
            message = self.message
            self._context = {
                "topic": message.topic,
                "tags": list(message.tags),
                "key": message.key,
                "properties": message.properties,
                "body": None,
            }
        if with_body:
            self._context["body"] = self._body()
        return self._context

    def _body(self) -> Any:
        if not self._body_loaded:
            self._body_loaded = True
            try:
                self._loaded_body = self.message.body()
            except BodyError as err:
                self._body_error = err
            except Exception as err:  # the loader is the caller's code; its failure must not fail the whole route
                self._body_error = BodyError(f"{type(err).__name__}: {err}")
        if self._body_error is not None:
            raise self._body_error
        return self._loaded_body
