"""QL compiler: QL syntax tree -> Python `ast` -> code object.

The generated module defines one function, `_main(_ctx, _mode, **run options)`. It is built only from the QL tree: names a
script uses never become Python identifiers (locals are `_v1`, `_v2`...; script globals live in the dict `_S`; facts
are read with `_ctx.get`), field access goes through runtime helpers that read mappings only, and the module runs
with empty `__builtins__`. Every Python node carries the QL line and column, so a failure is reported at its QL
position (see `engine.locate`).

Specialisations for speed (the result is the same as the generic helper's):
- `x == 'lit'`, `x == null`, `x == true` compile to plain Python comparisons;
- `x < 18` with a number literal compares inline when x is an int;
- `x in [1, 2, 3]` with literal (or constant) scalars of one kind uses a frozenset;
- `&&`/`||` chains become Python `and`/`or` over operands that are known booleans;
- `a.b` on a dict is one `dict.get`, `a[0]` on a long enough list one subscript.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import nodes as n
from .errors import (
    FOR_EACH_TYPE_MISMATCH,
    INCOMPATIBLE_ASSIGNMENT_TYPE,
    INVALID_ARGUMENT,
    SCRIPT_TOO_COMPLEX,
    QLSyntaxError,
)

FILENAME = "<ql>"
MAX_MACRO_DEPTH = 16
# Compiling has a budget too (issue 19): macros inline their body at each use, so a few hundred bytes of nested macros
# could expand to gigabytes. Both limits fail with SCRIPT_TOO_COMPLEX; a 1,000-rule set stays far below them.
MAX_INLINED_NODES = 50_000  # QL nodes all macro uses of one script may inline
MAX_COMPILED_STATEMENTS = 25_000  # statements of one script, inlined ones included: bounds Python's own compile()
MAX_COMPILE_MS = 2_000  # time one script may spend in this compiler

_COMPARE_HELPERS = {"<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge"}
_PY_COMPARE = {"<": ast.Lt, "<=": ast.LtE, ">": ast.Gt, ">=": ast.GtE}
_BINARY_HELPERS = {
    "+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "%": "_mod",
    "<<": "_shl", ">>": "_shr", ">>>": "_ushr", "&": "_bit_and", "|": "_bit_or", "^": "_bit_xor",
    "==": "_eq", "!=": "_ne", "in": "_in", "not_in": "_not_in", "like": "_like", "not_like": "_not_like",
}  # fmt: skip
_EXACT_DOUBLE_INTEGERS = 2**53
_PY_ARITHMETIC = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult}
_BOOLEAN_OPS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not_in", "like", "not_like"})


@dataclass
class Local:
    pyname: str
    type_name: str | None


@dataclass
class Scope:
    """One QL block: its typed locals, its (hoisted) functions and macros."""

    locals: dict[str, Local] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    macros: dict[str, n.MacroDef] = field(default_factory=dict)


@dataclass
class PyFunction:
    """A Python function being generated: the main function, a QL function/lambda, or a closure for a block value."""

    parent: PyFunction | None
    kind: str  # "main" | "function" | "closure"
    scopes: list[Scope] = field(default_factory=list)
    nonlocals: set[str] = field(default_factory=set)
    loops: list[Any] = field(default_factory=list)  # per enclosing loop or switch: None, or a switch's continue flag
    declared: list[str] = field(default_factory=list)  # typed locals, set to null on entry (read early = null)
    in_finally: int = 0


@dataclass
class CompileResult:
    module: ast.Module | None  # None once compiled: the engine keeps only the code object
    free_variables: frozenset[str]
    defined_functions: tuple[str, ...]
    constants: dict[str, Any]  # python global name -> value
    host_functions: dict[str, str]  # QL name -> python global name
    mutates: bool
    needs_budget: bool


def _at(node: n.Node | n.Param | n.SwitchCase | n.CatchClause, py: Any) -> Any:
    py.lineno = node.line
    py.col_offset = max(node.column - 1, 0)
    py.end_lineno = node.line
    py.end_col_offset = py.col_offset + 1
    return py


def _name(ident: str, store: bool = False) -> ast.Name:
    return ast.Name(ident, ast.Store() if store else ast.Load())


def _const(value: Any) -> ast.Constant:
    return ast.Constant(value)


def _call(func: str, *args: ast.expr) -> ast.Call:
    return ast.Call(_name(func), list(args), [])


def _is_scalar_literal(node: n.Node) -> bool:
    return isinstance(node, n.Literal) and (node.value is None or isinstance(node.value, bool | int | float | str))


class Compiler:
    def __init__(
        self,
        source: str,
        *,
        constants: dict[str, Any],
        host_functions: frozenset[str],
        short_circuit: bool = True,
        inline_methods: dict[str, str] | None = None,
        float_arithmetic: bool = True,
        budgeted_functions: frozenset[str] = frozenset(),
    ) -> None:
        self.budgeted_functions = budgeted_functions  # host functions that are script functions (they may loop)
        self.float_arithmetic = float_arithmetic  # off in precise mode, where + - * work on BigDecimal
        self.source = source
        self.inline_methods = inline_methods or {}
        self.constant_values = constants
        self.host_function_names = host_functions
        self.short_circuit = short_circuit
        self.counter = 0
        self.free: dict[str, None] = {}
        self.assigned: set[str] = set()
        self.global_writes: set[str] = set()
        self.constants: dict[str, Any] = {}
        self.constant_names: dict[str, str] = {}
        self.host_functions: dict[str, str] = {}
        self.func: PyFunction = PyFunction(None, "main")
        self.pre: list[ast.stmt] = []
        self.conditional = 0
        self.macro_depth = 0
        self.inlined_nodes = 0
        self.statements = 0
        self.macro_sizes: dict[int, int] = {}  # id(macro) -> QL nodes in its body
        self.compile_deadline = time.monotonic() + MAX_COMPILE_MS / 1000
        self.mutates = False
        self.needs_budget = False
        # Facts already read in the current && / || chain (see cached_read), and the nesting level that may add.
        self.read_cache: dict[str, str] | None = None
        self.cache_level = 0

    # -- helpers -------------------------------------------------------------------------------------------------

    def fresh(self, prefix: str = "_t") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def error(self, node: Any, message: str) -> QLSyntaxError:
        return QLSyntaxError(message, line=node.line, column=node.column, source=self.source)

    def bind_constant(self, value: Any) -> ast.Name:
        """A value that cannot be an ast.Constant (Decimal, frozenset, tuple of values) becomes a module global."""
        name = self.fresh("_c")
        self.constants[name] = value
        return _name(name)

    def literal(self, node: n.Literal) -> ast.expr:
        value = node.value
        if isinstance(value, Decimal):
            return _at(node, self.bind_constant(value))
        return _at(node, _const(value))

    def resolve(self, name: str) -> tuple[Local, PyFunction] | None:
        func: PyFunction | None = self.func
        while func is not None:
            for scope in reversed(func.scopes):
                if name in scope.locals:
                    return scope.locals[name], func
            func = func.parent
        return None

    def resolve_function(self, name: str) -> str | None:
        func: PyFunction | None = self.func
        while func is not None:
            for scope in reversed(func.scopes):
                if name in scope.functions:
                    return scope.functions[name]
            func = func.parent
        return None

    def resolve_macro(self, name: str) -> n.MacroDef | None:
        func: PyFunction | None = self.func
        while func is not None:
            for scope in reversed(func.scopes):
                if name in scope.macros:
                    return scope.macros[name]
            func = func.parent
        return None

    def declare(self, name: str, type_name: str | None) -> Local:
        local = Local(self.fresh("_v"), type_name)
        self.func.scopes[-1].locals[name] = local
        self.func.declared.append(local.pyname)
        return local

    def null_locals(self, func: PyFunction, parameters: tuple[str, ...] = ()) -> list[ast.stmt]:
        """`_v1 = _v2 = None` for the typed locals of a Python function, so a closure reading one early sees null."""
        names = [name for name in func.declared if name not in parameters]
        if not names:
            return []
        return [ast.Assign([_name(name, True) for name in names], _const(None))]

    def constant_load(self, name: str) -> ast.Name:
        pyname = self.constant_names.get(name)
        if pyname is None:
            pyname = self.fresh("_k")
            self.constant_names[name] = pyname
        return _name(pyname)

    # -- entry ---------------------------------------------------------------------------------------------------

    def compile_program(self, program: n.Program) -> CompileResult:
        self.global_writes, self.mutates = _collect_writes(program)
        self.func.scopes.append(Scope())
        defs, statements, defined = self.compile_block_body(program.statements, "_r")
        body: list[ast.stmt] = list(defs)
        if defined:
            exported = ast.Dict(
                [_const(name) for name, _ in defined], [_call("_Fn", _name(py), _const(name)) for name, py in defined]
            )
            is_define = ast.Compare(_name("_mode"), [ast.Eq()], [_const(MODE_DEFINE)])
            body.append(ast.If(is_define, [ast.Return(exported)], []))
        body.extend(statements)
        last = body[-1] if body else None
        if isinstance(last, ast.Assign) and isinstance(last.targets[0], ast.Name) and last.targets[0].id == "_r":
            body[-1] = ast.Return(last.value)  # the script's last statement is its value: return it directly
        else:
            body.append(ast.Return(_name("_r")))
        prologue: list[ast.stmt] = []
        prologue.extend(self.null_locals(self.func))
        if self.global_writes:
            prologue.append(ast.Assign([_name("_S", True)], ast.Dict([], [])))
        if _mentions_name(body, "_r"):
            prologue.append(ast.Assign([_name("_r", True)], _const(None)))
        if self.mutates:
            for pyname in self.constant_names.values():
                prologue.append(ast.Assign([_name(pyname, True)], _call("_deepcopy", _name("_K" + pyname))))
        straight = not (self.mutates or self.needs_budget)
        main = ast.FunctionDef(
            name="_main",
            args=_entry_arguments(),
            body=[_entry_check(straight), ast.Try(prologue + body, [_error_handler()], [], [])],
            decorator_list=[],
            returns=None,
        )
        module = ast.Module([main], [])
        _locate_all(module)
        constants = dict(self.constants)
        for name, pyname in self.constant_names.items():
            constants[("_K" + pyname) if self.mutates else pyname] = self.constant_values[name]
        return CompileResult(
            module,
            frozenset(self.free),
            tuple(name for name, _ in defined),
            constants,
            self.host_functions,
            self.mutates,
            self.needs_budget,
        )

    # -- statements ----------------------------------------------------------------------------------------------

    def compile_block_body(
        self, statements: list[n.Node], target: str | None
    ) -> tuple[list[ast.stmt], list[ast.stmt], list[tuple[str, str]]]:
        """Compile a block's statements into (function defs, other statements). Macros and functions are hoisted:
        their names are visible to every statement of the block, and the defs run before the statements."""
        scope = self.func.scopes[-1]
        for stmt in statements:
            if isinstance(stmt, n.MacroDef):
                scope.macros[stmt.name] = stmt
        defined: list[tuple[str, str]] = []
        for stmt in statements:
            if isinstance(stmt, n.FunctionDef):
                if any(name == stmt.name for name, _ in defined):
                    raise self.error(stmt, f"function '{stmt.name}' is defined twice in the same block")
                pyname = self.fresh("_f")
                scope.functions[stmt.name] = pyname
                defined.append((stmt.name, pyname))
        defs: list[ast.stmt] = []
        out: list[ast.stmt] = []
        body = [s for s in statements if not isinstance(s, n.MacroDef)]
        last_value = len(body) - 1 if target is not None else -1
        for position, stmt in enumerate(body):
            if isinstance(stmt, n.FunctionDef):
                defs.append(self.compile_function_def(stmt, scope.functions[stmt.name]))
                continue
            out.extend(self.compile_statement(stmt, target if position == last_value else None))
        if target is not None and (not body or not isinstance(body[-1], n.ExprStmt)):
            out.append(ast.Assign([_name(target, True)], _const(None)))
        return defs, out, defined

    def compile_statement(self, stmt: n.Node, target: str | None = None) -> list[ast.stmt]:
        self.statements += 1
        if self.statements > MAX_COMPILED_STATEMENTS:
            raise self.too_complex(stmt, f"more than {MAX_COMPILED_STATEMENTS} statements to compile")
        if not self.statements % 64 and time.monotonic() > self.compile_deadline:
            raise self.too_complex(stmt, f"compiling took longer than {MAX_COMPILE_MS} ms")
        saved_pre = self.pre
        self.pre = []
        try:
            result = self.compile_statement_inner(stmt, target)
            return self.pre + result
        finally:
            self.pre = saved_pre

    def compile_statement_inner(self, stmt: n.Node, target: str | None) -> list[ast.stmt]:
        if isinstance(stmt, n.ExprStmt):
            return self.compile_expression_statement(stmt, target)
        if isinstance(stmt, n.VarDecl):
            return self.compile_declaration(stmt)
        if isinstance(stmt, n.While):
            return self.compile_while(stmt)
        if isinstance(stmt, n.For):
            return self.compile_for(stmt)
        if isinstance(stmt, n.ForEach):
            return self.compile_for_each(stmt)
        if isinstance(stmt, n.Break | n.Continue):
            return self.compile_jump(stmt)
        if isinstance(stmt, n.Return):
            return self.compile_return(stmt)
        if isinstance(stmt, n.Throw):
            return [_at(stmt, ast.Expr(_at(stmt, _call("_throw", self.expr(stmt.value)))))]
        if isinstance(stmt, n.FunctionDef):
            # A function defined inside an expression-valued block (hoisting already handled in block bodies).
            raise self.error(stmt, "a function cannot be defined here")
        if isinstance(stmt, n.MacroDef):
            return []
        raise self.error(stmt, f"unsupported statement {type(stmt).__name__}")

    def compile_expression_statement(self, stmt: n.ExprStmt, target: str | None) -> list[ast.stmt]:
        expr = stmt.expr
        if isinstance(expr, n.Name):
            macro = self.resolve_macro(expr.name)
            if macro is not None:
                return self.inline_macro(macro, expr, target)
        if isinstance(expr, n.If | n.Switch | n.Try | n.Block):
            return self.compile_valued_statement(expr, target)
        if target is None and isinstance(expr, n.Assign) and expr.op == "=" and isinstance(expr.target, n.Name):
            value = self.expr(expr.value)
            return [self.store_name_statement(expr.target, value)]
        value = self.expr(expr)
        if target is None:
            return [_at(stmt, ast.Expr(value))]
        return [_at(stmt, ast.Assign([_name(target, True)], value))]

    def compile_valued_statement(self, expr: n.Node, target: str | None) -> list[ast.stmt]:
        if isinstance(expr, n.If):
            return self.compile_if(expr, target)
        if isinstance(expr, n.Switch):
            return self.compile_switch(expr, target)
        if isinstance(expr, n.Try):
            return self.compile_try(expr, target)
        assert isinstance(expr, n.Block)
        return self.compile_block(expr, target)

    def inline_macro(self, macro: n.MacroDef, use: n.Node, target: str | None) -> list[ast.stmt]:
        if self.macro_depth >= MAX_MACRO_DEPTH:
            raise self.error(use, f"macro '{macro.name}' expands too deeply (recursive macro?)")
        self.inlined_nodes += self.macro_size(macro)
        if self.inlined_nodes > MAX_INLINED_NODES:
            raise self.too_complex(
                use, f"macros expand to more than {MAX_INLINED_NODES} nodes (at macro '{macro.name}')"
            )
        self.macro_depth += 1
        try:
            defs, statements, _ = self.compile_block_body(macro.body.statements, target)
            return defs + statements
        finally:
            self.macro_depth -= 1

    def macro_size(self, macro: n.MacroDef) -> int:
        size = self.macro_sizes.get(id(macro))
        if size is None:
            size = 0
            pending: list[Any] = [macro.body]
            while pending:
                size += 1
                pending.extend(n.children(pending.pop()))
            self.macro_sizes[id(macro)] = size
        return size

    def too_complex(self, node: n.Node, message: str) -> QLSyntaxError:
        return QLSyntaxError(message, code=SCRIPT_TOO_COMPLEX, line=node.line, column=node.column, source=self.source)

    def compile_block(self, block: n.Block, target: str | None) -> list[ast.stmt]:
        self.func.scopes.append(Scope())
        try:
            defs, statements, _ = self.compile_block_body(block.statements, target)
        finally:
            self.func.scopes.pop()
        return defs + statements or [ast.Pass()]

    def compile_branch(self, branch: n.Node, target: str | None) -> list[ast.stmt]:
        block = branch if isinstance(branch, n.Block) else n.Block(branch.line, branch.column, [branch])
        return self.compile_block(block, target)

    def compile_if(self, node: n.If, target: str | None) -> list[ast.stmt]:
        test = self.condition(node.condition)
        body = self.compile_branch(node.then, target)
        if node.otherwise is not None:
            orelse = self.compile_branch(node.otherwise, target)
        elif target is not None:
            orelse = [ast.Assign([_name(target, True)], _const(None))]
        else:
            orelse = []
        return [_at(node, ast.If(test, body, orelse))]

    def compile_declaration(self, stmt: n.VarDecl) -> list[ast.stmt]:
        self.needs_budget = True  # see store_name_statement
        out: list[ast.stmt] = []
        for name, init, line, column in stmt.names:
            value = self.expr(init) if init is not None else _const(None)
            value = _call("_convert", _const(stmt.type_name), value, _const(INCOMPATIBLE_ASSIGNMENT_TYPE))
            local = self.declare(name, stmt.type_name)
            out.append(_at(n.Name(line, column, name), ast.Assign([_name(local.pyname, True)], value)))
        return out

    def loop_body(self, body: n.Block) -> list[ast.stmt]:
        self.func.loops.append(None)
        try:
            return self.compile_block(body, None)
        finally:
            self.func.loops.pop()

    def compile_while(self, stmt: n.While) -> list[ast.stmt]:
        self.needs_budget = True
        cond_pre, test = self.with_pre(lambda: self.loop_condition(stmt.condition, "_while_condition"))
        body = [self.tick(stmt), *cond_pre, ast.If(ast.UnaryOp(ast.Not(), test), [ast.Break()], [])]
        body += self.loop_body(stmt.body)
        return [_at(stmt, ast.While(_const(True), body, []))]

    def with_pre(self, build: Any) -> tuple[list[ast.stmt], Any]:
        saved = self.pre
        self.pre = []
        try:
            value = build()
            return self.pre, value
        finally:
            self.pre = saved

    def loop_condition(self, node: n.Node, helper: str) -> ast.expr:
        value = self.expr(node)
        if self.known_boolean(node):
            return value
        return _at(node, _call(helper, value))

    def tick(self, node: n.Node) -> ast.stmt:
        return _at(node, ast.Expr(_at(node, _call("_tick"))))

    def compile_for(self, stmt: n.For) -> list[ast.stmt]:
        self.needs_budget = True
        self.func.scopes.append(Scope())
        try:
            out: list[ast.stmt] = []
            if stmt.init is not None:
                out += self.compile_statement(stmt.init)
            started = self.fresh("_s")
            out.append(ast.Assign([_name(started, True)], _const(False)))
            body: list[ast.stmt] = []
            if stmt.update is not None:
                update = self.compile_statement(n.ExprStmt(stmt.update.line, stmt.update.column, stmt.update))
                body.append(ast.If(_name(started), update, []))
            body.append(ast.Assign([_name(started, True)], _const(True)))
            body.append(self.tick(stmt))
            if stmt.condition is not None:
                cond_pre, test = self.with_pre(lambda: self.loop_condition(stmt.condition, "_for_condition"))
                body += cond_pre
                body.append(ast.If(ast.UnaryOp(ast.Not(), test), [ast.Break()], []))
            body += self.loop_body(stmt.body)
            out.append(_at(stmt, ast.While(_const(True), body, [])))
            return out
        finally:
            self.func.scopes.pop()

    def compile_for_each(self, stmt: n.ForEach) -> list[ast.stmt]:
        self.needs_budget = True
        iterable = _at(stmt.iterable, _call("_iterate", self.expr(stmt.iterable)))
        self.func.scopes.append(Scope())
        try:
            local = self.declare(stmt.name, stmt.type_name)
            item = self.fresh("_i")
            value: ast.expr = _name(item)
            if stmt.type_name is not None:
                value = _call("_convert", _const(stmt.type_name), value, _const(FOR_EACH_TYPE_MISMATCH))
            body = [self.tick(stmt), _at(stmt, ast.Assign([_name(local.pyname, True)], value))]
            body += self.loop_body(stmt.body)
            return [_at(stmt, ast.For(_name(item, True), iterable, body, []))]
        finally:
            self.func.scopes.pop()

    def compile_jump(self, stmt: n.Break | n.Continue) -> list[ast.stmt]:
        if not self.func.loops:
            raise self.error(stmt, f"'{'break' if isinstance(stmt, n.Break) else 'continue'}' outside a loop")
        innermost = self.func.loops[-1]
        if isinstance(stmt, n.Break):
            return [_at(stmt, ast.Break())]
        if innermost is not None:  # `continue` inside a switch: leave the switch, then continue the loop
            return [ast.Assign([_name(innermost, True)], _const(True)), _at(stmt, ast.Break())]
        return [_at(stmt, ast.Continue())]

    def compile_return(self, stmt: n.Return) -> list[ast.stmt]:
        value = self.expr(stmt.value) if stmt.value is not None else _const(None)
        if self.func.in_finally:
            # QLExpress ignores what a finally block returns: evaluate it for its effects only.
            return [_at(stmt, ast.Expr(value))]
        if self.func.kind == "closure":
            raise self.error(stmt, "'return' inside an if/switch/try used as a value is not supported here")
        return [_at(stmt, ast.Return(value))]

    def compile_switch(self, node: n.Switch, target: str | None) -> list[ast.stmt]:
        subject = self.fresh("_w")
        out: list[ast.stmt] = [_at(node, ast.Assign([_name(subject, True)], self.expr(node.subject)))]
        if node.arrow:
            return out + self.compile_arrow_switch(node, subject, target)
        # Fall-through: find the first matching case (or default), then run every body from there on.
        chosen = self.fresh("_w")
        default_position = len(node.cases)
        match: ast.expr = _const(len(node.cases))
        for position in range(len(node.cases) - 1, -1, -1):
            case = node.cases[position]
            if case.values is None:
                default_position = position
        match = _const(default_position)
        for position in range(len(node.cases) - 1, -1, -1):
            case = node.cases[position]
            if case.values is not None:
                match = ast.IfExp(self.case_test(subject, case), _const(position), match)
        out.append(ast.Assign([_name(chosen, True)], match))
        if target is not None:
            out.append(ast.Assign([_name(target, True)], _const(None)))
        continue_flag = self.fresh("_k") if self.func.loops else None
        if continue_flag:
            out.append(ast.Assign([_name(continue_flag, True)], _const(False)))
        self.func.loops.append(continue_flag)
        body: list[ast.stmt] = []
        try:
            for position, case in enumerate(node.cases):
                block = n.Block(case.line, case.column, case.body)
                statements = self.compile_block(block, target if case.body else None)
                test = ast.Compare(_name(chosen), [ast.LtE()], [_const(position)])
                body.append(_at(case, ast.If(test, statements, [])))
        finally:
            self.func.loops.pop()
        body.append(ast.Break())
        out.append(_at(node, ast.For(_name("_", True), ast.Tuple([_const(0)], ast.Load()), body, [])))
        if continue_flag:
            out.append(ast.If(_name(continue_flag), [ast.Continue()], []))
        return out

    def case_test(self, subject: str, case: n.SwitchCase) -> ast.expr:
        tests = [_at(value, _call("_eq", _name(subject), self.expr(value))) for value in case.values or []]
        return tests[0] if len(tests) == 1 else ast.BoolOp(ast.Or(), tests)

    def compile_arrow_switch(self, node: n.Switch, subject: str, target: str | None) -> list[ast.stmt]:
        orelse: list[ast.stmt] = [ast.Assign([_name(target, True)], _const(None))] if target else []
        default = next((case for case in node.cases if case.values is None), None)
        if default is not None:
            orelse = self.compile_branch(default.body[0], target)
        chain = orelse
        for case in reversed([case for case in node.cases if case.values is not None]):
            test = self.case_test(subject, case)
            chain = [_at(case, ast.If(test, self.compile_branch(case.body[0], target), chain))]
        return chain or [ast.Pass()]

    def compile_try(self, node: n.Try, target: str | None) -> list[ast.stmt]:
        body = self.compile_block(node.body, target)
        handlers: list[ast.ExceptHandler] = []
        if node.catches:
            caught = self.fresh("_e")
            chain: list[ast.stmt] = [ast.Raise()]
            for clause in reversed(node.catches):
                self.func.scopes.append(Scope())
                try:
                    prologue: list[ast.stmt] = []
                    if clause.name is not None:
                        local = self.declare(clause.name, None)
                        prologue.append(ast.Assign([_name(local.pyname, True)], _call("_caught_value", _name(caught))))
                    defs, statements, _ = self.compile_block_body(clause.body.statements, target)
                finally:
                    self.func.scopes.pop()
                clause_body = prologue + defs + statements or [ast.Pass()]
                if clause.types is None:
                    chain = clause_body
                else:
                    types = ast.Tuple([_const(t) for t in clause.types], ast.Load())
                    chain = [_at(clause, ast.If(_call("_catch_matches", _name(caught), types), clause_body, chain))]
            guard = ast.If(ast.UnaryOp(ast.Not(), _call("_catchable", _name(caught))), [ast.Raise()], [])
            handlers.append(ast.ExceptHandler(_name("_Exception"), caught, [guard, *chain]))
        final: list[ast.stmt] = []
        if node.final is not None:
            self.func.in_finally += 1
            try:
                final = self.compile_block(node.final, None)
            finally:
                self.func.in_finally -= 1
        return [_at(node, ast.Try(body, handlers, [], final))]

    # -- functions and lambdas -----------------------------------------------------------------------------------

    def compile_function_def(self, node: n.FunctionDef, pyname: str) -> ast.stmt:
        return self.build_function(node, pyname, node.params, node.body)

    def build_function(self, node: n.Node, pyname: str, params: list[n.Param], body: n.Node) -> ast.FunctionDef:
        self.needs_budget = True
        outer = self.func
        self.func = PyFunction(outer, "function", [Scope()])
        saved_pre, saved_conditional = self.pre, self.conditional
        self.pre, self.conditional = [], 0
        try:
            argnames = []
            prologue: list[ast.stmt] = [self.tick(node)]
            for param in params:
                local = self.declare(param.name, param.type_name)
                argnames.append(local.pyname)
                if param.type_name is not None:
                    converted = _call(
                        "_convert", _const(param.type_name), _name(local.pyname), _const(INVALID_ARGUMENT)
                    )
                    prologue.append(_at(param, ast.Assign([_name(local.pyname, True)], converted)))
            if isinstance(body, n.Block):
                defs, statements, _ = self.compile_block_body(body.statements, "_r")
                statements = defs + statements + [ast.Return(_name("_r"))]
            else:
                statements = self.compile_statement(n.Return(body.line, body.column, body))
            nonlocals = [ast.Nonlocal(sorted(self.func.nonlocals))] if self.func.nonlocals else []
            prologue = self.null_locals(self.func, tuple(argnames)) + prologue
            fn = ast.FunctionDef(
                name=pyname,
                args=_arguments(argnames, defaults=True),
                body=nonlocals + prologue + statements,
                decorator_list=[],
                returns=None,
            )
            return _at(node, fn)
        finally:
            self.func = outer
            self.pre, self.conditional = saved_pre, saved_conditional

    def lambda_value(self, node: n.Lambda) -> ast.expr:
        pyname = self.fresh("_l")
        self.pre.append(self.build_function(node, pyname, node.params, node.body))
        return _at(node, _call("_Fn", _name(pyname), _const("lambda")))

    def block_value(self, node: n.Node) -> ast.expr:
        """An if/switch/try/block used inside an expression. Where it runs unconditionally it is hoisted before the
        statement; under a condition it becomes a closure so that it runs only when reached."""
        if not self.conditional:
            target = self.fresh("_b")
            self.pre.extend(self.compile_valued_statement(node, target))
            return _name(target)
        outer = self.func
        pyname = self.fresh("_x")
        self.func = PyFunction(outer, "closure", [Scope()])
        saved_pre, saved_conditional = self.pre, self.conditional
        self.pre, self.conditional = [], 0
        try:
            statements = self.compile_valued_statement(node, "_r")
            nonlocals = [ast.Nonlocal(sorted(self.func.nonlocals))] if self.func.nonlocals else []
            fn = ast.FunctionDef(
                name=pyname,
                args=_arguments([], defaults=False),
                body=nonlocals + self.null_locals(self.func) + statements + [ast.Return(_name("_r"))],
                decorator_list=[],
                returns=None,
            )
        finally:
            self.func = outer
            self.pre, self.conditional = saved_pre, saved_conditional
        self.pre.append(_at(node, fn))
        return _at(node, _call(pyname))

    # -- expressions ---------------------------------------------------------------------------------------------

    def expr(self, node: n.Node) -> ast.expr:
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.error(node, f"unsupported expression {type(node).__name__}")
        return method(node)

    def conditionally(self, node: n.Node) -> ast.expr:
        self.conditional += 1
        try:
            return self.expr(node)
        finally:
            self.conditional -= 1

    def known_boolean(self, node: n.Node) -> bool:
        if isinstance(node, n.Literal):
            return isinstance(node.value, bool)
        if isinstance(node, n.Binary):
            return node.op in _BOOLEAN_OPS
        if isinstance(node, n.Unary):
            return node.op == "!"
        if isinstance(node, n.MethodCall):
            return not node.optional and not node.spread and node.name in self.inline_methods and len(node.args) == 1
        return isinstance(node, n.Logical | n.InstanceOf)

    def condition(self, node: n.Node) -> ast.expr:
        value = self.expr(node)
        return value if self.known_boolean(node) else self.checked_boolean(node, value, "_condition")

    def checked_boolean(self, node: n.Node, value: ast.expr, helper: str) -> ast.expr:
        """A boolean passes as it is; anything else goes to the helper, which maps null or raises the right code."""
        bound, temp = self.hold(value)
        is_bool = ast.Compare(_call("_type", bound), [ast.Is()], [_name("_bool")])
        return _at(node, ast.IfExp(is_bool, _name(temp), _call(helper, _name(temp))))

    def expr_Literal(self, node: n.Literal) -> ast.expr:
        return self.literal(node)

    def expr_Name(self, node: n.Name) -> ast.expr:
        return self.load_name(node)

    def load_name(self, node: n.Name, count_free: bool = True) -> ast.expr:
        name = node.name
        resolved = self.resolve(name)
        if resolved is not None:
            return _at(node, _name(resolved[0].pyname))
        if name in self.constant_values:
            return _at(node, self.constant_load(name))
        if count_free and name not in self.assigned:
            self.free[name] = None
        key = _const(name)
        from_context = _at(node, ast.Call(ast.Attribute(_name("_ctx"), "get", ast.Load()), [key], []))
        if name not in self.global_writes:
            return self.cached_read(name, from_context)
        in_globals = ast.Compare(_const(name), [ast.In()], [_name("_S")])
        return _at(node, ast.IfExp(in_globals, ast.Subscript(_name("_S"), _const(name), ast.Load()), from_context))

    def hold(self, value: ast.expr) -> tuple[ast.expr, str]:
        """(an expression evaluating `value` once, the name that holds it afterwards): a name needs no temporary."""
        if isinstance(value, ast.Name):
            return value, value.id
        if isinstance(value, ast.NamedExpr):
            return value, value.target.id  # type: ignore[attr-defined]
        temp = self.fresh()
        return ast.NamedExpr(_name(temp, True), value), temp

    def cached_read(self, name: str, read: ast.expr) -> ast.expr:
        """In a chain like `age >= 18 && age < 65`, the first operand always runs before the others, so a fact it
        reads can be kept in a temporary for them (facts do not change during a run)."""
        if self.read_cache is None:
            return read
        cached = self.read_cache.get(name)
        if cached is not None:
            return _name(cached)
        if self.conditional != self.cache_level:
            return read
        temp = self.read_cache[name] = self.fresh()
        return ast.NamedExpr(_name(temp, True), read)

    def store_name(self, target: n.Name, value: ast.expr) -> ast.expr:
        """Assignment to a variable as an expression (its value is the assigned value)."""
        name = target.name
        resolved = self.resolve(name)
        if resolved is not None:
            local, owner = resolved
            if local.type_name is not None:
                value = _call("_convert", _const(local.type_name), value, _const(INCOMPATIBLE_ASSIGNMENT_TYPE))
            if owner is not self.func:
                self.mark_nonlocal(local.pyname, owner)
            return _at(target, ast.NamedExpr(_name(local.pyname, True), value))
        if name in self.constant_values:
            raise self.error(target, f"'{name}' is a constant and cannot be assigned")
        self.assigned.add(name)
        return _at(target, _call("_set_global", _name("_S"), _const(name), value))

    def store_name_statement(self, target: n.Name, value: ast.expr) -> ast.stmt:
        self.needs_budget = True  # a stored value can be used twice: `a = [a, a]` doubles without a loop
        resolved = self.resolve(target.name)
        if resolved is None and target.name not in self.constant_values:
            self.assigned.add(target.name)
            store = ast.Subscript(_name("_S"), _const(target.name), ast.Store())
            return _at(target, ast.Assign([store], value))
        return _at(target, ast.Expr(self.store_name(target, value)))

    def mark_nonlocal(self, pyname: str, owner: PyFunction) -> None:
        func: PyFunction | None = self.func
        while func is not None and func is not owner:
            func.nonlocals.add(pyname)
            func = func.parent

    def expr_Template(self, node: n.Template) -> ast.expr:
        parts = [_const(part) if isinstance(part, str) else self.expr(part) for part in node.parts]
        return _at(node, _call("_template", *parts))

    def expr_ListLit(self, node: n.ListLit) -> ast.expr:
        built = _at(node, ast.List([self.expr(item) for item in node.items], ast.Load()))
        if all(_is_scalar_literal(item) for item in node.items):
            return built  # its size is the script's own
        return _at(node, _call("_new_list", built))  # charged to the run's memory budget (budget.py)

    def expr_MapLit(self, node: n.MapLit) -> ast.expr:
        keys: list[ast.expr | None] = [_const(key) for key, _ in node.items]
        values = [self.expr(value) for _, value in node.items]
        built = _at(node, ast.Dict(keys, values))
        if all(_is_scalar_literal(value) for _, value in node.items):
            return built
        return _at(node, _call("_new_map", built))

    def expr_Unary(self, node: n.Unary) -> ast.expr:
        operand = self.expr(node.operand)
        if node.op == "!":
            if self.known_boolean(node.operand):
                return _at(node, ast.UnaryOp(ast.Not(), operand))
            return _at(node, _call("_not", operand))
        helper = {"-": "_neg", "+": "_pos", "~": "_invert"}[node.op]
        return _at(node, _call(helper, operand))

    def expr_Binary(self, node: n.Binary) -> ast.expr:
        op = node.op
        if op in ("==", "!="):
            special = self.equality(node)
            if special is not None:
                return special
        if op in ("in", "not_in"):
            special = self.membership(node)
            if special is not None:
                return special
        left = self.expr(node.left)
        right = self.expr(node.right)
        if op in _COMPARE_HELPERS:
            return self.ordering(node, left, right)
        if op in _PY_ARITHMETIC and self.float_arithmetic:
            return self.float_arithmetic_inline(node, left, right)
        return _at(node, _call(_BINARY_HELPERS[op], left, right))

    def float_arithmetic_inline(self, node: n.Binary, left: ast.expr, right: ast.expr) -> ast.expr:
        """`price * qty` with a float on the left and an int or float on the right is double arithmetic, as in Python;
        every other case goes to the helper. (`&` rather than `and`: both operands must be evaluated, in order.)
        An int beyond the double range raises OverflowError here, which runtime.as_ql_error maps to the
        INVALID_ARITHMETIC the helper raises for the same operands."""
        a, b = self.fresh(), self.fresh()
        left_is_float = ast.Compare(_call("_type", ast.NamedExpr(_name(a, True), left)), [ast.Is()], [_name("_float")])
        right_is_number = ast.Compare(
            _call("_type", ast.NamedExpr(_name(b, True), right)), [ast.In()], [_name("_fast_numbers")]
        )
        test = ast.BinOp(left_is_float, ast.BitAnd(), right_is_number)
        fast = ast.BinOp(_name(a), _PY_ARITHMETIC[node.op](), _name(b))
        return _at(node, ast.IfExp(test, fast, _call(_BINARY_HELPERS[node.op], _name(a), _name(b))))

    def equality(self, node: n.Binary) -> ast.expr | None:
        """`x == literal` as a plain Python comparison where Python and QL agree for every possible x."""
        left, right = node.left, node.right
        if _is_scalar_literal(left) and not _is_scalar_literal(right):
            left, right = right, left
        if not _is_scalar_literal(right) or _is_scalar_literal(left):  # `1 is None` would be a SyntaxWarning
            return None
        value = right.value  # type: ignore[attr-defined]
        negate = node.op == "!="
        subject = self.expr(left)
        if value is None or isinstance(value, bool):
            op: ast.cmpop = ast.IsNot() if negate else ast.Is()
        elif isinstance(value, str) or (
            isinstance(value, int) and value not in (0, 1) and abs(value) < _EXACT_DOUBLE_INTEGERS
        ):
            # No bool equals such a value in Python either, and numbers compare by value like Java.
            op = ast.NotEq() if negate else ast.Eq()
        else:
            return _at(node, _call("_ne" if negate else "_eq", subject, self.expr(right)))
        return _at(node, ast.Compare(subject, [op], [_const(value)]))

    def ordering(self, node: n.Binary, left: ast.expr, right: ast.expr) -> ast.expr:
        helper = _COMPARE_HELPERS[node.op]
        literal = node.right
        if (
            isinstance(literal, n.Literal)
            and isinstance(literal.value, int | float)
            and not isinstance(literal.value, bool)
            and abs(literal.value) < _EXACT_DOUBLE_INTEGERS
        ):
            # Python compares int with float exactly and Java through double; for a literal this small (and an int
            # or float subject) both agree, but for Double.compare's two special cases: NaN is above everything
            # (so `x > 1` is `not x <= 1`), and -0.0 is below 0.0 (so a zero literal takes the fast path for ints
            # only).
            bound, temp = self.hold(left)
            fast: ast.expr
            if node.op in (">", ">="):
                negated = ast.LtE() if node.op == ">" else ast.Lt()
                fast = ast.UnaryOp(ast.Not(), ast.Compare(_name(temp), [negated], [right]))
            else:
                fast = ast.Compare(_name(temp), [_PY_COMPARE[node.op]()], [right])
            subject_type = _call("_type", bound)
            if literal.value == 0:
                is_plain_number = ast.Compare(subject_type, [ast.Is()], [_name("_int")])
            else:
                is_plain_number = ast.Compare(subject_type, [ast.In()], [_name("_fast_numbers")])
            return _at(node, ast.IfExp(is_plain_number, fast, _call(helper, _name(temp), right)))
        return _at(node, _call(helper, left, right))

    def membership(self, node: n.Binary) -> ast.expr | None:
        """`x in [literals]` (or a constant list) with scalars of one kind: a frozenset lookup when x has that kind."""
        items = self.constant_items(node.right)
        if items is None or not items:
            return None
        kinds = {type(item) for item in items}
        if kinds not in ({str}, {int}):
            return None
        kind = kinds.pop()
        members = self.bind_constant(frozenset(items))
        fallback = self.bind_constant(tuple(items))
        subject, temp = self.hold(self.expr(node.left))
        is_kind = ast.Compare(_call("_type", subject), [ast.Is()], [_name("_str" if kind is str else "_int")])
        fast: ast.expr = ast.Compare(_name(temp), [ast.In()], [members])
        slow: ast.expr = _call("_in", _name(temp), fallback)
        result: ast.expr = ast.IfExp(is_kind, fast, slow)
        if node.op == "not_in":
            result = ast.UnaryOp(ast.Not(), result)
        return _at(node, result)

    def constant_items(self, node: n.Node) -> list[Any] | None:
        if isinstance(node, n.ListLit) and all(_is_scalar_literal(item) for item in node.items):
            return [item.value for item in node.items]  # type: ignore[attr-defined]
        if isinstance(node, n.Name) and self.resolve(node.name) is None and node.name in self.constant_values:
            value = self.constant_values[node.name]
            scalars = all(v is None or isinstance(v, bool | int | float | str) for v in value)
            if isinstance(value, list) and scalars and not self.mutates:  # a mutating script works on a copy
                return list(value)
        return None

    def expr_Logical(self, node: n.Logical) -> ast.expr:
        is_and = node.op == "&&"
        if node.eager or not self.short_circuit:
            values = [self.expr(operand) for operand in node.operands]
            helper = "_and_all" if is_and else "_or_all"
            return _at(node, _call(helper, ast.Tuple(values, ast.Load())))
        first, rest = ("_and_left", "_and_right") if is_and else ("_or_left", "_or_right")
        owns_cache = self.read_cache is None and all(_is_simple(operand) for operand in node.operands)
        if owns_cache:
            self.read_cache = {}
        operands = []
        try:
            for position, operand in enumerate(node.operands):
                if owns_cache:
                    self.cache_level = self.conditional + (0 if position == 0 else 1)
                value = self.expr(operand) if position == 0 else self.conditionally(operand)
                if not self.known_boolean(operand):
                    value = self.checked_boolean(operand, value, first if position == 0 else rest)
                operands.append(value)
        finally:
            if owns_cache:
                self.read_cache = None
        return _at(node, ast.BoolOp(ast.And() if is_and else ast.Or(), operands))

    def expr_InstanceOf(self, node: n.InstanceOf) -> ast.expr:
        return _at(node, _call("_instance_of", self.expr(node.operand), _const(node.type_name)))

    def expr_Cast(self, node: n.Cast) -> ast.expr:
        return _at(node, _call("_cast", _const(node.type_name), self.expr(node.operand)))

    def expr_Ternary(self, node: n.Ternary) -> ast.expr:
        test = self.condition(node.condition)
        return _at(node, ast.IfExp(test, self.conditionally(node.then), self.conditionally(node.otherwise)))

    def expr_Assign(self, node: n.Assign) -> ast.expr:
        self.needs_budget = True  # see store_name_statement
        target = node.target
        if node.op == "=":
            value = self.expr(node.value)
            if isinstance(target, n.Name):
                return self.store_name(target, value)
            return self.store_member(target, lambda _current: value)
        helper = _BINARY_HELPERS[node.op[:-1]]
        if isinstance(target, n.Name):
            current = self.load_name(target)
            return self.store_name(target, _at(node, _call(helper, current, self.expr(node.value))))
        return self.store_member(target, lambda current: _at(node, _call(helper, current, self.expr(node.value))))

    def store_member(self, target: n.Node, make_value: Any) -> ast.expr:
        """`obj.f = v` / `obj[k] = v`, evaluating obj and k once; make_value gets the current value's expression."""
        self.mutates = True
        obj_temp = self.fresh()
        obj = ast.NamedExpr(_name(obj_temp, True), self.expr(target.obj))  # type: ignore[attr-defined]
        if isinstance(target, n.Field):
            key: ast.expr = _const(target.name)
            current: ast.expr = _call("_fieldn", _name(obj_temp), key)
            return _at(target, _call("_set_field", obj, key, make_value(current)))
        assert isinstance(target, n.Index)
        key_temp = self.fresh()
        key = ast.NamedExpr(_name(key_temp, True), self.expr(target.index))
        current = _call("_indexn", _name(obj_temp), _name(key_temp))
        return _at(target, _call("_set_index", obj, key, make_value(current)))

    def expr_IncDec(self, node: n.IncDec) -> ast.expr:
        helper = "_add" if node.op == "++" else "_sub"
        op, one = _const(node.op), _const(1)
        target = node.target
        old = self.fresh()

        def stepped(current: ast.expr) -> ast.expr:
            """`current` ± 1, keeping the (checked) start value in `old` for a postfix result."""
            checked = _call("_incdec_operand", op, current)
            return _call(helper, checked if node.prefix else ast.NamedExpr(_name(old, True), checked), one)

        if not isinstance(target, n.Name | n.Field | n.Index):  # `++1`: QLExpress computes the value, stores nothing
            value = stepped(self.expr(target))
            if node.prefix:
                return _at(node, value)
            return _at(node, ast.Subscript(ast.Tuple([value, _name(old)], ast.Load()), _const(1), ast.Load()))
        if isinstance(target, n.Name):
            store = self.store_name(target, stepped(self.load_name(target)))
        else:
            store = self.store_member(target, stepped)
        if node.prefix:
            return _at(node, store)
        return _at(node, ast.Subscript(ast.Tuple([store, _name(old)], ast.Load()), _const(1), ast.Load()))

    def expr_Field(self, node: n.Field) -> ast.expr:
        if isinstance(node.obj, n.ClassRef):
            return _at(node, _call("_class_field", _const(node.obj.name), _const(node.name)))
        obj = self.expr(node.obj)
        key = _const(node.name)
        slow = "_field_or_null" if node.optional else "_fieldn"
        bound, temp = self.hold(obj)
        is_dict = ast.Compare(_call("_type", bound), [ast.Is()], [_name("_dict")])
        fast = ast.Call(ast.Attribute(_name(temp), "get", ast.Load()), [key], [])
        return _at(node, ast.IfExp(is_dict, fast, _call(slow, _name(temp), key)))

    def expr_SpreadField(self, node: n.SpreadField) -> ast.expr:
        return _at(node, _call("_spread_field", self.expr(node.obj), _const(node.name), _name("_ANP")))

    def expr_Index(self, node: n.Index) -> ast.expr:
        obj = self.expr(node.obj)
        index = node.index
        if isinstance(index, n.Literal) and type(index.value) is int and index.value >= 0:
            bound, temp = self.hold(obj)
            is_list = ast.Compare(_call("_type", bound), [ast.Is()], [_name("_list")])
            long_enough: ast.expr = (
                _name(temp)
                if index.value == 0
                else ast.Compare(_call("_len", _name(temp)), [ast.Gt()], [_const(index.value)])
            )
            fast = ast.Subscript(_name(temp), _const(index.value), ast.Load())
            test = ast.BoolOp(ast.And(), [is_list, long_enough])
            return _at(node, ast.IfExp(test, fast, _call("_indexn", _name(temp), _const(index.value))))
        return _at(node, _call("_indexn", obj, self.expr(index)))

    def expr_Slice(self, node: n.Slice) -> ast.expr:
        start = self.expr(node.start) if node.start is not None else _name("_OPEN")
        stop = self.expr(node.stop) if node.stop is not None else _name("_OPEN")
        return _at(node, _call("_slicen", self.expr(node.obj), start, stop))

    def expr_Call(self, node: n.Call) -> ast.expr:
        pyname = self.resolve_function(node.name)
        if pyname is not None:
            return _at(node, _call(pyname, *[self.expr(arg) for arg in node.args]))
        if node.name in self.host_function_names:
            host = self.host_functions.get(node.name)
            if host is None:
                host = self.host_functions[node.name] = self.fresh("_h")
            if node.name in self.budgeted_functions:
                self.needs_budget = True
            return _at(node, _call(host, *[self.expr(arg) for arg in node.args]))
        # A variable holding a lambda; Python evaluates the callee before the arguments, so compile it first too.
        callee = self.load_name(n.Name(node.line, node.column, node.name), count_free=False)
        args = [self.expr(arg) for arg in node.args]
        return _at(node, _call("_call_value", callee, _const(node.name), ast.Tuple(args, ast.Load()), _name("_ANP")))

    def expr_CallValue(self, node: n.CallValue) -> ast.expr:
        callee = self.expr(node.callee)
        args = ast.Tuple([self.expr(arg) for arg in node.args], ast.Load())
        return _at(node, _call("_call_value", callee, _const("(expression)"), args, _name("_ANP")))

    def expr_MethodCall(self, node: n.MethodCall) -> ast.expr:
        if isinstance(node.obj, n.ClassRef):
            args = [self.expr(arg) for arg in node.args]
            return _at(node, _call("_class_method", _const(node.obj.name), _const(node.name), *args))
        helper = "_meth_spread" if node.spread else "_meth_opt" if node.optional else "_meth"
        receiver = self.expr(node.obj)  # compiled in evaluation order: the receiver, then the arguments
        args = [self.expr(arg) for arg in node.args]
        if helper == "_meth" and node.name in self.inline_methods and len(args) == 1:
            return self.inline_string_method(node, receiver, args[0])
        return _at(node, _call(helper, receiver, _const(node.name), *args))

    def inline_string_method(self, node: n.MethodCall, receiver: ast.expr, arg: ast.expr) -> ast.expr:
        """`s.startsWith(p)` on two strings as the Python str method; anything else through the method table."""
        subject = self.fresh()
        is_str = ast.Compare(_call("_type", ast.NamedExpr(_name(subject, True), receiver)), [ast.Is()], [_name("_str")])
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            test: ast.expr = is_str
            argument: ast.expr = arg
        else:
            # `&`, not `and`: the argument must be evaluated (and bound) whatever the receiver is.
            temp = self.fresh()
            arg_is_str = ast.Compare(_call("_type", ast.NamedExpr(_name(temp, True), arg)), [ast.Is()], [_name("_str")])
            test, argument = ast.BinOp(is_str, ast.BitAnd(), arg_is_str), _name(temp)
        python_method = self.inline_methods[node.name]
        fast = ast.Call(ast.Attribute(_name(subject), python_method, ast.Load()), [argument], [])
        # The fast result is a boolean; so is the standard method's, except for a map holding a lambda under that
        # name, whose result is held to the rules of a condition.
        slow = _call("_condition", _call("_meth", _name(subject), _const(node.name), argument))
        return _at(node, ast.IfExp(test, fast, slow))

    def expr_MethodRef(self, node: n.MethodRef) -> ast.expr:
        if isinstance(node.obj, n.ClassRef):
            return _at(node, _call("_class_method", _const(node.obj.name), _const(node.name)))
        return _at(node, _call("_method_ref", self.expr(node.obj), _const(node.name), _name("_ANP")))

    def expr_ClassRef(self, node: n.ClassRef) -> ast.expr:
        return _at(node, _call("_class_field", _const(node.name), _const("class")))

    def expr_New(self, node: n.New) -> ast.expr:
        return _at(node, _call("_new_object", _const(node.type_name)))

    def expr_Lambda(self, node: n.Lambda) -> ast.expr:
        return self.lambda_value(node)

    def expr_If(self, node: n.If) -> ast.expr:
        return self.block_value(node)

    def expr_Switch(self, node: n.Switch) -> ast.expr:
        return self.block_value(node)

    def expr_Try(self, node: n.Try) -> ast.expr:
        return self.block_value(node)

    def expr_Block(self, node: n.Block) -> ast.expr:
        return self.block_value(node)


