"""The serving catalog: every stored document compiled once, published as one immutable snapshot at a time.

Requests read `catalog.snapshot` once and use only that object, so a request sees one consistent set of versions
while reloads build the next snapshot on the side and swap it in with a single assignment. A document that fails to
compile never replaces the good version already serving; the failure is kept in `load_errors` (and metrics).
"""

from __future__ import annotations

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

log = logging.getLogger(__name__)

Compiled = CompiledRuleSet | CompiledRouteTable
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
    if doc.kind == RULE_SET:
        return doc, compile_rule_set(doc, engine, version)
    return doc, compile_route_table(doc, engine, version)


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
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._pinned: LRUCache = LRUCache(maxsize=pinned_cache_bytes, getsizeof=rule_set_bytes)
        self._pinned_lock = threading.Lock()
        self._pinned_compiling: dict[tuple[str, int], threading.Lock] = {}  # one compile per version at a time
        self.snapshot = Snapshot(0, None, MappingProxyType({}), (), RouteIndex(()))

    def reload(self, force: bool = False) -> bool:
        """Rebuilds the snapshot if the store's change marker moved (or force). Returns True when it swapped."""
        with self._lock:
            marker = self.store.change_marker()
            if not force and marker == self.snapshot.marker and self.snapshot.generation:
                return False
            heads = self.store.heads()
            with _collector_paused():
                errors = self._compile_changed(heads)
            self.snapshot = self._build_snapshot(marker, errors)
        if self._on_reload is not None:
            self._on_reload(self.snapshot)
        return True

    def _compile_changed(self, heads: list[DocumentRecord]) -> list[LoadError]:
        errors = []
        live = set()
        for record in heads:
            if record.deleted:
                continue
            key = (record.kind, record.name)
            live.add(key)
            current = self._compiled.get(key)
            if current is not None and current.record_version == record.version:
                continue
            try:
                _, compiled = compile_document(record.content, self.engine, record.version)
            except DocumentInvalid as err:
                # Keep serving the last good version: a bad document must never take a rule set offline.
                errors.append(LoadError(record.kind, record.name, record.version, str(err)))
                log.error(
                    "document %s/%s v%d does not compile, keeping the previous version: %s", *key, record.version, err
                )
                continue
            self._compiled[key] = _Compiled(record.version, compiled)
        for key in set(self._compiled) - live:
            del self._compiled[key]
        return errors

    def _build_snapshot(self, marker: Any, errors: list[LoadError]) -> Snapshot:
        rule_sets = {}
        tables = []
        for (kind, name), entry in sorted(self._compiled.items()):
            if kind == RULE_SET:
                rule_sets[name] = entry.compiled
            elif kind == ROUTE_TABLE:
                tables.append(entry.compiled)
        return Snapshot(
            generation=self.snapshot.generation + 1,
            marker=marker,
            rule_sets=MappingProxyType(rule_sets),
            route_tables=tuple(tables),
            route_index=RouteIndex(tables),
            load_errors=tuple(errors),
        )

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


def rule_set_bytes(compiled: CompiledRuleSet) -> int:
    """The estimated memory of a compiled rule set: its programs' (shared ones counted each time: an upper bound)."""
    programs = [program for rule in compiled.rules for program in (rule.when, rule.expression) if program is not None]
    return 4096 + sum(ql.program_bytes(program) for program in programs)
