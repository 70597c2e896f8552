"""QL engine: compile scripts (with a bounded, thread-safe cache) and run them against a context."""

from __future__ import annotations

import ast
import copy
import dataclasses
import threading
import time
import types
from collections.abc import Callable, Mapping
from typing import Any

import cachetools

from . import errors, runtime, stdlib
from .compiler import FILENAME, MODE_DEFINE, MODE_RUN, Compiler, CompileResult
from .errors import QLError, QLRuntimeError, QLSyntaxError
from .nodes import strings_in
from .parser import parse

INTERPOLATION_MODES = ("script", "variable", "disable")
DEFAULT_CACHE_SIZE = 4096
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024  # the compile cache is bounded by the (estimated) bytes of its programs too
# A compiled program's memory, measured with tracemalloc: ~12 KB plus ~90 bytes per source character.
_PROGRAM_BASE_BYTES, _PROGRAM_BYTES_PER_CHAR = 12_000, 90
_BUILTIN_METHODS = {"filter": stdlib.m_filter, "map": stdlib.m_map}  # QLExpress 4's List.filter / List.map


class Engine:
    """Compiles QL scripts. A bare Engine() behaves like QLExpress 4 (no functions at all); `stdlib=True` adds
    Verdict's standard library. Reuse one engine: it is thread-safe and caches compiled programs."""

    def __init__(
        self,
        stdlib: bool = False,
        *,
        max_steps: int = runtime.DEFAULT_MAX_STEPS,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        max_memory_bytes: int | None = None,
    ) -> None:
        """`cache_size` and `cache_bytes` bound the compile cache; `max_memory_bytes` caps the memory budget any run
        of this engine's programs may ask for (None: no cap beyond what the caller asks)."""
        self.stdlib = stdlib
        self.max_steps = max_steps
        self.max_memory_bytes = max_memory_bytes
        self._functions: dict[str, Callable[..., Any]] = dict(_stdlib_functions()) if stdlib else {}
        self._methods: dict[str, Callable[..., Any]] = dict(_BUILTIN_METHODS)
        if stdlib:
            self._methods.update(_stdlib_methods())
        self._cache: _ProgramCache = _ProgramCache(cache_size, cache_bytes)
        self._hits = 0
        self._misses = 0
        self._lock = threading.RLock()

    def add_function(self, name: str, function: Callable[..., Any]) -> None:
        """Make `function` callable from every script compiled from now on as `name(...)`."""
        if not callable(function):
            raise TypeError(f"{name!r} is not callable")
        with self._lock:
            self._functions[name] = function
            self._cache.clear()  # compiled programs bind their functions at compile time

    def compile(
        self,
        source: str,
        *,
        strict_newlines: bool = True,
        interpolation: str = "script",
        functions: Mapping[str, Callable[..., Any]] | None = None,
        constants: Mapping[str, Any] | None = None,
    ) -> Program:
        if interpolation not in INTERPOLATION_MODES:
            raise ValueError(f"interpolation must be one of {INTERPOLATION_MODES}, not {interpolation!r}")
        if not isinstance(source, str):
            raise QLSyntaxError("a script must be a string", line=1, column=1)
        key = (source, strict_newlines, interpolation)
        if functions or constants:
            tree = _parse(source, strict_newlines, interpolation)
            if strings_in(tree).isdisjoint({*(functions or ()), *(constants or ())}):
                # The script never names the document's functions or constants, so it compiles exactly as it would
                # without them: share the cached program. Rule sets written from one template share most rules,
                # and start-up compiles each such rule once instead of once per document.
                return self._cached(key, tree)
            # Bound to one document's own functions and constants: the caller keeps the program for as long as that
            # document version lives. Caching it would only pile up entries no later compile can hit (every reload
            # brings new mappings), so it is compiled directly.
            return Program(
                self, source, strict_newlines, interpolation, dict(functions or {}), dict(constants or {}), tree
            )
        return self._cached(key, None)

    def _cached(self, key: tuple[str, bool, str], tree: Any) -> Program:
        with self._lock:
            program = self._cache.get(key)
            if program is not None:
                self._hits += 1
                return program
            self._misses += 1
        source, strict_newlines, interpolation = key
        program = Program(self, source, strict_newlines, interpolation, {}, {}, tree)
        with self._lock:
            self._cache[key] = program
        return program

    def cache_info(self) -> dict[str, int]:
        """Size and capacity of the compile cache, and its hits and misses since the engine was made."""
        with self._lock:
            return {
                "size": len(self._cache),
                "maxsize": self._cache.max_entries,
                "hits": self._hits,
                "misses": self._misses,
            }

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


