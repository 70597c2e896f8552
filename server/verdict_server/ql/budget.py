"""The budget of one QL run: steps, a deadline and memory, all charged by the work the run does.

The promise (docs/reliability.md): a run stops within its timeout plus CLOCK_MARGIN_MS, builds at most its memory
budget, and no single step of it holds the process for more than a few milliseconds. Three counters keep it:

- steps: a loop iteration or a function call is one step (`tick`); a built-in that visits elements, scans characters
  or builds bytes charges one step per WORK_PER_STEP units of that work (`charge`), so a loop of expensive built-ins
  runs out as surely as a loop of cheap statements;
- the clock is read whenever the step counter passes a multiple of DEADLINE_CHECK_EVERY: by work done, never by
  statement count. Built-ins that may visit many elements do it in chunks of CHUNK, charging each chunk first;
- memory: every value a run builds (a string, a list, a map, a map entry) charges its size when it is built. The
  size of a container counts what it holds each time it appears (`a = [a, a]` doubles), so no value of a run is ever
  larger than its budget, and walking one (==, `in`, `*.`, printing, returning it) is bounded by construction. What a
  run builds is charged even when it drops it again, so the charge also bounds what it can hold at once.
  A container's size is measured when it is built (or first used, for facts) and then remembered; storing into a
  container charges what is stored and grows that container's remembered size, but not the sizes of containers that
  already hold it. Such a stale size can only understate what a value stands for, never what was allocated, and every
  walk over values (==, `in`, printing, `*.`, returning a result) charges its own work as it goes: it cannot stall.

Scripts without loops, functions or assignments run without a budget: every value they build is bounded by the
script's own size (each operator combines values its operands already had).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .errors import QLMemoryError, QLTimeoutError

DEFAULT_MAX_STEPS = 1_000_000
DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024
DEADLINE_CHECK_EVERY = 256  # steps between two reads of the clock
WORK_PER_STEP = 64  # elements or characters a built-in visits for the price of one step
CHUNK = 4096  # elements a built-in visits between two charges
CLOCK_MARGIN_MS = 20  # how far past its deadline a run may stop (documented; tests allow several times this)

# Sizes in bytes, close to CPython's on 64 bits: what a value costs where it appears.
SCALAR_BYTES = 32
STR_BYTES = 49  # plus one per character
LIST_BYTES, SLOT_BYTES = 56, 8  # a list, plus one slot per element
MAP_BYTES, ENTRY_BYTES = 64, 72  # a map, plus one entry (hash, key and value slots, index) per key
_SCALARS = frozenset({int, float, bool, type(None), Decimal})  # checked first: isinstance(x, Mapping) is slow


class RunState:
    """One run's budget. `sizes` remembers the measured size of the containers the run built or measured, by
    identity (holding them, so that the identity stays theirs)."""

    __slots__ = ("steps", "deadline", "max_steps", "memory", "max_memory", "sizes")

    def __init__(self, max_steps: int, deadline: float | None, memory_bytes: int | None = None) -> None:
        self.steps = max_steps
        self.max_steps = max_steps
        self.deadline = deadline
        self.max_memory = DEFAULT_MEMORY_BYTES if memory_bytes is None else memory_bytes
        self.memory = self.max_memory
        self.sizes: dict[int, tuple[Any, int]] | None = None

    def check(self) -> None:
        if self.steps <= 0:
            raise QLTimeoutError(f"script exceeded its budget of {self.max_steps} steps")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise QLTimeoutError("script timed out")

    def out_of_memory(self) -> QLMemoryError:
        return QLMemoryError(f"script built more than its memory budget of {self.max_memory} bytes")


class _State(threading.local):
    current: RunState | None = None


_state = _State()


def tick() -> None:
    """One step of a loop iteration or a function call: count it, and look at the clock now and then."""
    state = _state.current
    state.steps -= 1  # type: ignore[union-attr]
    if not state.steps % DEADLINE_CHECK_EVERY:  # type: ignore[union-attr]
        state.check()  # type: ignore[union-attr]


def charge(work: int) -> None:
    """A built-in's work (elements visited, characters scanned or built), charged to the steps before it is done."""
    state = _state.current
    if state is None:
        return
    before = state.steps
    after = before - 1 - work // WORK_PER_STEP
    state.steps = after
    if after <= 0 or before // DEADLINE_CHECK_EVERY != after // DEADLINE_CHECK_EVERY:
        state.check()