# How `_main(_ctx, _mode)` is called: as Program.run itself, from Program's slow path, or to define the functions.
MODE_ENTRY, MODE_RUN, MODE_DEFINE = 0, 1, 2
_RUN_OPTIONS = (
    ("precise", False),
    ("avoid_null_pointer", False),
    ("short_circuit", True),
    ("timeout_ms", None),
    ("memory_bytes", None),
)


def _entry_arguments() -> ast.arguments:
    """`_main(_ctx=None, precise=False, avoid_null_pointer=False, short_circuit=True, timeout_ms=None, _mode=0)`:
    Program.run's parameters, so that run is this function itself (one call frame). They are not keyword-only as in
    Program.run: CPython calls a function with positional defaults faster."""
    names = ["_ctx", *(name for name, _ in _RUN_OPTIONS), "_mode"]
    defaults = [None, *(default for _, default in _RUN_OPTIONS), MODE_ENTRY]
    return ast.arguments(
        posonlyargs=[],
        args=[ast.arg(name) for name in names],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[_const(default) for default in defaults],
    )


def _entry_check(straight: bool) -> ast.stmt:
    """Called as run(): anything but the plain case (options, a non-dict context, a budget) takes Program's path."""
    slow_run = ast.Return(_call("_slow_run", _name("_ctx"), *[_name(name) for name, _ in _RUN_OPTIONS]))
    if not straight:
        test: ast.expr = _const(True)
    else:
        test = ast.BoolOp(
            ast.Or(),
            [
                _name("precise"),
                _name("avoid_null_pointer"),
                ast.UnaryOp(ast.Not(), _name("short_circuit")),
                ast.Compare(_call("_type", _name("_ctx")), [ast.IsNot()], [_name("_dict")]),
            ],
        )
    is_entry = ast.Compare(_name("_mode"), [ast.Eq()], [_const(MODE_ENTRY)])
    return ast.If(ast.BoolOp(ast.And(), [test, is_entry]), [slow_run], [])


