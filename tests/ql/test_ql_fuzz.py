"""Property tests: random token soup and mutated real scripts never raise anything but a QLError, and never hang.

Derandomized (the same examples on every run), so the suite stays deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verdict_server import ql

HERE = Path(__file__).parent
SCRIPTS = [json.loads(line)["expr"] for line in (HERE / "cases.jsonl").read_text(encoding="utf-8").splitlines()]
CONTEXT = {"a": 1, "b": 2.5, "s": "text", "l": [1, "x", None, {"k": 1}], "m": {"k": [1, 2], "n": None}, "n": None}

TOKENS = [
    *["a", "b", "c", "s", "l", "m", "n", "x", "f", "i", "k"],
    *[
        "0",
        "1",
        "-1",
        "2147483648",
        "9223372036854775808",
        "0x1F",
        "0b11",
        "017",
        "1.5",
        "0.1",
        "1e3",
        "10L",
        "2.5d",
        ".5",
    ],
    "'q'",
    '"w"',
    '"${a}"',
    '"${a + }"',
    "${a}",
    "'",
    '"',
    "\\",
    *[
        "+",
        "-",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "!",
        "~",
        "&",
        "|",
        "^",
        "<<",
        ">>",
        ">>>",
        "=",
        "+=",
        "-=",
        "*=",
        "/=",
        "%=",
        "++",
        "--",
        "?",
        ":",
        ".",
        "?.",
        "*.",
        "::",
        "->",
        ",",
        ";",
    ],
    *["(", ")", "[", "]", "{", "}", "{:}"],
    *[
        "if",
        "else",
        "then",
        "while",
        "for",
        "break",
        "continue",
        "return",
        "function",
        "macro",
        "switch",
        "case",
        "default",
        "try",
        "catch",
        "finally",
        "throw",
    ],
    *[
        "new",
        "import",
        "int",
        "long",
        "double",
        "String",
        "char",
        "boolean",
        "null",
        "true",
        "false",
        "in",
        "not_in",
        "like",
        "not_like",
        "and",
        "or",
        "instanceof",
    ],
    "\n",
    " ",
    "//",
    "/*",
    "*/",
    "@",
    "#",
    "$",
    "、",
    "（",
    *[
        "max(",
        "min(",
        "round(",
        "len(",
        "now()",
        "parseDate(",
        "versionCompare(",
        "hashBucket(",
        ".split(",
        ".matches(",
        ".startsWith(",
    ],
    *[".filter(", ".map(", ".get(", ".keys()", ".substring(", ".join(", "x->x", "(a,b)->a+b"],
]

ENGINES = {
    "bare": ql.Engine(max_steps=5_000),
    "stdlib": ql.Engine(stdlib=True, max_steps=5_000),
}
OPTIONS = st.fixed_dictionaries(
    {
        "precise": st.booleans(),
        "avoid_null_pointer": st.booleans(),
        "short_circuit": st.booleans(),
    }
)
FUZZ = settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None
)


def exercise(source: str, engine: str, options: dict[str, bool], strict_newlines: bool = True) -> None:
    """Compile and run; a QLError is a fine answer, anything else fails the test (pytest shows it)."""
    try:
        program = ENGINES[engine].compile(source, strict_newlines=strict_newlines)
        program.run(dict(CONTEXT), timeout_ms=200, **options)
        _ = program.free_variables
    except ql.QLError as error:
        assert error.code
        assert error.line is None or error.line >= 1
        # No host function is involved here, so BIZ_EXCEPTION could only be an internal failure (a Python
        # NameError or TypeError in generated code) dressed up as a QLError.
        assert error.code != ql.errors.BIZ_EXCEPTION, error


@FUZZ
@given(
    tokens=st.lists(st.sampled_from(TOKENS), max_size=40),
    engine=st.sampled_from(sorted(ENGINES)),
    options=OPTIONS,
    strict_newlines=st.booleans(),
)
def test_token_soup(tokens: list[str], engine: str, options: dict[str, bool], strict_newlines: bool) -> None:
    exercise(" ".join(tokens), engine, options, strict_newlines)


@st.composite
def mutated_scripts(draw: st.DrawFn) -> str:
    """A conformance script with a few characters deleted, duplicated, or replaced by a token."""
    text = draw(st.sampled_from(SCRIPTS))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        position = draw(st.integers(0, len(text) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "insert"]))
        if action == "delete":
            text = text[:position] + text[position + 1 :]
        elif action == "duplicate":
            text = text[:position] + text[position:] + text[position:]
        else:
            text = text[:position] + draw(st.sampled_from(TOKENS)) + text[position:]
    return text


@FUZZ
@given(source=mutated_scripts(), engine=st.sampled_from(sorted(ENGINES)), options=OPTIONS)
def test_mutated_scripts(source: str, engine: str, options: dict[str, bool]) -> None:
    exercise(source, engine, options)


@FUZZ
@given(source=st.text(max_size=60), engine=st.sampled_from(sorted(ENGINES)))
def test_arbitrary_text(source: str, engine: str) -> None:
    exercise(source, engine, {})


NAMES = st.sampled_from(["a", "b", "s", "l", "m", "n", "v", "w", "g"])
LITERALS = st.sampled_from(["0", "1", "-1", "2.5", "0.1", "10L", "'x'", '"y"', "null", "true", "false", "[]", "{:}"])
OPERATORS = st.sampled_from(
    ["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||", "and", "&", "<<", ">>>", "in", "like", "not_in"]
)


def _expressions() -> st.SearchStrategy[str]:
    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.tuples(inner, OPERATORS, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            inner.map(lambda e: f"!{e}"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(inner, NAMES).map(lambda t: f"{t[0]}.{t[1]}"),
            st.tuples(inner, NAMES).map(lambda t: f"{t[0]}?.{t[1]}"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
            st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
            st.tuples(NAMES, inner).map(lambda t: f"{{{t[0]}: {t[1]}}}"),
            st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
            st.tuples(NAMES, inner).map(lambda t: f"({t[0]} -> {t[1]})"),
            st.tuples(NAMES, inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}.filter(x -> {t[1]})"),
            st.tuples(inner, inner, inner).map(lambda t: f"if ({t[0]}) {{ {t[1]} }} else {{ {t[2]} }}"),
            st.tuples(NAMES, inner).map(lambda t: f"({t[0]} = {t[1]})"),
            st.tuples(NAMES, inner).map(lambda t: f"{t[0]}.{t[0]} = {t[1]}"),
            inner.map(lambda e: f'"t${{{e}}}"'),
            st.tuples(inner, inner).map(lambda t: f"{t[0]}[1:{t[1]}]"),
            inner.map(lambda e: f"{e}*.k"),
        )

    return st.recursive(st.one_of(LITERALS, NAMES), extend, max_leaves=12)


def _statements(expression: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    block = st.lists(expression, max_size=3).map("; ".join)
    return st.one_of(
        expression,
        st.tuples(NAMES, expression).map(lambda t: f"int {t[0]} = {t[1]}"),
        st.tuples(expression, block).map(lambda t: f"while ({t[0]}) {{ {t[1]}; break }}"),
        st.tuples(NAMES, expression, block).map(lambda t: f"for ({t[0]} : {t[1]}) {{ {t[2]}; continue }}"),
        block.map(lambda b: f"for (int i = 0; i < 3; i++) {{ {b} }}"),
        st.tuples(NAMES, block).map(lambda t: f"function g({t[0]}) {{ {t[1]} }}"),
        expression.map(lambda e: f"return {e}"),
        st.tuples(block, block).map(lambda t: f"try {{ {t[0]} }} catch (e) {{ {t[1]} }} finally {{ 1 }}"),
        st.tuples(expression, block, block).map(
            lambda t: f"switch ({t[0]}) {{ case 1: {t[1]}; break; default: {t[2]} }}"
        ),
        expression.map(lambda e: f"throw {e}"),
        block.map(lambda b: f"macro mm {{ {b} }}\nmm"),
    )


@settings(FUZZ, max_examples=200)
@given(
    statements=st.lists(_statements(_expressions()), min_size=1, max_size=5),
    engine=st.sampled_from(sorted(ENGINES)),
    options=OPTIONS,
)
def test_generated_programs(statements: list[str], engine: str, options: dict[str, bool]) -> None:
    exercise("\n".join(statements), engine, options)
