"""QL lexer: source text -> tokens with 1-based line and column.

Follows QLExpress 4's lexical rules (ql-spec §1-§2): `//` and `/* */` comments, identifiers that may start with `$`, `#`
or `@` and contain `、（）【】`, single- and double-quoted strings with Java escapes, `${...}` interpolation in
double-quoted strings, `${key}` placeholders, and Java-style number literals typed the way QLExpress types them.
Newlines are tokens (they end statements) unless `strict_newlines` is off; inside `(...)` and `[...]` they are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import INVALID_NUMBER, QLSyntaxError

# Token kinds.
NUMBER = "number"
STRING = "string"
TEMPLATE = "template"  # a double-quoted string with ${...} parts
IDENT = "ident"
KEYWORD = "keyword"
OP = "op"
SELECTOR = "selector"  # ${key} outside a string
NEWLINE = "newline"
EOF = "eof"

KEYWORDS = frozenset(
    [
        "for",
        "if",
        "else",
        "while",
        "break",
        "continue",
        "return",
        "function",
        "macro",
        "import",
        "static",
        "new",
        "switch",
        "case",
        "default",
        "byte",
        "short",
        "int",
        "long",
        "float",
        "double",
        "char",
        "boolean",
        "null",
        "true",
        "false",
        "extends",
        "super",
        "try",
        "catch",
        "finally",
        "throw",
        "then",
        "class",
        "this",
    ]
)
# Keywords that may still be used as variable names (`default = 1` is valid QL).
SOFT_KEYWORDS = frozenset({"function", "case", "default", "switch"})
# Word operators are identifiers lexically; the parser gives them their meaning.
WORD_OPERATORS = frozenset({"and", "or", "in", "not_in", "like", "not_like", "instanceof"})

# Longest first, so that `>>>=` wins over `>>>`, `>>` and `>`.
_OPERATORS = sorted(
    [
        ">>>=", "<<=", ">>=", ">>>", "?.", "*.", "::", "->", "++", "--", "+=", "-=", "*=", "/=", "%=", "&=", "|=",
        "^=", "==", "!=", "<>", "<=", ">=", "&&", "||", "<<", ">>",
        "+", "-", "*", "/", "%", "=", "<", ">", "!", "~", "&", "|", "^", "?", ":", ".", ",", ";", "(", ")", "[", "]",
        "{", "}",
    ],
    key=len,
    reverse=True,
)  # fmt: skip
# QLExpress lexes a run of these characters as one (custom) operator, so `!!x`, `a=-1` and `-.5` are not `!` `!x`,
# `=` `-1` and `-` `.5` but unknown operators: SYNTAX_ERROR. Runs that start with a known two-character operator
# (`==-1`, `x++-1`) split after it.
_OPERATOR_RUN_START = frozenset("^~&|*%=!/+-?")
_OPERATOR_RUN_PART = frozenset("^~&|*%=!<>/+-:?.")
_IDENT_EXTRA = "、（）【】"
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'", "\\": "\\", "$": "$"}
MAX_SOURCE_LENGTH = 1_000_000


@dataclass(slots=True)
class Token:
    kind: str
    value: Any
    line: int
    column: int
    length: int = 1


@dataclass(slots=True)
class Interpolation:
    """One `${...}` part of a double-quoted string: its source text and where that text starts."""

    source: str
    line: int
    column: int


def is_digit(ch: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts '²' and other digits int() cannot read."""
    return "0" <= ch <= "9"


def is_ident_start(ch: str) -> bool:
    return ch.isalpha() or ch in "_$#@"


def is_ident_part(ch: str) -> bool:
    return ch.isalnum() or ch in "_$#@" or ch in _IDENT_EXTRA