def charge_built(size: int) -> None:
    """A value of `size` bytes was built: charge the memory budget, and the work of building it."""
    state = _state.current
    if state is None:
        return
    state.memory -= size
    if state.memory < 0:
        raise state.out_of_memory()
    if size > WORK_PER_STEP * SLOT_BYTES:  # smaller values cost less than the step that built them
        charge(size // SLOT_BYTES)


def charge_string(text: str) -> str:
    """A built string: charged, then handed back (so helpers can `return charge_string(...)`)."""
    state = _state.current
    if state is not None:
        size = STR_BYTES + len(text)
        state.memory -= size
        if state.memory < 0:
            raise state.out_of_memory()
        if size > WORK_PER_STEP * SLOT_BYTES:
            charge(size // SLOT_BYTES)
    return text


def charge_value(value: Any) -> Any:
    """A value a built-in made (a list, a map or a string): its size charged, then handed back."""
    state = _state.current
    if state is not None:
        size = size_of(value, state)
        charge_built(size)
        _remember(state, value, size)
    return value


def new_list(items: list[Any]) -> list[Any]:
    """A list literal with computed elements (`[a, a]`): charged with what it holds, each time it appears."""
    state = _state.current
    if state is not None:
        size = LIST_BYTES + SLOT_BYTES * len(items)
        for item in items:
            size += SCALAR_BYTES if type(item) in _SCALARS else size_of(item, state)
        charge_built(size)
        _remember(state, items, size)
    return items


def new_map(entries: dict[Any, Any]) -> dict[Any, Any]:
    """A map literal with computed values: charged like new_list."""
    state = _state.current
    if state is not None:
        size = MAP_BYTES + ENTRY_BYTES * len(entries)
        for key, item in entries.items():
            size += size_of(key, state) + size_of(item, state)
        charge_built(size)
        _remember(state, entries, size)
    return entries


def stored(container: Any, key: Any, value: Any) -> None:
    """`container[key] = value` is about to happen: charge the value where it now also appears (see the module
    docstring for the containers that already hold this one)."""
    state = _state.current
    if state is None:
        return
    size = size_of(value, state)
    if isinstance(container, dict) and key not in container:
        size += ENTRY_BYTES + size_of(key, state)
    charge_built(size)
    known = state.sizes.get(id(container)) if state.sizes is not None else None
    if known is not None and known[0] is container:
        state.sizes[id(container)] = (container, known[1] + size)  # type: ignore[index]


def size_of(value: Any, state: RunState) -> int:
    """The bytes `value` stands for where it appears: containers count their contents each time they appear."""
    kind = type(value)
    if kind in _SCALARS:
        return SCALAR_BYTES
    if kind is str:
        return STR_BYTES + len(value)
    if kind is list or kind is dict or isinstance(value, list | Mapping):
        return _container_size(value, state)
    return SCALAR_BYTES


def _container_size(value: Any, state: RunState) -> int:
    sizes = state.sizes
    if sizes is not None:
        known = sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
    size = _measure(value, state, sizes)
    _remember(state, value, size)
    return size


def _measure(value: Any, state: RunState, sizes: dict[int, tuple[Any, int]] | None) -> int:
    """Walk a container, stopping (out of memory) as soon as it stands for more than the whole budget."""
    limit = state.max_memory
    total = 0
    work = 0
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in _SCALARS:
            total += SCALAR_BYTES
            continue
        if kind is str:
            total += STR_BYTES + len(item)
            continue
        if not (kind is list or kind is dict or isinstance(item, list | Mapping)):
            total += SCALAR_BYTES
            continue
        if sizes is not None and item is not value:
            known = sizes.get(id(item))
            if known is not None and known[0] is item:
                total += known[1]
                continue
        if isinstance(item, list):
            total += LIST_BYTES + SLOT_BYTES * len(item)
            pending.extend(item)
        else:
            total += MAP_BYTES + ENTRY_BYTES * len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        work += len(item)
        if total > limit:
            raise state.out_of_memory()
        if work >= CHUNK:
            charge(work)
            work = 0
    charge(work)
    return total


def _remember(state: RunState, value: Any, size: int) -> None:
    if type(value) is list or type(value) is dict:
        if state.sizes is None:
            state.sizes = {}
        state.sizes[id(value)] = (value, size)


class running:  # noqa: N801 - used as a context manager like contextlib helpers
    """Install a budget for this thread while a script runs; nested runs share the outer budget."""

    __slots__ = ("state", "previous")

    def __init__(self, max_steps: int, timeout_ms: float | None, memory_bytes: int | None = None) -> None:
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        self.state = RunState(max_steps, deadline, memory_bytes)
        self.previous: RunState | None = None

    def __enter__(self) -> RunState:
        self.previous = _state.current
        if self.previous is None:
            _state.current = self.state
            return self.state
        return self.previous

    def __exit__(self, *exc: Any) -> None:
        _state.current = self.previous
