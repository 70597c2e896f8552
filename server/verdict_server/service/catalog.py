"""The serving catalog: every stored document compiled once, published as one immutable snapshot at a time.

Requests read `catalog.snapshot` once and use only that object, so a request sees one consistent set of versions
while reloads build the next snapshot on the side and swap it in with a single assignment. A document that fails to
compile never replaces the good version already serving; the failure is kept in `load_errors` (and metrics).

A change costs what the changed documents cost: a store that tracks changes (SQLite, PostgreSQL) names the
(kind, name) written since the last reload, and only those are fetched and compiled; the AdminService hands over
what it compiled to validate a write (`install`), so the writing replica compiles nothing twice.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cachetools import LRUCache

from .. import ql
from ..document import ROUTE_TABLE, RULE_SET, DocumentInvalid, SourceDocument, load_document
from ..routing import CompiledRouteTable, RouteIndex, compile_route_table
from ..rules import CompiledRuleSet, compile_rule_set
from ..store import DocumentRecord, NotFound, Store
from ..store.record import TracksChanges

log = logging.getLogger(__name__)

Compiled = CompiledRuleSet | CompiledRouteTable
Key = tuple[str, str]
PINNED_CACHE_SIZE = 256  # old versions asked for by number; the active ones live in the snapshot
PINNED_CACHE_BYTES = 256 * 1024 * 1024  # ... and their estimated bytes (ql.program_bytes): a few 1,000-rule versions


@dataclass(frozen=True)
class LoadError:
    kind: str
    name: str
    version: int
    message: str


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of every active document, compiled."""

    generation: int
    marker: Any
    rule_sets: MappingProxyType[str, CompiledRuleSet]
    route_tables: tuple[CompiledRouteTable, ...]
    route_index: RouteIndex
    load_errors: tuple[LoadError, ...] = ()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Compiling allocates many long-lived objects, which makes the cyclic collector walk everything again and
    again: with it paused, a start with thousands of rule sets no longer slows down more than linearly."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def compile_document(text: str, engine: ql.Engine, version: int = 0) -> tuple[SourceDocument, Compiled]:
    """Parses and compiles a document of either kind; raises DocumentInvalid listing every problem."""
    doc = load_document(text)
    return doc, compile_parsed(doc, engine, version)


def compile_parsed(doc: SourceDocument, engine: ql.Engine, version: int = 0) -> Compiled:
    if doc.kind == RULE_SET:
        return compile_rule_set(doc, engine, version)
    return compile_route_table(doc, engine, version)


@dataclass
class _Compiled:
    record_version: int
    compiled: Compiled