def _error_handler() -> ast.ExceptHandler:
    """Every failure leaves the script as a QLError positioned at the failing QL node."""
    failure = _call("_fail", _name("_e"))
    return ast.ExceptHandler(_name("_Exception"), "_e", [ast.Raise(failure, _call("_cause", _name("_e")))])


_SIMPLE_NODES = (n.Literal, n.Name, n.Binary, n.Unary, n.Logical, n.Field, n.Index, n.InstanceOf, n.ListLit)


def _is_simple(node: n.Node) -> bool:
    """Only operators, names, literals and paths: compiled strictly in evaluation order, with no hoisted blocks,
    closures or assignments, so a temporary bound in one place is bound before every later use."""
    stack: list[Any] = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, _SIMPLE_NODES):
            return False
        stack.extend(n.children(current))
    return True


def _arguments(names: list[str], defaults: bool) -> ast.arguments:
    """Parameters; QL functions take missing arguments as null and ignore extra ones."""
    return ast.arguments(
        posonlyargs=[],
        args=[ast.arg(name) for name in names],
        vararg=ast.arg("_rest") if defaults else None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[_const(None) for _ in names] if defaults else [],
    )


def _locate_all(module: ast.Module) -> None:
    """Give every node a position: children without one inherit their parent's (like ast.fix_missing_locations)."""
    stack: list[tuple[ast.AST, int, int]] = [(module, 1, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, line, column = pop()
        if node._attributes:  # statements, expressions and the few other nodes that carry a position
            if getattr(node, "lineno", None) is None:
                node.lineno, node.col_offset = line, column  # type: ignore[attr-defined]
                node.end_lineno, node.end_col_offset = line, column + 1  # type: ignore[attr-defined]
            else:
                line, column = node.lineno, node.col_offset  # type: ignore[attr-defined]
                if getattr(node, "end_lineno", None) is None:
                    node.end_lineno, node.end_col_offset = line, column + 1  # type: ignore[attr-defined]
        for child in _child_nodes(node):
            push((child, line, column))


def _mentions_name(statements: list[ast.stmt], name: str) -> bool:
    """Whether any node under statements is the Python name `name`."""
    stack: list[ast.AST] = list(statements)
    while stack:
        node = stack.pop()
        if type(node) is ast.Name and node.id == name:
            return True
        stack.extend(_child_nodes(node))
    return False


def _child_nodes(node: ast.AST) -> list[ast.AST]:
    """ast.iter_child_nodes as a list: every node of every compiled program passes through here, and the two nested
    generators of iter_child_nodes made the walks over them a quarter of compiling a rule set."""
    children: list[ast.AST] = []
    for attribute in node._fields:
        value = getattr(node, attribute, None)
        if isinstance(value, ast.AST):
            children.append(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, ast.AST):
                    children.append(item)
    return children


def _collect_writes(program: n.Program) -> tuple[set[str], bool]:
    """Every name an untyped assignment may write (reads of other names go straight to the context), and whether the
    script writes into maps or lists (then it runs on a copy of its context and constants)."""
    names: set[str] = set()
    writes_members = False
    stack: list[Any] = [program]
    while stack:
        node = stack.pop()
        if isinstance(node, n.Assign | n.IncDec):
            if isinstance(node.target, n.Name):
                names.add(node.target.name)
            else:
                writes_members = True
        stack.extend(n.children(node))
    return names, writes_members
