"""Hostile scripts: every escape attempt, huge allocation, deep nesting or endless run ends in a clean QLError."""

from __future__ import annotations

import ast
import os
import re

import pytest

from verdict_server import ql
from verdict_server.ql.engine import _namespace


class HostObject:
    """A non-mapping object a careless caller might put in the context."""

    secret = "s3cret"

    def method(self) -> str:
        return self.secret


CONTEXT = {"x": 1, "s": "abc", "m": {"k": 1}, "l": [1, 2], "obj": HostObject(), "f": os.getcwd}
DEEP = 5_000

ATTEMPTS = [
    # Python attributes and dunders
    ("dunder on an int", "x.__class__"),
    ("dunder chain", "x.__class__.__bases__"),
    ("subclasses walk", "s.__class__.__mro__[1].__subclasses__()"),
    ("dunder method", "l.__len__()"),
    ("dunder of a missing key", "m.__class__.__name__"),
    ("bound method of a map", "m.get.__self__"),
    ("lambda globals", "f2 = () -> 1; f2.__globals__"),
    ("lambda internals", "f2 = () -> 1; f2.fn.__globals__"),
    ("host object attribute", "obj.secret"),
    ("host object method", "obj.method()"),
    ("host callable in the context", "f()"),
    ("python str method", "s.upper()"),
    ("python list method", "l.append(3)"),
    ("python dict method", "m.items()"),
    ("java map method", "m.keySet()"),
    # builtins and generated names
    ("__import__", "__import__('os')"),
    ("__import__ chain", "__import__('os').system('id')"),
    ("eval", "eval('1 + 1')"),
    ("exec", "exec('x = 1')"),
    ("open", "open('/etc/passwd')"),
    ("getattr", "getattr(x, '__class__')"),
    ("globals", "globals()"),
    ("builtins object", "__builtins__.open('/etc/passwd')"),
    ("generated helper name", "_type(1)"),
    ("generated context name", "_ctx.get('x')"),
    ("generated deepcopy name", "_deepcopy(m)"),
    ("python import statement", "import os;\nos.system('id')"),
    # Java escapes
    ("Runtime", "Runtime.getRuntime().exec('id')"),
    ("System.exit", "System.exit(0)"),
    ("Class.forName", "Class.forName('java.lang.Runtime')"),
    ("constructor", "new java.lang.ProcessBuilder('id').start()"),
    ("method reference", "Runtime::getRuntime"),
    # format-string tricks
    ("str.format", "'{0.__class__}'.format(x)"),
    ("printf-style %", "'%s' % x"),
    ("interpolated import", "\"${__import__('os')}\""),
    ("placeholder dunder", "${__class__}.__name__"),
    # huge allocations
    ("string doubling", "t = 'x'; while (true) { t = t + t }"),
    ("list concatenation", "k = [1]; while (true) { k = k + k }"),
    ("nested lists", "k = []; while (true) { k = [k, k, k] }"),
    ("integer squaring", "y = 2; while (true) { y = y * y }"),
    ("decimal squaring", "y = 1.1; while (true) { y = y * y }"),
    ("big shift", "9223372036854775808 << 100000000"),
    ("huge index", "l[99999999999999999999]"),
    # deep nesting in the source
    ("deep parentheses", "(" * DEEP + "1" + ")" * DEEP),
    ("deep lists", "[" * DEEP + "]" * DEEP),
    ("deep blocks", "{" * DEEP + "}" * DEEP),
    ("deep unary", "!" * DEEP + "true"),
    ("deep field path", "m" + ".k" * DEEP),
    ("long operator chain", "1" + " + 1" * DEEP),
    ("deep ternary", "true ? " * DEEP + "1" + " : 2" * DEEP),
    ("recursive macro", "macro m1 { m1 }\nm1"),
    ("huge source", "x" * 1_000_001),
    # endless runs
    ("while true", "while (true) { }"),
    ("for ever", "for (;;) { }"),
    ("endless recursion", "function r() { return r() }\nr()"),
    ("mutual recursion", "function a1() { return b1() }\nfunction b1() { return a1() }\na1()"),
    ("exponential recursion", "function e(n) { return n <= 0 ? 0 : e(n - 1) + e(n - 1) }\ne(200)"),
    ("catch cannot swallow the budget", "while (true) { try { while (true) { } } catch (e) { } }"),
    ("catch cannot swallow recursion", "function r() { try { return r() } catch (e) { return r() } }\nr()"),
    ("lambda recursion", "g = (n) -> g(n + 1); g(1)"),
    ("filter with an endless lambda", "[1, 2].filter(i -> { while (true) { } })"),
]


