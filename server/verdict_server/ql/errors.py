"""QL errors: every failure a script can cause is a QLError carrying QLExpress's error code and a position.

The message format follows QLExpress 4 (`[Error CODE: reason]`, `[Near: ...]` with a caret line, `[Line: n, Column: m]`)
so that teams moving scripts over recognise what they see.
"""

from __future__ import annotations

from typing import Any

# QLExpress 4 error-code names (QLErrorCodes), plus SCRIPT_TIME_OUT from QLTimeoutException.
SYNTAX_ERROR = "SYNTAX_ERROR"
INVALID_NUMBER = "INVALID_NUMBER"
INVALID_BINARY_OPERAND = "INVALID_BINARY_OPERAND"
INVALID_UNARY_OPERAND = "INVALID_UNARY_OPERAND"
INVALID_ARITHMETIC = "INVALID_ARITHMETIC"
EXECUTE_OPERATOR_EXCEPTION = "EXECUTE_OPERATOR_EXCEPTION"
CONDITION_BOOL_REQUIRED = "CONDITION_BOOL_REQUIRED"
WHILE_CONDITION_BOOL_REQUIRED = "WHILE_CONDITION_BOOL_REQUIRED"
FOR_CONDITION_BOOL_REQUIRED = "FOR_CONDITION_BOOL_REQUIRED"
NULL_FIELD_ACCESS = "NULL_FIELD_ACCESS"
NULL_METHOD_ACCESS = "NULL_METHOD_ACCESS"
FIELD_NOT_FOUND = "FIELD_NOT_FOUND"
METHOD_NOT_FOUND = "METHOD_NOT_FOUND"
NO_SUITABLE_CONSTRUCTOR = "NO_SUITABLE_CONSTRUCTOR"
FUNCTION_NOT_FOUND = "FUNCTION_NOT_FOUND"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
INDEX_OUT_BOUND = "INDEX_OUT_BOUND"
INVALID_INDEX = "INVALID_INDEX"
NONINDEXABLE_OBJECT = "NONINDEXABLE_OBJECT"
NONTRAVERSABLE_OBJECT = "NONTRAVERSABLE_OBJECT"
INCOMPATIBLE_ASSIGNMENT_TYPE = "INCOMPATIBLE_ASSIGNMENT_TYPE"
FOR_EACH_ITERABLE_REQUIRED = "FOR_EACH_ITERABLE_REQUIRED"
FOR_EACH_TYPE_MISMATCH = "FOR_EACH_TYPE_MISMATCH"
QL_THROW = "QL_THROW"
BIZ_EXCEPTION = "BIZ_EXCEPTION"
EXCEED_MAX_ARR_LENGTH = "EXCEED_MAX_ARR_LENGTH"
SCRIPT_TIME_OUT = "SCRIPT_TIME_OUT"
# Verdict's own, named in the same style: a run built more than its memory budget (see budget.py), and a script whose
# compiling went over its budget (inlined macro code too large, or compiling too slow).
SCRIPT_OUT_OF_MEMORY = "SCRIPT_OUT_OF_MEMORY"
SCRIPT_TOO_COMPLEX = "SCRIPT_TOO_COMPLEX"
OPERATOR_NOT_ALLOWED = "OPERATOR_NOT_ALLOWED"
INCOMPATIBLE_TYPE_CAST = "INCOMPATIBLE_TYPE_CAST"
CLASS_NOT_FOUND = "CLASS_NOT_FOUND"
SWITCH_STYLE_MISMATCH = "SWITCH_STYLE_MISMATCH"
INVOKE_METHOD_UNKNOWN_ERROR = "INVOKE_METHOD_UNKNOWN_ERROR"


class QLError(Exception):
    """Base of every error a QL script can raise, at compile time or at run time.

    `line` and `column` are 1-based and refer to the script source; they are None only when no position is known.
    """

    default_code = "QL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        line: int | None = None,
        column: int | None = None,
        source: str | None = None,
        length: int = 1,
    ) -> None:
        self.code = code or self.default_code
        self.reason = message
        self.line = line
        self.column = column
        self.near = _near(source, line, column, length)
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [f"[Error {self.code}: {self.reason}]"]
        if self.near:
            parts.append(self.near)
        if self.line is not None:
            parts.append(f"[Line: {self.line}, Column: {self.column}]")
        return "\n".join(parts)

    def with_position(self, line: int, column: int, source: str | None = None, length: int = 1) -> QLError:
        """Fill in the position when the raiser did not know it (runtime helpers do not see the source)."""
        if self.line is None:
            self.line, self.column = line, column
            self.near = _near(source, line, column, length)
            self.args = (self._format(),)
        return self


class QLSyntaxError(QLError):
    default_code = SYNTAX_ERROR


class QLRuntimeError(QLError):
    default_code = "RUNTIME_ERROR"


class QLTimeoutError(QLRuntimeError):
    default_code = SCRIPT_TIME_OUT


class QLMemoryError(QLRuntimeError):
    default_code = SCRIPT_OUT_OF_MEMORY


class QLThrow(QLRuntimeError):
    """`throw value` that no catch handled; `value` is the thrown QL value."""

    default_code = QL_THROW

    def __init__(self, value: Any, **kwargs: Any) -> None:
        self.value = value
        super().__init__(f"script threw {value!r}", **kwargs)


def _near(source: str | None, line: int | None, column: int | None, length: int) -> str:
    """The `[Near: ...]` excerpt with a caret line under the offending text, like QLExpress prints it."""
    if not source or line is None or column is None:
        return ""
    lines = source.splitlines() or [""]
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1]
    start = max(0, column - 1 - 20)
    excerpt = text[start : column - 1 + max(length, 1) + 20]
    prefix = "[Near: "
    caret = " " * (len(prefix) + (column - 1 - start)) + "^" * max(1, min(length, len(text) - (column - 1) or 1))
    return f"{prefix}{excerpt}]\n{caret}"