class _ProgramCache(cachetools.LRUCache):
    """An LRU cache of programs bounded both by entries and by their estimated bytes."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=program_bytes)
        self.max_entries = max_entries

    def __setitem__(self, key: Any, value: Program) -> None:
        if program_bytes(value) > self.maxsize:
            return  # larger than the whole cache: compiled for this caller only
        super().__setitem__(key, value)
        while len(self) > self.max_entries:
            self.popitem()


def program_bytes(program: Program) -> int:
    """The estimated memory of a compiled program (what the byte-bounded caches count)."""
    return _PROGRAM_BASE_BYTES + _PROGRAM_BYTES_PER_CHAR * len(program.source)


# Methods the compiler may turn into Python's own str methods when receiver and argument are strings: only when the
# engine's method is the standard library's, whose result is then exactly the same.
_INLINE_STRING_METHODS = {
    "startsWith": (stdlib.m_starts_with, "startswith"),
    "endsWith": (stdlib.m_ends_with, "endswith"),
}


def _inline_methods(methods: Mapping[str, Callable[..., Any]]) -> dict[str, str]:
    return {name: python for name, (impl, python) in _INLINE_STRING_METHODS.items() if methods.get(name) is impl}


def _stdlib_functions() -> dict[str, Callable[..., Any]]:
    return dict(stdlib.FUNCTIONS)


def _stdlib_methods() -> dict[str, Callable[..., Any]]:
    return dict(stdlib.METHODS)


class Program:
    """One compiled script. `run` is safe to call from many threads at once."""

    def __init__(
        self,
        engine: Engine,
        source: str,
        strict_newlines: bool,
        interpolation: str,
        functions: dict[str, Callable[..., Any]],
        constants: dict[str, Any],
        tree: Any = None,  # the parsed source, when the engine has parsed it already
    ) -> None:
        self.source = source
        self._engine = engine
        self._host_functions = {**engine._functions, **functions}
        self._methods = dict(engine._methods)
        self._constants = constants
        self._max_steps = engine.max_steps
        self._max_memory = engine.max_memory_bytes
        self._tree = tree if tree is not None else _parse(source, strict_newlines, interpolation)
        self._codes: dict[tuple[bool, bool], tuple[types.CodeType, CompileResult]] = {}
        self._variants: dict[tuple[bool, bool, bool], Callable[..., Any]] = {}
        self._lock = threading.Lock()
        code, result = self._code(True, False)
        self.free_variables: frozenset[str] = result.free_variables
        self._mutates = result.mutates or any(getattr(f, "mutates", False) for f in functions.values())
        self._needs_budget = result.needs_budget
        self._default = self._variant(False, False, True)
        self.run = self._default  # type: ignore[method-assign] # the compiled entry, see `run`
        self.functions: dict[str, Callable[..., Any]] = self._define_functions(result)

    def __repr__(self) -> str:
        return f"<ql.Program {self.source[:40]!r}>"

    # -- compilation ---------------------------------------------------------------------------------------------

    def _code(self, short_circuit: bool, precise: bool) -> tuple[types.CodeType, CompileResult]:
        """The code depends on two run options: short-circuit changes && and ||, precise disables the inline
        double arithmetic. The other option (avoid_null_pointer) only changes the helpers the code calls."""
        cached = self._codes.get((short_circuit, precise))
        if cached is not None:
            return cached
        result = self._compile_result(short_circuit, precise)
        try:
            code = compile(result.module, FILENAME, "exec", dont_inherit=True, optimize=0)
        except (RecursionError, MemoryError, SyntaxError, ValueError) as exc:
            raise QLSyntaxError(f"script too complex to compile ({type(exc).__name__})", line=1, column=1) from None
        # The Python AST is two thirds of a compiled program's memory and is never read again once compiled.
        result = dataclasses.replace(result, module=None)
        self._codes[(short_circuit, precise)] = (code, result)
        return code, result

    def _compile_result(self, short_circuit: bool, precise: bool) -> CompileResult:
        """The generated Python module for these options (tests inspect it; _code compiles and keeps only code)."""
        compiler = Compiler(
            self.source,
            constants=self._constants,
            host_functions=frozenset(self._host_functions),
            short_circuit=short_circuit,
            inline_methods=_inline_methods(self._methods),
            # A script function shared through `functions` may loop: calling it needs the caller's budget.
            budgeted_functions=frozenset(
                name for name, function in self._host_functions.items() if isinstance(function, runtime.QLFunction)
            ),
            float_arithmetic=not precise,
        )
        try:
            return compiler.compile_program(self._tree)
        except QLError:
            raise
        except (RecursionError, MemoryError, SyntaxError, ValueError) as exc:
            raise QLSyntaxError(f"script too complex to compile ({type(exc).__name__})", line=1, column=1) from None

    def python_source(self, *, short_circuit: bool = True, precise: bool = False) -> str:
        """The Python module this script compiles to, as source text: a debugging view for maintainers (the
        compiled program keeps only code objects, so this compiles the script again)."""
        module = self._compile_result(short_circuit, precise).module
        assert module is not None
        return ast.unparse(module)

    def _variant(self, precise: bool, avoid_null_pointer: bool, short_circuit: bool) -> Callable[..., Any]:
        key = (precise, avoid_null_pointer, short_circuit)
        fn = self._variants.get(key)
        if fn is not None:
            return fn
        with self._lock:
            fn = self._variants.get(key)
            if fn is None:
                code, result = self._code(short_circuit, precise)
                namespace = _namespace(precise, avoid_null_pointer, self._methods)
                namespace["_slow_run"] = self._run
                namespace["_fail"] = self._as_ql_error
                namespace.update(result.constants)
                for ql_name, pyname in result.host_functions.items():
                    namespace[pyname] = self._host_functions[ql_name]
                exec(code, namespace)  # noqa: S102 - our own code object, generated from the QL tree only
                fn = namespace["_main"]
                self._variants[key] = fn
        return fn

    def _define_functions(self, result: CompileResult) -> dict[str, Callable[..., Any]]:
        if not result.defined_functions:
            return {}
        with runtime.running(self._max_steps, None):
            defined = self._default({}, _mode=MODE_DEFINE)
        for function in defined.values():
            function.mutates = self._mutates
        return defined

    # -- running -------------------------------------------------------------------------------------------------

    def run(
        self,
        context: Mapping[str, Any] | None = None,
        *,
        precise: bool = False,
        avoid_null_pointer: bool = False,
        short_circuit: bool = True,
        timeout_ms: float | None = None,
        memory_bytes: int | None = None,
    ) -> Any:
        """Evaluate the script against `context` (never modified). Raises only QLError subclasses.

        `timeout_ms` and `memory_bytes` (default budget.DEFAULT_MEMORY_BYTES) bound a run that loops, calls
        functions or assigns values: it fails with SCRIPT_TIME_OUT or SCRIPT_OUT_OF_MEMORY (see budget.py).

        Every Program replaces this method with its compiled entry function, which has the same signature: a
        condition then costs one call. The entry handles the plain case itself and hands the rest to `_run`."""
        return self._run(context, precise, avoid_null_pointer, short_circuit, timeout_ms, memory_bytes)

    def _run(
        self,
        context: Mapping[str, Any] | None,
        precise: bool,
        avoid_null_pointer: bool,
        short_circuit: bool,
        timeout_ms: float | None,
        memory_bytes: int | None,
    ) -> Any:
        fn = self._variant(precise, avoid_null_pointer, short_circuit)
        if type(context) is not dict:
            if context is None:
                context = {}
            elif isinstance(context, Mapping):
                context = dict(context)
            else:
                raise QLRuntimeError("the context must be a mapping", code=errors.INVALID_ARGUMENT)
        if self._mutates:
            context = _copy_context(context)
        if not self._needs_budget:
            return fn(context, _mode=MODE_RUN)
        state = runtime._state
        previous = state.current
        if self._max_memory is not None:
            memory_bytes = min(memory_bytes or runtime.DEFAULT_MEMORY_BYTES, self._max_memory)
        state.current = runtime.RunState(self._max_steps, _deadline(timeout_ms), memory_bytes)
        try:
            return fn(context, _mode=MODE_RUN)
        finally:
            state.current = previous

    def _as_ql_error(self, exc: Exception) -> QLError:
        error = runtime.as_ql_error(exc)
        position = locate(exc)
        if position is not None:
            error.with_position(position[0], position[1], self.source)
        return error


def _cause(exc: Exception) -> Exception | None:
    return None if isinstance(exc, QLError) else exc


def _deadline(timeout_ms: float | None) -> float | None:
    if timeout_ms is None:
        return None
    return time.monotonic() + timeout_ms / 1000.0


def _copy_context(context: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return copy.deepcopy(dict(context))
    except Exception as exc:  # noqa: BLE001
        raise QLRuntimeError(f"context cannot be copied: {exc}", code=errors.INVALID_ARGUMENT) from None


def locate(exc: BaseException) -> tuple[int, int] | None:
    """The QL (line, column) of the innermost compiled-script frame in the exception's traceback."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == FILENAME:
            found = tb
        tb = tb.tb_next
    if found is None:
        return None
    positions = list(found.tb_frame.f_code.co_positions())
    index = found.tb_lasti // 2
    if not 0 <= index < len(positions):
        return None
    line, _, column, _ = positions[index]
    if line is None or column is None:
        return None
    return line, column + 1


