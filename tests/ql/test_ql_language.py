"""QL statements and options beyond single expressions: loops, switch, try, lambdas, macros, slices, spread,
interpolation modes, newline rules, typed declarations, precise and avoid_null_pointer, budgets and threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from verdict_server import ql

BARE = ql.Engine()
STD = ql.Engine(stdlib=True)


def run(source: str, context: dict | None = None, engine: ql.Engine = BARE, **options):
    return engine.compile(source).run(context or {}, **options)


def error_of(source: str, context: dict | None = None, engine: ql.Engine = BARE, **options) -> ql.QLError:
    with pytest.raises(ql.QLError) as caught:
        engine.compile(source).run(context or {}, **options)
    return caught.value


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("s = 0; for (int i = 0; i < 5; i++) { if (i == 3) { continue }; s += i }; s", 7),
        ("s = 0; i = 0; while (true) { i++; if (i > 4) { break }; s += i }; s", 10),
        ("s = 0; for (x : [1, 2, 3]) { s = s + x }; s", 6),
        ("s = 0; for (int x : [1, 2.9]) { s = s + x }; s", 3),
        ("for (j = 0; j < 3; j++) { }; j", 3),
        ("for (int k = 0; k < 3; k++) { }; k", None),
        (
            "s = ''; for (i = 0; i < 4; i++) { switch (i) { case 1: s += 'a'; case 2: s += 'b'; break; default: s += '.' } }; s",
            ".abb.",
        ),
        ("switch (3) { case 1, 2 -> 'low' case 3 -> 'three' default -> 'other' }", "three"),
        ("try { 1 / 0 } catch (e) { e.code }", "INVALID_ARITHMETIC"),
        ("try { throw {k: 1} } catch (e) { e.k }", 1),
        ("try { throw 'x' } catch (int i) { 'int' } catch (String s) { 'string ' + s }", "string x"),
        ("r = 0; try { r = 1 } finally { r = 2 }; r", 2),
        ("add = (a, b) -> a + b; add(1, 2)", 3),
        ("f = (a, b) -> a + b; f('x-')", "x-null"),
        ("mk = (n) -> (x) -> x + n; add10 = mk(10); add10(5)", 15),
        ("[1, 2, 3, 4].filter(i -> i % 2 == 0).map(i -> i * 10)", [20, 40]),
        ("macro inc { c = c + 1 }\nc = 1; inc; inc; c", 3),
        ("[1, 2, 3, 4, 5][1:3]", [2, 3]),
        ("[1, 2, 3, 4, 5][-2:]", [4, 5]),
        ("[1, 2, 3][:]", [1, 2, 3]),
        ("[{a: 1}, {a: 2}]*.a", [1, 2]),
        ("{x: 1, y: 2}*.key", ["x", "y"]),
        ("int a = 3.9; a", 3),
        ("double d = 2; d", 2.0),
        ("String s = null; s", None),
        ("4294967296 << 4", 1 << 36),
        ("long small = 1; small << 40", 256),  # a value within 32 bits shifts as a Java int (docs/ql-compat.md)
        ("{ int hidden = 1; shown = 2 }; hidden == null && shown == 2", True),
        ("f = function; f", None),
        ("m = {}; m", None),
        ("{:}", {}),
        ("x = {'a b': 1}; x.'a b'", 1),
        ("1 instanceof Integer && 1.5 instanceof Double && 'a' instanceof String", True),
        ("(int) 7.9 + (long) -2.5", 5),
        ("0.1 + 0.2 == 0.3", True),
        ("-7 % 3 == -1 && 7 % -3 == 1", True),
        ("-16 >>> 28", 15),
        ("'abc' < 'abd' && true > false", True),
        ("1 == 1.0 && 1 != '1' && [1, 2] == [1, 2] && {a: 1} == {a: 1}", True),
        ("'bc' in 'abc' && null in null && !(null in [null])", True),
        ("'abc' like 'a%c' && 'abc' not_like 'b%' && null like null", True),
        ("x > 10 ? 'big' : x > 5 ? 'mid' : 'small'", "small"),
    ],
)
def test_language(source: str, expected: object) -> None:
    assert run(source, {"x": 1}) == expected


def test_return_ends_the_script_from_inside_loops() -> None:
    assert run("for (i = 0; i < 10; i++) { if (i == 4) { return i * 10 } }; -1") == 40


def test_functions_are_hoisted_and_see_typed_locals_declared_before_them() -> None:
    assert run("int base = 1;\nr = twice(4)\nfunction twice(n) { return n * 2 + base }\nr + twice(1)") == 12


def test_a_typed_local_read_before_its_declaration_ran_is_null() -> None:
    error = error_of("r = twice(4)\nint base = 1;\nfunction twice(n) { return n * 2 + base }")
    assert error.code == ql.errors.INVALID_BINARY_OPERAND


def test_interpolation_modes() -> None:
    source = '"n=${n + 1}"'
    assert STD.compile(source).run({"n": 1}) == "n=2"
    assert STD.compile('"n=${n}"', interpolation="variable").run({"n": 1}) == "n=1"
    assert STD.compile(source, interpolation="disable").run({"n": 1}) == "n=${n + 1}"
    assert run('"\\${n}"', {"n": 1}) == "${n}"


def test_strict_newlines() -> None:
    assert BARE.compile("a\n+ b").run({"a": 1, "b": 2}) == 2
    assert BARE.compile("a\n+ b", strict_newlines=False).run({"a": 1, "b": 2}) == 3
    assert BARE.compile("a +\n b").run({"a": 1, "b": 2}) == 3
    assert BARE.compile("m\n  .k").run({"m": {"k": 5}}) == 5


def test_precise_mode_uses_decimals_for_arithmetic() -> None:
    program = BARE.compile("a + b == 0.3")
    assert program.run({"a": 0.1, "b": 0.2}) is False
    assert program.run({"a": 0.1, "b": 0.2}, precise=True) is True
    assert BARE.compile("1 + 2").run({}, precise=True) == Decimal(3)


def test_avoid_null_pointer() -> None:
    program = BARE.compile("a.b.c() + '' + missing(1) + x[0] + (y > 1)")
    assert program.run({}, avoid_null_pointer=True) == "nullnullnullfalse"
    assert error_of("a.b").code == ql.errors.NULL_FIELD_ACCESS


def test_short_circuit_off_evaluates_every_operand() -> None:
    program = BARE.compile("false && 1 / 0 == 1")
    assert program.run({}) is False
    with pytest.raises(ql.QLRuntimeError) as caught:
        program.run({}, short_circuit=False)
    assert caught.value.code == ql.errors.INVALID_ARITHMETIC


@pytest.mark.parametrize(
    ("source", "code", "position"),
    [
        ("a = 1\nb = a +", ql.errors.SYNTAX_ERROR, (2, 8)),
        ("x = 'open", ql.errors.SYNTAX_ERROR, (1, 5)),
        ("/* never closed", ql.errors.SYNTAX_ERROR, (1, 1)),
        ("x = 019", ql.errors.INVALID_NUMBER, (1, 5)),  # a leading 0 means octal (found by fuzzing)
        ("function f() { 1 }\nfunction f() { 2 }", ql.errors.SYNTAX_ERROR, (2, 1)),
        ("x not in [1]", ql.errors.SYNTAX_ERROR, (1, 7)),
        ("1 = 2", ql.errors.SYNTAX_ERROR, (1, 3)),
        ("break", ql.errors.SYNTAX_ERROR, (1, 1)),
        ("a = 1;\nimport x.Y;", ql.errors.SYNTAX_ERROR, (2, 1)),
        ("switch (1) { case 1: 1\ncase 2 -> 2 }", ql.errors.SWITCH_STYLE_MISMATCH, (2, 8)),
    ],
)
def test_compile_errors_have_positions(source: str, code: str, position: tuple[int, int]) -> None:
    with pytest.raises(ql.QLError) as caught:
        BARE.compile(source)
    assert caught.value.code == code
    assert (caught.value.line, caught.value.column) == position
    assert f"[Line: {position[0]}, Column: {position[1]}]" in str(caught.value)


@pytest.mark.parametrize(
    ("source", "code", "position"),
    [
        ("x = 1\ny = x + null", ql.errors.INVALID_BINARY_OPERAND, (2, 7)),
        ("if (1) { 2 }", ql.errors.CONDITION_BOOL_REQUIRED, (1, 5)),
        ("l = [1]\nl[5]", ql.errors.INDEX_OUT_BOUND, (2, 2)),
        ("'abc'[0]", ql.errors.NONINDEXABLE_OBJECT, (1, 6)),
        ("m = {:}\nm.a.b", ql.errors.NULL_FIELD_ACCESS, (2, 5)),
        ("m = {}\nm.a.b", ql.errors.NULL_FIELD_ACCESS, (2, 3)),  # {} is an empty block: m is null
        ("unknownFn(1)", ql.errors.FUNCTION_NOT_FOUND, (1, 1)),
        ("while (1) { }", ql.errors.WHILE_CONDITION_BOOL_REQUIRED, (1, 8)),
        ("for (x : 5) { }", ql.errors.FOR_EACH_ITERABLE_REQUIRED, (1, 10)),
        ("int i = 'a';", ql.errors.INCOMPATIBLE_ASSIGNMENT_TYPE, (1, 5)),
        ("function f(int n) { n }\nf('x')", ql.errors.INVALID_ARGUMENT, (1, 16)),
        ("7 % 0", ql.errors.EXECUTE_OPERATOR_EXCEPTION, (1, 3)),
    ],
)
def test_runtime_errors_have_positions(source: str, code: str, position: tuple[int, int]) -> None:
    error = error_of(source)
    assert error.code == code
    assert (error.line, error.column) == position


def test_host_function_failure_is_a_biz_exception() -> None:
    engine = ql.Engine()
    engine.add_function("boom", lambda: 1 / 0)
    with pytest.raises(ql.QLRuntimeError) as caught:
        engine.compile("x = 1\nboom()").run({})
    assert caught.value.code == ql.errors.BIZ_EXCEPTION
    assert caught.value.line == 2


def test_timeout_ms_stops_a_loop() -> None:
    error = error_of("i = 0; while (true) { i++ }", timeout_ms=20)
    assert isinstance(error, ql.QLTimeoutError)
    assert error.code == ql.errors.SCRIPT_TIME_OUT


def test_program_functions_share_the_caller_budget() -> None:
    engine = ql.Engine(max_steps=50_000)
    shared = engine.compile("function spin() { while (true) { } }")
    with pytest.raises(ql.QLTimeoutError):
        engine.compile("spin()", functions=shared.functions).run({})
    with pytest.raises(ql.QLTimeoutError):
        shared.functions["spin"]()


def test_a_rule_without_loops_runs_a_shared_looping_function_under_its_timeout() -> None:
    engine = ql.Engine()  # the default step budget would take about a second
    shared = engine.compile("function spin() { while (true) { } }")
    with pytest.raises(ql.QLTimeoutError) as caught:
        engine.compile("spin() == 1", functions=shared.functions).run({}, timeout_ms=20)
    assert "steps" not in caught.value.reason, "stopped by the deadline, not by the step budget"


def test_many_threads_share_one_engine_and_program() -> None:
    engine = ql.Engine(stdlib=True)
    source = "function total(n) { s = 0; for (i = 0; i < n; i++) { s += i }; return s }\ntotal(n) + len(tag)"

    def work(worker: int) -> list[str]:
        wrong = []
        for call in range(200):
            n = worker * 7 + call % 13
            result = engine.compile(source).run({"n": n, "tag": "x" * worker})
            if result != n * (n - 1) // 2 + worker:
                wrong.append(f"{worker}/{call}: {result}")
        return wrong

    with ThreadPoolExecutor(8) as pool:
        assert [line for lines in pool.map(work, range(8)) for line in lines] == []
    assert engine.cache_info()["size"] == 1


def test_cache_is_bounded_and_skips_programs_bound_to_a_documents_mappings() -> None:
    engine = ql.Engine(cache_size=2)
    constants = {"k": 1}
    # A program with its own constants belongs to its document: compiled each time, never piled up in the cache.
    first = engine.compile("k", constants=constants)
    assert engine.compile("k", constants=constants) is not first
    assert first.run({}) == 1 and engine.cache_info()["size"] == 0
    one = engine.compile("1")
    assert engine.compile("1") is one
    engine.compile("2")
    engine.compile("3")
    assert engine.cache_info() == {"size": 2, "maxsize": 2, "hits": 1, "misses": 3}


def test_a_script_that_never_names_the_documents_mappings_shares_the_cached_program() -> None:
    engine = ql.Engine(stdlib=True)
    shared = engine.compile("role == 'PHARMACIST'")
    # Two documents' constants and functions it never mentions: the same program, not a copy per document.
    assert engine.compile("role == 'PHARMACIST'", constants={"limit": 1}) is shared
    assert engine.compile("role == 'PHARMACIST'", functions={"isOtc": lambda cat: True}) is shared
    assert engine.cache_info()["hits"] == 2


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("amount > limit", {"amount": 5}, True),  # reads a constant
        ('"over ${limit}"', {}, "over 3"),  # inside a template
        ("limit == null", {"limit": 99}, False),  # the constant, not the fact of the same name
        ("max(1, 2)", {}, "document max"),  # a document function shadowing the standard library's
    ],
)
def test_a_script_that_names_them_is_compiled_with_them(source: str, context: dict, expected: object) -> None:
    engine = ql.Engine(stdlib=True)
    unbound = engine.compile(source)
    bound = engine.compile(source, constants={"limit": 3}, functions={"max": lambda *_: "document max"})
    assert bound is not unbound
    assert bound.run(context) == expected
