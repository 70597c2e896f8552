"""QL end to end: the public API (compile, run, free_variables, functions, constants, errors with positions)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from verdict_server import ql


@pytest.fixture(scope="module")
def bare() -> ql.Engine:
    return ql.Engine()


@pytest.fixture(scope="module")
def std() -> ql.Engine:
    return ql.Engine(stdlib=True)


def run(engine: ql.Engine, source: str, context: dict | None = None, **options):
    return engine.compile(source).run(context or {}, **options)


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("1 + 2 * 3", {}, 7),
        ("(1 + 2) * 3", {}, 9),
        ("1 + 2 in [3]", {}, True),
        ("x in l == true", {"x": 1, "l": [1]}, True),
        (
            "scene == 'NON_MEDICAL' && role == 'PHARMACIST' && categoryId in [1001, 1002, 1003]",
            {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1002},
            True,
        ),
        ("categoryId in [1001, 1002]", {"categoryId": 1002.0}, True),
        ("categoryId in [1, 2]", {"categoryId": True}, False),
        ("a.b.c", {"a": {"b": {"c": 5}}}, 5),
        ("a?.b", {}, None),
        ("l[-1]", {"l": [1, 2, 3]}, 3),
        ("x > 100 ? 1 : x > 50 ? 2 : 3", {"x": 70}, 2),
        ("x = 1; y = x + 2; y", {}, 3),
        ("'a' + 1 + 2", {}, "a12"),
        ("1 + 2 + 'a'", {}, "3a"),
        ('"hi ${name}!"', {"name": "Bo"}, "hi Bo!"),
        ("{a: 1, 'b': [1, 2]}", {}, {"a": 1, "b": [1, 2]}),
        ("if (x > 1) { 'big' } else { 'small' }", {"x": 0}, "small"),
        ("function f(n) { if (n <= 1) { return 1 }; return n * f(n - 1) }\nf(5)", {}, 120),
        ("-11 % 3", {}, -2),
        ("name like 'ab%'", {"name": "abc"}, True),
        ("null && true", {}, False),
        ("user.level >= 3 && user.name != null", {"user": {"level": 4, "name": "x"}}, True),
        # a fact read by the first operand of a chain is reused by the later ones
        ("(a > 1 && a < 5) || a == 7 || (b == 1 && a == 9)", {"a": 7}, True),
        ("(a > 1 && a < 5) || a == 7 || (b == 1 && a == 9)", {"a": 9, "b": 1}, True),
        ("(a > 1 && a < 5) || a == 7 || (b == 1 && a == 9)", {"a": 9, "b": 2}, False),
        ("(a > 1 && a < 5) || a == 7 || (b == 1 && a == 9)", {"a": 3}, True),
    ],
)
def test_expressions(bare: ql.Engine, source: str, context: dict, expected: object) -> None:
    assert run(bare, source, context) == expected


def test_run_without_a_context_reads_nulls(bare: ql.Engine) -> None:
    assert bare.compile("x == null").run() is True
    with pytest.raises(ql.QLRuntimeError) as caught:
        bare.compile("x").run(["not", "a", "mapping"])
    assert caught.value.code == ql.errors.INVALID_ARGUMENT


def test_division_is_decimal_with_qlexpress_scale(bare: ql.Engine) -> None:
    assert run(bare, "1 / 3") == Decimal("0.3333333333")
    assert run(bare, "80 / 4") == Decimal("20")
    assert run(bare, "1.0 / 4") == 0.25


def test_context_is_not_modified(bare: ql.Engine) -> None:
    context = {"a": 10, "m": {"k": 1}}
    assert run(bare, "a = 19; m.k = 2; a + m.k", context) == 21
    assert context == {"a": 10, "m": {"k": 1}}


def test_free_variables_exclude_assigned_functions_and_constants(std: ql.Engine) -> None:
    program = std.compile("int a = 1, b = 10;\nc = 11\ne = a + b + c + d\nf+e + max(k, 1)", constants={"k": 3})
    assert program.free_variables == frozenset({"d", "f"})
    assert std.compile("a=a+1").free_variables == frozenset({"a"})
    assert std.compile("${0} + ${1}").free_variables == frozenset({"0", "1"})


def test_bare_engine_has_no_functions(bare: ql.Engine, std: ql.Engine) -> None:
    with pytest.raises(ql.QLRuntimeError) as caught:
        run(bare, "max(1, 2)")
    assert caught.value.code == ql.errors.FUNCTION_NOT_FOUND
    assert run(std, "max(1, 2)") == 2


def test_stdlib_methods(std: ql.Engine) -> None:
    context = {"order": {"items": [{"sku": "OTC-123"}]}, "user": {"level": 4}}
    assert run(std, "order.items[0].sku.startsWith('OTC') && user.level >= 3", context) is True
    assert run(std, "s.startsWith(p) || s.endsWith(p)", {"s": "abc", "p": "c"}) is True
    with pytest.raises(ql.QLError) as caught:
        run(ql.Engine(), "'abc'.startsWith('a')")
    assert caught.value.code == ql.errors.METHOD_NOT_FOUND
    with pytest.raises(ql.QLError) as caught:
        run(std, "n.startsWith(p)", {"n": 5, "p": "a"})
    assert caught.value.code == ql.errors.METHOD_NOT_FOUND


def test_add_function_and_per_program_functions_and_constants(bare: ql.Engine) -> None:
    engine = ql.Engine()
    engine.add_function("twice", lambda x: x * 2)
    assert engine.compile("twice(21)").run({}) == 42
    shared = engine.compile("function isOtc(cat) { return cat in otc }", constants={"otc": [1001, 1002]})
    assert set(shared.functions) == {"isOtc"}
    assert shared.functions["isOtc"](1001) is True
    rule = engine.compile("role == 'P' && isOtc(categoryId)", functions=shared.functions)
    assert rule.run({"role": "P", "categoryId": 1002}) is True
    assert rule.run({"role": "P", "categoryId": 7}) is False
    assert rule.free_variables == frozenset({"role", "categoryId"})


def test_syntax_error_has_position(bare: ql.Engine) -> None:
    with pytest.raises(ql.QLSyntaxError) as caught:
        bare.compile("a = 1\nb = (2 + ")
    assert caught.value.code == ql.errors.SYNTAX_ERROR
    assert (caught.value.line, caught.value.column) == (2, 10)


def test_runtime_error_has_position_of_failing_node(bare: ql.Engine) -> None:
    with pytest.raises(ql.QLRuntimeError) as caught:
        run(bare, "x = 1\ny = user.name.first")
    assert caught.value.code == ql.errors.NULL_FIELD_ACCESS
    assert caught.value.line == 2


def test_compile_is_cached(bare: ql.Engine) -> None:
    engine = ql.Engine()
    assert engine.compile("a + 1") is engine.compile("a + 1")
    assert engine.compile("a + 1") is not engine.compile("a + 1", strict_newlines=False)
    assert engine.cache_info()["size"] == 2


def test_loop_without_timeout_is_stopped_by_the_step_budget() -> None:
    engine = ql.Engine(max_steps=10_000)
    with pytest.raises(ql.QLTimeoutError) as caught:
        engine.compile("while (true) { }").run({})
    assert caught.value.code == ql.errors.SCRIPT_TIME_OUT


def test_throw_is_qlthrow_with_value(bare: ql.Engine) -> None:
    with pytest.raises(ql.QLThrow) as caught:
        run(bare, "throw {code: 7}")
    assert caught.value.value == {"code": 7}