class Lexer:
    def __init__(self, source: str, *, strict_newlines: bool = True, interpolation: str = "script") -> None:
        if len(source) > MAX_SOURCE_LENGTH:
            raise QLSyntaxError(f"script longer than {MAX_SOURCE_LENGTH} characters", line=1, column=1)
        self.source = source
        self.strict_newlines = strict_newlines
        self.interpolation = interpolation
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.tokens: list[Token] = []
        self.nesting: list[str] = []  # open brackets, to drop newlines inside ( and [

    # -- helpers -------------------------------------------------------------------------------------------------

    def error(self, message: str, line: int | None = None, column: int | None = None, code: str | None = None) -> None:
        raise QLSyntaxError(
            message,
            code=code,
            line=line or self.line,
            column=column or self.pos - self.line_start + 1,
            source=self.source,
        )

    def column(self) -> int:
        return self.pos - self.line_start + 1

    def newline_at(self, pos: int) -> None:
        self.line += 1
        self.line_start = pos + 1

    def add(self, kind: str, value: Any, line: int, column: int, length: int) -> None:
        self.tokens.append(Token(kind, value, line, column, length))

    # -- main loop -----------------------------------------------------------------------------------------------

    def tokenize(self) -> list[Token]:
        src = self.source
        n = len(src)
        while self.pos < n:
            ch = src[self.pos]
            if ch in " \t\f":
                self.pos += 1
            elif ch in "\r\n":
                self.lex_newline()
            elif src.startswith("//", self.pos):
                end = self.find_line_end(self.pos)
                self.pos = end
            elif src.startswith("/*", self.pos):
                self.lex_block_comment()
            elif is_digit(ch) or (ch == "." and self.pos + 1 < n and is_digit(src[self.pos + 1])):
                self.lex_number()
            elif ch in "'\"":
                self.lex_string(ch)
            elif ch == "$" and src.startswith("${", self.pos):
                self.lex_selector()
            elif is_ident_start(ch):
                self.lex_ident()
            else:
                self.lex_operator()
        self.add(EOF, None, self.line, self.column(), 1)
        return self.tokens

    def find_line_end(self, pos: int) -> int:
        src = self.source
        while pos < len(src) and src[pos] not in "\r\n":
            pos += 1
        return pos

    def lex_newline(self) -> None:
        line, column = self.line, self.column()
        if self.source.startswith("\r\n", self.pos):
            self.pos += 1
        self.newline_at(self.pos)
        self.pos += 1
        if not self.strict_newlines or (self.nesting and self.nesting[-1] in "(["):
            return
        if self.tokens and self.tokens[-1].kind == NEWLINE:
            return
        self.add(NEWLINE, "\n", line, column, 1)

    def lex_block_comment(self) -> None:
        line, column = self.line, self.column()
        end = self.source.find("*/", self.pos + 2)
        if end < 0:
            self.error("unterminated comment", line, column)
        self.skip_to(end + 2)

    def skip_to(self, end: int) -> None:
        """Advance to `end`, keeping line numbers right across newlines in the skipped text."""
        src = self.source
        while self.pos < end:
            if src[self.pos] == "\n" or (src[self.pos] == "\r" and not src.startswith("\r\n", self.pos)):
                self.newline_at(self.pos)
            self.pos += 1

    def lex_ident(self) -> None:
        src = self.source
        start = self.pos
        self.pos += 1
        while self.pos < len(src) and is_ident_part(src[self.pos]):
            self.pos += 1
        word = src[start : self.pos]
        kind = KEYWORD if word in KEYWORDS else IDENT
        self.add(kind, word, self.line, start - self.line_start + 1, self.pos - start)

    def lex_operator(self) -> None:
        src = self.source
        start = self.pos
        column = self.column()
        for op in _OPERATORS:
            if src.startswith(op, start):
                # `?.5` and `*.5` are `?`/`*` followed by a number, not optional chaining or spread.
                if op in ("?.", "*.") and start + 2 < len(src) and is_digit(src[start + 2]):
                    continue
                if len(op) == 1 and op in _OPERATOR_RUN_START and src[start + 1 : start + 2] in _OPERATOR_RUN_PART:
                    self.error(f"unknown operator {src[start : start + 2]!r}")
                self.pos += len(op)
                self.track_nesting(op, column)
                self.add(OP, op, self.line, column, len(op))
                return
        self.error(f"unexpected character {src[start]!r}")

    def track_nesting(self, op: str, column: int) -> None:
        if op in "([{":
            self.nesting.append(op)
        elif op in ")]}" and self.nesting:
            self.nesting.pop()

    def lex_selector(self) -> None:
        line, column = self.line, self.column()
        end = self.source.find("}", self.pos + 2)
        if end < 0 or "\n" in self.source[self.pos : end]:
            self.error("unterminated ${ placeholder", line, column)
        key = self.source[self.pos + 2 : end]
        self.add(SELECTOR, key, line, column, end + 1 - self.pos)
        self.pos = end + 1

    # -- numbers -------------------------------------------------------------------------------------------------

    def lex_number(self) -> None:
        src = self.source
        start = self.pos
        column = self.column()
        lower = src[start : start + 2].lower()
        if lower in ("0x", "0b"):
            value = self.lex_radix_number(16 if lower == "0x" else 2)
        else:
            value = self.lex_decimal_number()
        if self.pos < len(src) and is_ident_part(src[self.pos]):
            self.error(f"invalid number {src[start : self.pos + 1]!r}", self.line, column)
        self.add(NUMBER, value, self.line, column, self.pos - start)

    def lex_radix_number(self, radix: int) -> int:
        src = self.source
        start = self.pos
        self.pos += 2
        digits = "0123456789abcdefABCDEF_" if radix == 16 else "01_"
        while self.pos < len(src) and src[self.pos] in digits:
            self.pos += 1
        text = src[start + 2 : self.pos].replace("_", "")
        if self.pos < len(src) and src[self.pos] in "lL":
            self.pos += 1
        if not text:
            self.error("invalid number", self.line, start - self.line_start + 1, INVALID_NUMBER)
        return int(text, radix)

    def lex_decimal_number(self) -> Any:
        src = self.source
        start = self.pos
        n = len(src)
        self.scan_digits()
        is_decimal = False
        if self.pos < n and src[self.pos] == "." and not self.method_follows(self.pos + 1):
            is_decimal = True
            self.pos += 1
            self.scan_digits()
        if self.pos < n and src[self.pos] in "eE":
            after = self.pos + 1
            if after < n and src[after] in "+-":
                after += 1
            if after < n and is_digit(src[after]):
                is_decimal = True
                self.pos = after
                self.scan_digits()
        text = src[start : self.pos].replace("_", "")
        suffix = src[self.pos].lower() if self.pos < n else ""
        if suffix in ("l", "f", "d"):
            self.pos += 1
            if suffix == "l":
                if is_decimal:
                    self.error("invalid long literal", self.line, start - self.line_start + 1, INVALID_NUMBER)
                return self.integer(text, start)
            return float(text)
        if is_decimal:
            return decimal_literal(text)
        return self.integer(text, start)

    def integer(self, text: str, start: int) -> int:
        """A decimal integer, or an octal one when it has a leading 0 (`017` is 15; `09` is not a number)."""
        if not self.is_octal(text):
            return int(text)
        if "8" in text or "9" in text:
            self.error(f"invalid octal number {text!r}", self.line, start - self.line_start + 1, INVALID_NUMBER)
        return int(text, 8)

    @staticmethod
    def is_octal(text: str) -> bool:
        return len(text) > 1 and text[0] == "0" and all(is_digit(ch) for ch in text)

    def scan_digits(self) -> None:
        src = self.source
        while self.pos < len(src) and (is_digit(src[self.pos]) or src[self.pos] == "_"):
            self.pos += 1

    def method_follows(self, pos: int) -> bool:
        """`1.add(2)`: a `.` after digits is a decimal point unless two ASCII letters follow it."""
        two = self.source[pos : pos + 2]
        return len(two) == 2 and two.isascii() and two.isalpha()

    # -- strings -------------------------------------------------------------------------------------------------

    def lex_string(self, quote: str) -> None:
        src = self.source
        line, column = self.line, self.column()
        start = self.pos
        self.pos += 1
        parts: list[str | Interpolation] = []
        chunk: list[str] = []
        interpolate = quote == '"' and self.interpolation != "disable"
        while True:
            if self.pos >= len(src):
                self.error("unterminated string", line, column)
            ch = src[self.pos]
            if ch == quote:
                self.pos += 1
                break
            if ch == "\\":
                nxt = src[self.pos + 1 : self.pos + 2]
                if not nxt:
                    self.error("unterminated string", line, column)
                chunk.append(_ESCAPES.get(nxt, ""))
                self.pos += 2
                continue
            if interpolate and src.startswith("${", self.pos):
                if chunk:
                    parts.append("".join(chunk))
                    chunk = []
                parts.append(self.lex_interpolation())
                continue
            if ch == "\n" or (ch == "\r" and not src.startswith("\r\n", self.pos)):
                self.newline_at(self.pos)
            chunk.append(ch)
            self.pos += 1
        if chunk or not parts:
            parts.append("".join(chunk))
        length = self.pos - start if self.line == line else 1
        if len(parts) == 1 and isinstance(parts[0], str):
            self.add(STRING, parts[0], line, column, length)
        else:
            self.add(TEMPLATE, parts, line, column, length)

    def lex_interpolation(self) -> Interpolation:
        """`${ expr }` inside a double-quoted string: find the matching `}` (braces and strings inside are skipped)."""
        src = self.source
        line, column = self.line, self.column()
        self.pos += 2
        inner_line, inner_column = self.line, self.column()
        start = self.pos
        depth = 0
        while True:
            if self.pos >= len(src):
                self.error("unterminated ${ in string", line, column)
            ch = src[self.pos]
            if ch in "'\"":
                self.skip_nested_string(ch, line, column)
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "\n" or (ch == "\r" and not src.startswith("\r\n", self.pos)):
                self.newline_at(self.pos)
            self.pos += 1
        text = src[start : self.pos]
        self.pos += 1
        return Interpolation(text, inner_line, inner_column)

    def skip_nested_string(self, quote: str, line: int, column: int) -> None:
        src = self.source
        self.pos += 1
        while self.pos < len(src) and src[self.pos] != quote:
            if src[self.pos] == "\\":
                self.pos += 1
            elif src[self.pos] == "\n":
                self.newline_at(self.pos)
            self.pos += 1
        if self.pos >= len(src):
            self.error("unterminated string", line, column)
        self.pos += 1


def decimal_literal(text: str) -> float | Decimal:
    """QLExpress types a decimal literal as Double when the double is exactly the written value, else BigDecimal."""
    try:
        exact = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the scanner only lets digits through
        raise QLSyntaxError(f"invalid number {text!r}", code=INVALID_NUMBER) from None
    as_float = float(exact)
    if math.isfinite(as_float) and Decimal(as_float) == exact:
        return as_float
    return exact


def tokenize(source: str, *, strict_newlines: bool = True, interpolation: str = "script") -> list[Token]:
    return Lexer(source, strict_newlines=strict_newlines, interpolation=interpolation).tokenize()