@pytest.fixture(scope="module")
def engine() -> ql.Engine:
    return ql.Engine(stdlib=True, max_steps=200_000)


def test_there_are_at_least_forty_attempts() -> None:
    assert len(ATTEMPTS) >= 40


@pytest.mark.parametrize(("name", "source"), ATTEMPTS, ids=[name for name, _ in ATTEMPTS])
def test_attempt_is_refused_with_a_ql_error(engine: ql.Engine, name: str, source: str) -> None:
    context = dict(CONTEXT)
    with pytest.raises(ql.QLError) as caught:
        engine.compile(source).run(context, timeout_ms=2_000)
    assert caught.value.code, name
    assert context == CONTEXT and context["m"] == {"k": 1}


def test_bare_engine_refuses_stdlib_methods_too() -> None:
    with pytest.raises(ql.QLError) as caught:
        ql.Engine().compile("s.startsWith('a')").run({"s": "abc"})
    assert caught.value.code == ql.errors.METHOD_NOT_FOUND


# Every name in generated code is one of the compiler's own (user identifiers become _v1, _S['name'] or ctx keys),
# and the only Python attributes are dict.get and the two inlined str methods.
HELPERS = set(_namespace(False, False, {})) | {
    "_slow_run",
    "_fail",
    "_main",
    "_ctx",
    "_mode",
    "_r",
    "_S",
    "_e",
    "_rest",
    "_",
}
PARAMETERS = {"precise", "avoid_null_pointer", "short_circuit", "timeout_ms", "memory_bytes"}
TEMPORARY = re.compile(r"^_[A-Za-z]\d+$")  # _v1 locals, _t2 temporaries, _f3 functions, _c4 constants ...
ALLOWED_ATTRIBUTES = {"get", "startswith", "endswith"}


def generated(name: str) -> bool:
    return name in HELPERS or name in PARAMETERS or bool(TEMPORARY.match(name))


@pytest.mark.parametrize(
    "source",
    [
        "__class__ = 1; int __globals__ = 2; __class__ + __globals__",
        "function __init__(__dict__) { return __dict__.__class__ } __init__({:})",
        "m.__class__.__mro__; (__x) -> __x.__y; for (__i : l) { __i }",
        "s.startsWith('a') && m.get('k') == 1 && \"${__import__}\" == ''",
    ],
)
def test_generated_code_uses_only_compiler_names(source: str) -> None:
    program = ql.Engine(stdlib=True).compile(source)
    module = program._compile_result(True, False).module
    for node in ast.walk(module):
        if isinstance(node, ast.Name):
            assert generated(node.id), node.id
        elif isinstance(node, ast.Attribute):
            assert node.attr in ALLOWED_ATTRIBUTES, node.attr
        elif isinstance(node, ast.FunctionDef | ast.arg):
            name = node.name if isinstance(node, ast.FunctionDef) else node.arg
            assert generated(name), name
        assert not isinstance(node, ast.Import | ast.ImportFrom | ast.Global)


def test_context_objects_stay_untouched_by_writes() -> None:
    context = {"m": {"k": [1, 2]}}
    result = ql.Engine().compile("m.k[0] = 9; m.n = 1; m").run(context)
    assert result == {"k": [9, 2], "n": 1}
    assert context == {"m": {"k": [1, 2]}}