class Catalog:
    """Owns the current Snapshot of a store and rebuilds it when the store changes."""

    def __init__(
        self,
        store: Store,
        engine: ql.Engine,
        on_reload: Callable[[Snapshot], None] | None = None,
        *,
        pinned_cache_bytes: int = PINNED_CACHE_BYTES,
    ) -> None:
        self.store = store
        self.engine = engine
        self._on_reload = on_reload
        self._lock = threading.Lock()  # one rebuild at a time; readers never take it
        self._compiled: dict[Key, _Compiled] = {}
        self._errors: dict[Key, LoadError] = {}
        self._rule_sets: dict[str, CompiledRuleSet] = {}  # what snapshot.rule_sets shows, read-only
        self._position: object | None = None  # where the store's change tracking stood at the last reload
        self._pinned: LRUCache = LRUCache(maxsize=pinned_cache_bytes, getsizeof=rule_set_bytes)
        self._pinned_lock = threading.Lock()
        self._pinned_compiling: dict[tuple[str, int], threading.Lock] = {}  # one compile per version at a time
        self.snapshot = Snapshot(0, None, MappingProxyType({}), (), RouteIndex(()))

    @property
    def loaded(self) -> bool:
        """The store was read at least once: there is something to serve."""
        return self.snapshot.generation > 0

    def reload(self, force: bool = False) -> bool:
        """Rebuilds the snapshot if the store's change marker moved (or force). Returns True when it swapped.

        Without force, and with a store that tracks changes, only the documents written since the last reload are
        read and compiled; otherwise every head is read (and only the changed ones compiled).
        """
        with self._lock:
            marker = self.store.change_marker()
            if not force and marker == self.snapshot.marker and self.loaded:
                return False
            position, changed = self._changes(fresh=force or not self.loaded)
            with _collector_paused():  # the snapshot's copies too: a collection would walk every compiled object
                if changed is None:
                    self._compile_all(self.store.heads())
                else:
                    self._compile_keys(changed)
                self._position = position
                self._publish(marker, changed)
        return True

    def install(self, record: DocumentRecord, compiled: Compiled | None) -> None:
        """Serve what the AdminService just wrote and compiled (None for a deletion), without reading it back.

        The marker is left alone, so the next poll still reads the change from the store (and finds it compiled).
        """
        key = (record.kind, record.name)
        with self._lock:
            current = self._compiled.get(key)
            if current is not None and current.record_version >= record.version:
                return  # a reload already brought this version, or a newer one
            if record.deleted or compiled is None:
                self._compiled.pop(key, None)
            else:
                self._compiled[key] = _Compiled(record.version, _at_version(compiled, record.version))
            self._errors.pop(key, None)
            self._publish(self.snapshot.marker, [key])

    def document(self, kind: str, name: str, version: int) -> SourceDocument | None:
        """The parsed source the snapshot keeps for (kind, name) at exactly `version` (route tables keep theirs)."""
        entry = self._compiled.get((kind, name))
        if entry is None or entry.record_version != version:
            return None
        return getattr(entry.compiled, "document", None)

    def _changes(self, fresh: bool) -> tuple[object | None, list[Key] | None]:
        if not isinstance(self.store, TracksChanges):
            return None, None
        return self.store.changes_since(None if fresh else self._position)

    def _compile_all(self, heads: list[DocumentRecord]) -> None:
        live = set()
        for record in heads:
            if not record.deleted:
                live.add((record.kind, record.name))
                self._compile_record(record)
        for key in set(self._compiled) - live:
            del self._compiled[key]
        for key in set(self._errors) - live:
            del self._errors[key]

    def _compile_keys(self, keys: list[Key]) -> None:
        for kind, name in keys:
            try:
                record = self.store.get(kind, name)
            except NotFound:  # deleted
                self._compiled.pop((kind, name), None)
                self._errors.pop((kind, name), None)
                continue
            self._compile_record(record)

    def _compile_record(self, record: DocumentRecord) -> None:
        key = (record.kind, record.name)
        current = self._compiled.get(key)
        if current is not None and current.record_version == record.version:
            return
        try:
            _, compiled = compile_document(record.content, self.engine, record.version)
        except DocumentInvalid as err:
            # Keep serving the last good version: a bad document must never take a rule set offline.
            self._errors[key] = LoadError(record.kind, record.name, record.version, str(err))
            log.error(
                "document %s/%s v%d does not compile, keeping the previous version: %s", *key, record.version, err
            )
            return
        self._errors.pop(key, None)
        self._compiled[key] = _Compiled(record.version, compiled)

    def _publish(self, marker: Any, changed: list[Key] | None) -> None:
        """Swap in the next snapshot. With `changed` given, only those entries are touched: the rule sets are a copy
        of the last map with them replaced, and the route index is rebuilt only if a route table is among them."""
        previous = self.snapshot
        if changed is None:
            rule_sets = {name: e.compiled for (kind, name), e in self._compiled.items() if kind == RULE_SET}
        else:
            rule_sets = self._rule_sets.copy()  # a dict's own copy: dict(MappingProxyType) goes key by key, 40x slower
            for kind, name in changed:
                entry = self._compiled.get((kind, name))
                if kind != RULE_SET:
                    continue
                if entry is None:
                    rule_sets.pop(name, None)
                else:
                    rule_sets[name] = entry.compiled
        if changed is None or any(kind == ROUTE_TABLE for kind, _ in changed):
            tables = [e.compiled for (kind, _), e in sorted(self._compiled.items()) if kind == ROUTE_TABLE]
            route_tables, route_index = tuple(tables), RouteIndex(tables)
        else:
            route_tables, route_index = previous.route_tables, previous.route_index
        self._rule_sets = rule_sets
        self.snapshot = Snapshot(
            generation=previous.generation + 1,
            marker=marker,
            rule_sets=MappingProxyType(rule_sets),
            route_tables=route_tables,
            route_index=route_index,
            load_errors=tuple(self._errors[key] for key in sorted(self._errors)),
        )
        if self._on_reload is not None:
            self._on_reload(self.snapshot)

    def rule_set(self, name: str, version: int = 0) -> CompiledRuleSet:
        """The active rule set, or a pinned older version (compiled on first use, then cached). Raises NotFound."""
        active = self.snapshot.rule_sets.get(name)
        if version == 0 or (active is not None and active.version == version):
            if active is None:
                raise NotFound(f"no rule set named '{name}'", kind=RULE_SET, name=name)
            return active
        return self._pinned_rule_set(name, version)

    def _pinned_rule_set(self, name: str, version: int) -> CompiledRuleSet:
        """Callers asking for the same old version at once wait for one compile instead of each doing their own."""
        key = (name, version)
        with self._pinned_lock:
            found = self._pinned.get(key)
            if found is not None:
                return found
            compiling = self._pinned_compiling.setdefault(key, threading.Lock())
        with compiling:
            with self._pinned_lock:
                found = self._pinned.get(key)
            if found is not None:
                return found
            try:
                compiled = self._compile_pinned(name, version)
            finally:
                with self._pinned_lock:
                    self._pinned_compiling.pop(key, None)
            with self._pinned_lock:
                if rule_set_bytes(compiled) <= self._pinned.maxsize:  # a larger one is served, not kept
                    while len(self._pinned) >= PINNED_CACHE_SIZE:
                        self._pinned.popitem()
                    self._pinned[key] = compiled
            return compiled

    def _compile_pinned(self, name: str, version: int) -> CompiledRuleSet:
        record = self.store.get(RULE_SET, name, version)
        if record.deleted:
            raise NotFound(
                f"version {version} of rule set '{name}' is a deletion record",
                kind=RULE_SET,
                name=name,
                version=version,
            )
        try:
            _, compiled = compile_document(record.content, self.engine, record.version)
        except DocumentInvalid as err:
            raise NotFound(
                f"version {version} of rule set '{name}' does not compile: {err}",
                kind=RULE_SET,
                name=name,
                version=version,
            ) from None
        return compiled


def _at_version(compiled: Compiled, version: int) -> Compiled:
    """The compiled document numbered as the version the store gave it (it was compiled before the write)."""
    if compiled.version == version:
        return compiled
    if dataclasses.is_dataclass(compiled):
        return dataclasses.replace(compiled, version=version)
    renumbered = copy.copy(compiled)  # shares the compiled rules: nothing in them changes after compiling
    renumbered.version = version
    return renumbered


def rule_set_bytes(compiled: CompiledRuleSet) -> int:
    """The estimated memory of a compiled rule set: its programs' (shared ones counted each time: an upper bound)."""
    programs = [program for rule in compiled.rules for program in (rule.when, rule.expression) if program is not None]
    return 4096 + sum(ql.program_bytes(program) for program in programs)
