"""QLExpress's own test scripts (tests/ql/qlexpress_suite: src/test/resources/testsuite of QLExpress 4 at commit
6f52c8a, Apache License 2.0, see LICENSE there) run through QL as QLExpress's runner runs them.

Only the scripts the real QLExpress passes under its isolation security strategy (no Java classes, which is QL's
model) were copied. A script calls `assert(cond)`, `assertFalse(cond)`, `assertErrorCode(() -> ..., "CODE")` and
`println(...)`; a header comment may set options (`avoidNullPointer`, `precise`, `timeoutMillis`, `maxArrLength`)
or name the error the whole script must end with (`errCode`). Every script must pass, except the few listed in
KNOWN_DIFFERENCES with the docs/ql-compat.md row that explains why.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from verdict_server import ql
from verdict_server.ql import runtime

SUITE = Path(__file__).parent / "qlexpress_suite"
SCRIPTS = sorted(str(path.relative_to(SUITE)) for path in SUITE.rglob("*.ql"))
COMPAT = (Path(__file__).parents[2] / "docs" / "ql-compat.md").read_text(encoding="utf-8")
KNOWN_DIFFERENCES: dict[str, str] = {}  # script -> the docs/ql-compat.md row (topic) that explains it


class ScriptAssertionFailed(Exception):
    pass


def qassert(condition: Any, message: Any = None) -> None:
    if condition is not True:
        raise ScriptAssertionFailed(f"assert failed: {message!r}" if message is not None else "assert failed")


def qassert_false(condition: Any, message: Any = None) -> None:
    if condition is not False:
        raise ScriptAssertionFailed(f"assertFalse failed: {message!r}" if message is not None else "assertFalse failed")


def qassert_error_code(function: Any, code: Any) -> None:
    try:
        function()
    except Exception as exc:  # noqa: BLE001 - whatever the lambda raised, as the script's runner would see it
        actual = runtime.as_ql_error(exc).code
        if actual != code:
            raise ScriptAssertionFailed(f"expected error {code}, got {actual}: {exc}") from None
        return
    raise ScriptAssertionFailed(f"expected error {code}, got no error")


def suite_engine(max_array_length: int | None) -> ql.Engine:
    engine = ql.Engine() if max_array_length is None else ql.Engine(max_array_length=max_array_length)
    engine.add_function("assert", qassert)
    engine.add_function("assertFalse", qassert_false)
    engine.add_function("assertErrorCode", qassert_error_code)
    engine.add_function("println", lambda *args: None)
    return engine


ENGINES: dict[int | None, ql.Engine] = {}


def engine_for(max_array_length: int | None) -> ql.Engine:
    if max_array_length not in ENGINES:
        ENGINES[max_array_length] = suite_engine(max_array_length)
    return ENGINES[max_array_length]


def header(source: str) -> dict[str, Any]:
    """The options of the `/* { ... } */` comment a script may start with."""
    match = re.match(r"\s*/\*(.*?)\*/", source, flags=re.DOTALL)
    text = match.group(1) if match else ""
    options: dict[str, Any] = {}
    if code := re.search(r'"errCode"\s*:\s*"(\w+)"', text):
        options["errCode"] = code.group(1)
    for name, key in (("avoidNullPointer", "avoid_null_pointer"), ("precise", "precise")):
        if re.search(rf"\.{name}\(true\)", text):
            options[key] = True
    if timeout := re.search(r"\.timeoutMillis\((\d+)\)", text):
        options["timeout_ms"] = int(timeout.group(1))
    if length := re.search(r"\.maxArrLength\((\d+)\)", text):
        options["max_array_length"] = int(length.group(1))
    return options


def run_script(relative: str) -> str | None:
    """None when the script passes as it does in QLExpress, else what went wrong."""
    source = (SUITE / relative).read_text(encoding="utf-8")
    options = header(source)
    expected_code = options.pop("errCode", None)
    engine = engine_for(options.pop("max_array_length", None))
    try:
        engine.compile(source).run({}, **options)
    except ql.QLError as error:
        if expected_code == error.code:
            return None
        return f"{error.code}: {error.reason} (line {error.line}, column {error.column})"
    return f"expected {expected_code}, the script ran" if expected_code else None


@pytest.mark.parametrize("script", SCRIPTS)
def test_qlexpress_script(script: str) -> None:
    problem = run_script(script)
    if script in KNOWN_DIFFERENCES:
        assert problem is not None, f"{script} now passes: remove it from KNOWN_DIFFERENCES"
        assert f"| {KNOWN_DIFFERENCES[script]} |" in COMPAT
    else:
        assert problem is None, f"{script}: {problem}"


def test_the_suite_is_complete() -> None:
    assert (SUITE / "LICENSE").is_file()
    assert len([s for s in SCRIPTS if s.startswith("independent/")]) == 141
    assert len(SCRIPTS) == 179