def _parse(source: str, strict_newlines: bool, interpolation: str) -> Any:
    try:
        return parse(source, strict_newlines=strict_newlines, interpolation=interpolation)
    except QLError:
        raise
    except RecursionError:
        raise QLSyntaxError("script nested too deeply", line=1, column=1) from None


_FAST_NUMBERS = frozenset({int, float})


def _namespace(precise: bool, anp: bool, methods: Mapping[str, Callable[..., Any]]) -> dict[str, Any]:
    """The globals of a compiled script: runtime helpers under fixed names, and nothing of Python's builtins."""
    rt = runtime
    call_method = rt.make_method_caller(methods, anp)
    return {
        "__builtins__": {},
        "_type": type,
        "_int": int,
        "_float": float,
        "_bool": bool,
        "_fast_numbers": _FAST_NUMBERS,
        "_str": str,
        "_dict": dict,
        "_list": list,
        "_len": len,
        "_Exception": Exception,
        "_cause": _cause,
        "_deepcopy": copy.deepcopy,
        "_ANP": anp,
        "_Fn": rt.QLFunction,
        "_tick": rt.tick,
        "_new_list": rt.new_list,
        "_new_map": rt.new_map,
        "_add": rt.add_precise if precise else rt.add,
        "_sub": rt.sub_precise if precise else rt.sub,
        "_mul": rt.mul_precise if precise else rt.mul,
        "_div": rt.div_precise if precise else rt.div,
        "_mod": rt.mod_precise if precise else rt.mod,
        "_neg": rt.neg,
        "_pos": rt.pos,
        "_invert": rt.invert,
        "_shl": rt.shl,
        "_shr": rt.shr,
        "_ushr": rt.ushr,
        "_bit_and": rt.bit_and,
        "_bit_or": rt.bit_or,
        "_bit_xor": rt.bit_xor,
        "_eq": rt.eq,
        "_ne": rt.ne,
        "_lt": rt.lt_anp if anp else rt.lt,
        "_le": rt.le_anp if anp else rt.le,
        "_gt": rt.gt_anp if anp else rt.gt,
        "_ge": rt.ge_anp if anp else rt.ge,
        "_in": rt.in_,
        "_not_in": rt.not_in,
        "_like": rt.like,
        "_not_like": rt.not_like,
        "_not": rt.not_,
        "_and_left": rt.and_left,
        "_and_right": rt.and_right,
        "_or_left": rt.or_left,
        "_or_right": rt.or_right,
        "_and_all": rt.and_all,
        "_or_all": rt.or_all,
        "_condition": rt.condition,
        "_while_condition": rt.while_condition,
        "_for_condition": rt.for_condition,
        "_convert": rt.convert,
        "_cast": rt.cast,
        "_instance_of": rt.instance_of,
        "_template": rt.template,
        "_fieldn": rt.field_or_null if anp else rt.field,
        "_field_or_null": rt.field_or_null,
        "_indexn": rt.index_or_null if anp else rt.index,
        "_slicen": rt.slice_or_null if anp else rt.slice_,
        "_OPEN": rt.OPEN_BOUND,
        "_incdec_operand": rt.incdec_operand,
        "_spread_field": rt.spread_field,
        "_set_field": rt.set_field,
        "_set_index": rt.set_index,
        "_set_global": rt.set_global,
        "_iterate": rt.iterate,
        "_class_field": rt.class_field,
        "_class_method": rt.class_method,
        "_new_object": rt.new_object,
        "_method_ref": rt.method_ref,
        "_call_value": rt.call_value,
        "_meth": call_method,
        "_meth_opt": rt.make_method_caller_optional(call_method),
        "_meth_spread": rt.make_spread_method_caller(call_method, anp),
        "_throw": rt.throw,
        "_catchable": rt.catchable,
        "_caught_value": rt.caught_value,
        "_catch_matches": rt.catch_matches,
    }
