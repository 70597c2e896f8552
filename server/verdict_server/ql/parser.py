"""QL parser: tokens -> nodes, by recursive descent with precedence climbing for binary operators (ql-spec §3).

Nesting is bounded: the parser counts its own recursion and a finished tree is checked for depth without recursion,
so a hostile script nested thousands of levels deep is a SYNTAX_ERROR, never a Python RecursionError.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NoReturn

from . import errors
from . import nodes as n
from .errors import QLSyntaxError
from .lexer import (
    EOF,
    IDENT,
    KEYWORD,
    NEWLINE,
    NUMBER,
    OP,
    SELECTOR,
    SOFT_KEYWORDS,
    STRING,
    TEMPLATE,
    WORD_OPERATORS,
    Interpolation,
    Token,
    tokenize,
)

MAX_NESTING = 120

# Binary operators and their precedence (QLPrecedences); all are left-associative.
BINARY_PRECEDENCE = {
    "*": 12, "/": 12, "%": 12,
    "+": 11, "-": 11,
    "in": 10, "not_in": 10, "like": 10, "not_like": 10,
    "<<": 9, ">>": 9, ">>>": 9,
    "<": 8, "<=": 8, ">": 8, ">=": 8, "instanceof": 8,
    "==": 7, "!=": 7, "<>": 7,
    "&": 6, "^": 5, "|": 4,
    "&&": 3, "and": 3,
    "||": 2, "or": 2,
}  # fmt: skip
ASSIGN_OPS = frozenset({"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ">>>="})
PRIMITIVE_TYPES = frozenset({"byte", "short", "int", "long", "float", "double", "char", "boolean"})
# Class names a declaration or cast may name; any capitalised identifier followed by a name also declares.
CAST_CLASSES = frozenset(
    {"Integer", "Long", "Short", "Byte", "Double", "Float", "Boolean", "Character", "String", "BigDecimal",
     "BigInteger", "Object", "Number", "List", "Map", "ArrayList", "HashMap", "LinkedHashMap"}
)  # fmt: skip
# Java classes that win over a variable when they head a path (`Math.max(...)`); under isolation nothing on them is
# reachable, so QLExpress answers METHOD_NOT_FOUND / FIELD_NOT_FOUND.
JAVA_CLASSES = CAST_CLASSES | frozenset(
    {"Math", "System", "Runtime", "Class", "Thread", "ClassLoader", "ProcessBuilder", "Collections", "Arrays",
     "Objects", "StringBuilder", "Date", "Optional", "Collectors", "Stream", "Set", "HashSet", "TreeMap", "UUID"}
)  # fmt: skip
# The classes a declaration, parameter or cast may name: QLExpress resolves the type at compile time and reports any
# other name (`var`, a typo, a variable in `(x) - 1`) as CLASS_NOT_FOUND.
KNOWN_CLASSES = PRIMITIVE_TYPES | JAVA_CLASSES | frozenset(
    {"Collection", "Iterable", "LinkedList", "CharSequence", "Comparable", "Character", "Function", "Iterator"}
)  # fmt: skip
# Tokens after `(Name)` that make it a cast, as in QLExpress's grammar (`'(' declType ')' primary`).
_PREFIX_OPS = ("!", "~", "+", "-", "++", "--")
_CAST_OPERAND_OPS = ("(", "[", "{", *_PREFIX_OPS)
_CAST_OPERAND_KEYWORDS = frozenset({"null", "true", "false", "new", "if", "try", "function"}) | PRIMITIVE_TYPES


class Parser:
    def __init__(self, source: str, tokens: list[Token], interpolation: str = "script") -> None:
        self.source = source
        self.interpolation = interpolation  # how ${...} inside double-quoted strings is read
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != EOF:
            self.i += 1
        return token

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == OP and self.tok.value in ops

    def is_keyword(self, *words: str) -> bool:
        return self.tok.kind == KEYWORD and self.tok.value in words

    def accept_op(self, op: str) -> bool:
        if self.is_op(op):
            self.advance()
            return True
        return False

    def expect_op(self, op: str) -> Token:
        if not self.is_op(op):
            self.fail(f"expected '{op}'")
        return self.advance()

    def skip_newlines(self) -> None:
        while self.tok.kind == NEWLINE:
            self.i += 1

    def next_significant(self) -> Token:
        j = self.i
        while self.tokens[j].kind == NEWLINE:
            j += 1
        return self.tokens[j]

    def token_after_separators(self) -> Token:
        j = self.i
        while self.tokens[j].kind == NEWLINE or (self.tokens[j].kind == OP and self.tokens[j].value == ";"):
            j += 1
        return self.tokens[j]

    def fail(self, message: str, token: Token | None = None, code: str | None = None) -> NoReturn:
        token = token or self.tok
        found = "end of script" if token.kind == EOF else repr(token.value) if token.kind != NEWLINE else "newline"
        raise QLSyntaxError(
            f"{message}, found {found}",
            code=code,
            line=token.line,
            column=token.column,
            source=self.source,
            length=token.length,
        )

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.fail(f"script nested deeper than {MAX_NESTING} levels")

    def leave(self) -> None:
        self.depth -= 1

    # -- program and statements ----------------------------------------------------------------------------------

    def parse_program(self) -> n.Program:
        program = n.Program(1, 1)
        self.skip_separators()
        while self.is_keyword("import"):
            self.parse_import()
            self.skip_separators()
        while self.tok.kind != EOF:
            if self.is_keyword("import"):
                self.fail("Import statement is not at the beginning of the file")
            program.statements.append(self.parse_statement())
            self.end_statement(program.statements[-1])
            self.skip_separators()
        return program

    def parse_import(self) -> None:
        self.advance()
        if self.tok.kind not in (IDENT, KEYWORD):
            self.fail("expected a class name after import")
        while self.tok.kind in (IDENT, KEYWORD) or self.is_op(".", "*"):
            self.advance()
        if not self.accept_op(";"):
            self.fail("an import must end with ';'")

    def skip_separators(self) -> None:
        while self.tok.kind == NEWLINE or self.is_op(";"):
            self.i += 1

    def end_statement(self, statement: n.Node | None = None) -> None:
        """A statement ends at `;`, a newline, `}` or the end; a loop or function with a block body needs nothing
        more. An expression statement does, even an `if {...}` (QLExpress: `if (c) { 1 } 2` is a syntax error)."""
        if self.tok.kind in (NEWLINE, EOF) or self.is_op(";", "}"):
            return
        previous = self.tokens[self.i - 1]
        if previous.kind == OP and previous.value == "}" and not isinstance(statement, n.ExprStmt):
            return
        self.fail("expected end of statement")

    def parse_statement(self) -> n.Node:
        self.enter()
        try:
            return self.parse_statement_inner()
        finally:
            self.leave()

    def parse_statement_inner(self) -> n.Node:
        tok = self.tok
        if tok.kind == KEYWORD:
            word = tok.value
            if word == "while":
                return self.parse_while()
            if word == "for":
                return self.parse_for()
            if (
                word == "function"
                and self.peek().kind == IDENT
                and self.peek(2).kind == OP
                and self.peek(2).value == "("
            ):
                return self.parse_function_def()
            if word == "macro":
                return self.parse_macro_def()
            if word == "break":
                self.advance()
                return n.Break(tok.line, tok.column)
            if word == "continue":
                self.advance()
                return n.Continue(tok.line, tok.column)
            if word == "return":
                self.advance()
                value = None
                if not (self.tok.kind in (NEWLINE, EOF) or self.is_op(";", "}")):
                    value = self.parse_expression()
                return n.Return(tok.line, tok.column, value)
            if word == "throw":
                self.advance()
                return n.Throw(tok.line, tok.column, self.parse_expression())
            if word in PRIMITIVE_TYPES and not self.is_primitive_cast_or_call():
                return self.parse_declaration()
        if tok.kind == IDENT and self.looks_like_declaration():
            return self.parse_declaration()
        expr = self.parse_expression()
        return n.ExprStmt(expr.line, expr.column, expr)

    def is_primitive_cast_or_call(self) -> bool:
        return self.peek().kind == OP and self.peek().value in (".", "(")

    def looks_like_declaration(self) -> bool:
        """`Type name`, `pkg.Type name`, `List<String> name` or `int[] name` at the start of a statement."""
        j = self.i
        tokens = self.tokens
        if tokens[j].value in WORD_OPERATORS:
            return False
        j += 1
        while tokens[j].kind == OP and tokens[j].value == "." and tokens[j + 1].kind == IDENT:
            j += 2
        if tokens[j].kind == OP and tokens[j].value == "<":
            j = self.skip_generics(j)
            if j < 0:
                return False
        while (
            tokens[j].kind == OP and tokens[j].value == "[" and tokens[j + 1].kind == OP and tokens[j + 1].value == "]"
        ):
            j += 2
        return tokens[j].kind == IDENT and tokens[j].value not in WORD_OPERATORS

    def skip_generics(self, j: int) -> int:
        depth = 0
        tokens = self.tokens
        while True:
            tok = tokens[j]
            if tok.kind == OP and tok.value == "<":
                depth += 1
            elif tok.kind == OP and tok.value in (">", ">>", ">>>"):
                depth -= len(tok.value)
                if depth <= 0:
                    return j + 1 if depth == 0 else -1
            elif not (tok.kind in (IDENT, KEYWORD) or (tok.kind == OP and tok.value in (",", ".", "?", "[", "]"))):
                return -1
            j += 1

    def parse_type(self) -> str:
        """A type name; generic arguments are parsed and ignored, array brackets kept (`int[]`)."""
        tok = self.advance()
        name = tok.value
        while self.is_op(".") and self.peek().kind == IDENT:
            self.advance()
            name = self.advance().value
        if self.is_op("<"):
            j = self.skip_generics(self.i)
            if j < 0:
                self.fail("malformed generic type")
            self.i = j
        while self.is_op("[") and self.peek().kind == OP and self.peek().value == "]":
            self.advance()
            self.advance()
            name += "[]"
        return name

    def parse_declaration(self) -> n.VarDecl:
        tok = self.tok
        type_name = self.parse_type()
        names = []
        while True:
            if self.tok.kind != IDENT:
                self.fail("expected a variable name")
            name_tok = self.advance()
            init = None
            if self.accept_op("="):
                self.skip_newlines()
                init = self.parse_array_initializer() if self.is_op("{") and type_name.endswith("[]") else None
                if init is None:
                    init = self.parse_expression()
            names.append((name_tok.value, init, name_tok.line, name_tok.column))
            if not self.accept_op(","):
                break
            self.skip_newlines()
        if not self.is_op(";"):  # QLExpress: `localVariableDeclaration ';'`, a newline does not end a declaration
            self.fail("a declaration must end with ';'")
        self.check_class(type_name, tok)
        return n.VarDecl(tok.line, tok.column, type_name, names)

    def check_class(self, type_name: str, tok: Token) -> None:
        simple = type_name.rsplit(".", 1)[-1].removesuffix("[]").removesuffix("[]")
        if simple not in KNOWN_CLASSES:
            self.fail(f"class '{type_name}' not found", tok, code=errors.CLASS_NOT_FOUND)

    def parse_array_initializer(self) -> n.ListLit:
        tok = self.expect_op("{")
        items = self.parse_items("}")
        return n.ListLit(tok.line, tok.column, items)

    def parse_block(self) -> n.Block:
        tok = self.tok
        if not self.is_op("{"):
            self.fail("expected '{'")
        self.advance()
        self.enter()
        statements = []
        self.skip_separators()
        while not self.is_op("}"):
            if self.tok.kind == EOF:
                self.fail("expected '}'")
            statements.append(self.parse_statement())
            self.end_statement(statements[-1])
            self.skip_separators()
        self.advance()
        self.leave()
        return n.Block(tok.line, tok.column, statements)

    def parse_while(self) -> n.While:
        tok = self.advance()
        self.expect_op("(")
        condition = self.parse_expression()
        self.expect_op(")")
        self.skip_newlines()
        return n.While(tok.line, tok.column, condition, self.parse_block())

    def parse_for(self) -> n.Node:
        tok = self.advance()
        self.expect_op("(")
        if self.is_for_each():
            type_name = None
            if not (self.tok.kind == IDENT and self.is_op_at(1, ":")):
                type_name = self.parse_type()
            if self.tok.kind != IDENT:
                self.fail("expected a loop variable")
            name = self.advance().value
            self.expect_op(":")
            iterable = self.parse_expression()
            self.expect_op(")")
            self.skip_newlines()
            return n.ForEach(tok.line, tok.column, type_name, name, iterable, self.parse_block())
        init = None if self.is_op(";") else self.parse_statement()
        self.expect_op(";")
        condition = None if self.is_op(";") else self.parse_expression()
        self.expect_op(";")
        update = None if self.is_op(")") else self.parse_expression()
        self.expect_op(")")
        self.skip_newlines()
        return n.For(tok.line, tok.column, init, condition, update, self.parse_block())

    def is_for_each(self) -> bool:
        """`for (x : l)` or `for (Type x : l)`: a `:` at bracket depth 0 before the first `;` or `)`."""
        depth = 0
        j = self.i
        while True:
            tok = self.tokens[j]
            if tok.kind == EOF:
                return False
            if tok.kind == OP:
                if tok.value in ("(", "[", "{"):
                    depth += 1
                elif tok.value in (")", "]", "}"):
                    if depth == 0:
                        return False
                    depth -= 1
                elif depth == 0 and tok.value == ";":
                    return False
                elif depth == 0 and tok.value == ":":
                    return True
                elif depth == 0 and tok.value == "?":
                    return False
            j += 1

    def parse_params(self) -> list[n.Param]:
        self.expect_op("(")
        params = []
        while not self.is_op(")"):
            type_name = None
            if self.is_keyword(*PRIMITIVE_TYPES) or (
                self.tok.kind == IDENT and (self.peek().kind == IDENT or self.is_op_at(1, "<", "["))
            ):
                type_tok = self.tok
                type_name = self.parse_type()
                self.check_class(type_name, type_tok)
            if self.tok.kind != IDENT:
                self.fail("expected a parameter name")
            name_tok = self.advance()
            params.append(n.Param(name_tok.value, type_name, name_tok.line, name_tok.column))
            if not self.accept_op(","):
                break
        self.expect_op(")")
        return params

    def is_op_at(self, offset: int, *ops: str) -> bool:
        tok = self.peek(offset)
        return tok.kind == OP and tok.value in ops

    def parse_function_def(self) -> n.FunctionDef:
        tok = self.advance()
        name = self.advance().value
        params = self.parse_params()
        self.skip_newlines()
        return n.FunctionDef(tok.line, tok.column, name, params, self.parse_block())

    def parse_macro_def(self) -> n.MacroDef:
        tok = self.advance()
        if self.tok.kind != IDENT:
            self.fail("expected a macro name")
        name = self.advance().value
        self.skip_newlines()
        return n.MacroDef(tok.line, tok.column, name, self.parse_block())

    # -- expressions ---------------------------------------------------------------------------------------------

    def parse_expression(self) -> n.Node:
        self.enter()
        try:
            return self.finish_assignment(self.parse_ternary())
        finally:
            self.leave()

    def finish_assignment(self, left: n.Node) -> n.Node:
        """`left = value` (or `+=` ...) when an assignment operator follows `left`, else `left` itself."""
        if not (self.tok.kind == OP and self.tok.value in ASSIGN_OPS):
            return left
        op_tok = self.advance()
        if not isinstance(left, n.Name | n.Field | n.Index):
            self.fail("the left side of an assignment must be a variable, field or index", op_tok)
        self.skip_newlines()
        value = self.parse_expression()
        return n.Assign(op_tok.line, op_tok.column, op_tok.value, left, value)

    def parse_ternary(self) -> n.Node:
        condition = self.parse_binary(2)
        if not self.is_op("?"):
            return condition
        tok = self.advance()
        self.skip_newlines()
        # QLExpress: the then-branch is an operand or an assignment, not a ternary (`a ? b ? c : d : e` is an error)
        then = self.finish_assignment(self.parse_binary_nested(2))
        self.skip_newlines()
        self.expect_op(":")
        self.skip_newlines()
        otherwise = self.parse_expression()
        return n.Ternary(tok.line, tok.column, condition, then, otherwise)

    def binary_op(self) -> str | None:
        tok = self.tok
        if tok.kind == OP and tok.value in BINARY_PRECEDENCE:
            return tok.value
        if tok.kind == IDENT and tok.value in WORD_OPERATORS:
            return tok.value
        return None

    def parse_binary(self, min_prec: int) -> n.Node:
        left = self.parse_unary()
        while True:
            op = self.binary_op()
            if op is None or BINARY_PRECEDENCE[op] < min_prec:
                return left
            op_tok = self.advance()
            prec = BINARY_PRECEDENCE[op]
            self.skip_newlines()
            if op == "instanceof":
                left = n.InstanceOf(op_tok.line, op_tok.column, left, self.parse_type_name())
                continue
            if op in ("&&", "and", "||", "or"):
                left = self.extend_logical(left, op_tok, self.parse_binary_nested(prec + 1))
                continue
            right = self.parse_binary_nested(prec + 1)
            canonical = "!=" if op == "<>" else op
            left = n.Binary(op_tok.line, op_tok.column, canonical, left, right)

    def parse_binary_nested(self, min_prec: int) -> n.Node:
        self.enter()
        try:
            return self.parse_binary(min_prec)
        finally:
            self.leave()

    def extend_logical(self, left: n.Node, op_tok: Token, right: n.Node) -> n.Logical:
        """Flatten `a && b && c` into one node so long rule chains stay shallow."""
        op = "&&" if op_tok.value in ("&&", "and") else "||"
        eager = op_tok.value in ("and", "or")
        if isinstance(left, n.Logical) and left.op == op and left.eager == eager:
            left.operands.append(right)
            return left
        return n.Logical(op_tok.line, op_tok.column, op, [left, right], eager)

    def parse_type_name(self) -> str:
        if self.tok.kind not in (IDENT, KEYWORD):
            self.fail("expected a type name")
        return self.parse_type()

    def parse_unary(self) -> n.Node:
        tok = self.tok
        if tok.kind == OP and tok.value in _PREFIX_OPS:
            self.advance()
            if self.tok.kind == OP and self.tok.value in _PREFIX_OPS:  # QLExpress: `prefixExpress? primaryNoFix`
                self.fail("expected an expression")
            self.enter()
            try:
                operand = self.parse_cast_or_postfix()
            finally:
                self.leave()
            if tok.value in ("++", "--"):
                return n.IncDec(tok.line, tok.column, tok.value, True, operand)
            if tok.value == "-" and isinstance(operand, n.Literal) and _is_number(operand.value):
                value = operand.value
                # copy_negate is exact: unary minus on a Decimal rounds to the context and overflows on 1E1000000
                return n.Literal(tok.line, tok.column, value.copy_negate() if isinstance(value, Decimal) else -value)
            return n.Unary(tok.line, tok.column, tok.value, operand)
        return self.parse_cast_or_postfix()

    def parse_cast_or_postfix(self) -> n.Node:
        tok = self.tok
        if self.is_cast():
            self.advance()
            type_tok = self.tok
            type_name = self.parse_type()
            self.check_class(type_name, type_tok)
            self.expect_op(")")
            self.enter()
            try:
                operand = self.parse_unary()
            finally:
                self.leave()
            return n.Cast(tok.line, tok.column, type_name, operand)
        return self.parse_postfix(self.parse_primary())

    def is_cast(self) -> bool:
        """`(int) x`, `(String) s`, and as in QLExpress any `(Name) operand`: `(x) - 1` casts `-1` to class x."""
        if not self.is_op("("):
            return False
        name = self.peek()
        if not ((name.kind == KEYWORD and name.value in PRIMITIVE_TYPES) or name.kind == IDENT):
            return False
        j = self.i + 2
        tokens = self.tokens
        while tokens[j].kind == OP and tokens[j].value == "." and tokens[j + 1].kind == IDENT:
            j += 2
        while (
            tokens[j].kind == OP and tokens[j].value == "[" and tokens[j + 1].kind == OP and tokens[j + 1].value == "]"
        ):
            j += 2
        if not (tokens[j].kind == OP and tokens[j].value == ")"):
            return False
        after = tokens[j + 1]
        if after.kind in (NUMBER, STRING, TEMPLATE, IDENT, SELECTOR):
            return True
        if after.kind == KEYWORD:
            return after.value in _CAST_OPERAND_KEYWORDS or after.value in SOFT_KEYWORDS
        return after.kind == OP and after.value in _CAST_OPERAND_OPS

    def parse_postfix(self, expr: n.Node) -> n.Node:
        while True:
            tok = self.tok
            if tok.kind == NEWLINE:
                following = self.next_significant()
                if following.kind == OP and following.value in (".", "?.", "*.", "["):
                    self.skip_newlines()
                    continue
                return expr
            if tok.kind != OP:
                return expr
            op = tok.value
            if op in (".", "?.", "*."):
                expr = self.parse_member(expr)
            elif op == "::":
                self.advance()
                name_tok = self.member_name()
                expr = n.MethodRef(name_tok.line, name_tok.column, expr, name_tok.value)
            elif op == "[":
                expr = self.parse_index(expr)
            elif op == "(":  # QLExpress calls names and methods only: not `f(1)(2)`, `l[0](1)` or `(x -> x)(1)`
                self.fail("only a function or a variable holding a lambda can be called")
            elif op in ("++", "--"):  # QLExpress: `primaryNoFix pathPart* suffixExpress?`, so the suffix ends it
                self.advance()
                return n.IncDec(tok.line, tok.column, op, False, expr)
            else:
                return expr
            self.check_chain_depth(expr)

    def check_chain_depth(self, expr: n.Node) -> None:
        # A long postfix chain (a.b.c.d...) nests nodes without nesting calls; count it against the same limit.
        depth = 0
        node: Any = expr
        while isinstance(node, n.Field | n.SpreadField | n.Index | n.Slice | n.MethodCall | n.CallValue | n.MethodRef):
            depth += 1
            node = node.callee if isinstance(node, n.CallValue) else node.obj
        if depth + self.depth > MAX_NESTING:
            self.fail(f"script nested deeper than {MAX_NESTING} levels")

    def member_name(self) -> Token:
        tok = self.tok
        if tok.kind == IDENT or tok.kind == STRING:
            return self.advance()
        if tok.kind == KEYWORD:
            self.fail("a keyword cannot follow '.'")
        self.fail("expected a field or method name")

    def parse_member(self, expr: n.Node) -> n.Node:
        op = self.advance().value
        name_tok = self.member_name()
        if self.is_op("(") and name_tok.kind == IDENT:
            self.advance()
            args = self.parse_items(")")
            return n.MethodCall(name_tok.line, name_tok.column, expr, name_tok.value, args, op == "?.", op == "*.")
        if op == "*.":
            return n.SpreadField(name_tok.line, name_tok.column, expr, name_tok.value)
        return n.Field(name_tok.line, name_tok.column, expr, name_tok.value, op == "?.")

    def parse_index(self, expr: n.Node) -> n.Node:
        tok = self.advance()
        start = None
        if not self.is_op(":"):
            start = self.parse_expression()
        if self.accept_op(":"):
            stop = None if self.is_op("]") else self.parse_expression()
            self.expect_op("]")
            return n.Slice(tok.line, tok.column, expr, start, stop)
        self.expect_op("]")
        if start is None:
            self.fail("expected an index", tok)
        return n.Index(tok.line, tok.column, expr, start)

    def parse_items(self, close: str) -> list[n.Node]:
        """Comma-separated expressions up to `close` (already past the opener); a trailing comma is allowed."""
        items = []
        self.skip_newlines()
        while not self.is_op(close):
            items.append(self.parse_expression())
            self.skip_newlines()
            if not self.accept_op(","):
                break
            self.skip_newlines()
        self.skip_newlines()
        self.expect_op(close)
        return items

    def parse_primary(self) -> n.Node:
        tok = self.tok
        kind = tok.kind
        if kind == NUMBER:
            self.advance()
            return n.Literal(tok.line, tok.column, tok.value)
        if kind == STRING:
            self.advance()
            return n.Literal(tok.line, tok.column, tok.value)
        if kind == TEMPLATE:
            self.advance()
            return self.parse_template(tok)
        if kind == SELECTOR:
            self.advance()
            return n.Name(tok.line, tok.column, tok.value)
        if kind == IDENT:
            return self.parse_identifier()
        if kind == KEYWORD:
            return self.parse_keyword_primary()
        if kind == OP:
            if tok.value == "(":
                if self.is_lambda_at_paren():
                    return self.parse_lambda()
                self.advance()
                self.skip_newlines()
                inner = self.parse_expression()
                self.skip_newlines()
                self.expect_op(")")
                return inner
            if tok.value == "[":
                self.advance()
                return n.ListLit(tok.line, tok.column, self.parse_items("]"))
            if tok.value == "{":
                if self.is_map_literal():
                    return self.parse_map()
                return self.parse_block()
        self.fail("expected an expression")

    def parse_identifier(self) -> n.Node:
        tok = self.tok
        if tok.value in WORD_OPERATORS:
            self.fail("expected an expression")
        nxt = self.peek()
        if nxt.kind == OP and nxt.value == "->":
            return self.parse_lambda()
        self.advance()
        if nxt.kind == OP and nxt.value == "(":
            self.advance()
            return n.Call(tok.line, tok.column, tok.value, self.parse_items(")"))
        if tok.value in JAVA_CLASSES and nxt.kind == OP and nxt.value in (".", "::"):
            return n.ClassRef(tok.line, tok.column, tok.value)
        return n.Name(tok.line, tok.column, tok.value)

    def parse_keyword_primary(self) -> n.Node:
        tok = self.tok
        word = tok.value
        if word in ("true", "false", "null"):
            self.advance()
            return n.Literal(tok.line, tok.column, {"true": True, "false": False, "null": None}[word])
        if word == "if":
            return self.parse_if()
        if word == "switch" and self.peek().kind == OP and self.peek().value == "(":
            return self.parse_switch()
        if word == "try":
            return self.parse_try()
        if word == "new":
            return self.parse_new()
        if word in SOFT_KEYWORDS:
            return self.parse_identifier()
        self.fail(f"unexpected keyword '{word}'")

    def parse_new(self) -> n.Node:
        tok = self.advance()
        if self.tok.kind not in (IDENT, KEYWORD):
            self.fail("expected a class name after new")
        type_name = self.parse_type()
        if self.is_op("("):
            self.advance()
            self.parse_items(")")
        elif self.is_op("["):
            self.advance()
            self.parse_expression()
            self.expect_op("]")
            type_name += "[]"
        elif self.is_op("{"):
            self.parse_array_initializer()
        else:
            self.fail("expected '(' or '[' after the class name")
        return n.New(tok.line, tok.column, type_name)

    def parse_if(self) -> n.If:
        tok = self.advance()
        self.expect_op("(")
        self.skip_newlines()
        if self.is_op(")"):
            self.fail("an if needs a condition")
        condition = self.parse_expression()
        self.skip_newlines()
        self.expect_op(")")
        if self.is_keyword("then"):
            self.advance()
        self.skip_newlines()
        then = self.parse_branch()
        otherwise = None
        if self.is_op(";") and self.token_after_separators().value == "else":
            self.skip_separators()
        following = self.next_significant()
        if following.kind == KEYWORD and following.value == "else":
            self.skip_newlines()
            self.advance()
            self.skip_newlines()
            otherwise = self.parse_branch()
        return n.If(tok.line, tok.column, condition, then, otherwise)

    def parse_branch(self) -> n.Node:
        """An if branch: a `{ block }`, or one statement."""
        if self.tok.kind in (EOF, NEWLINE) or self.is_op(";", "}", ")"):
            self.fail("expected a statement")
        if self.is_op("{") and not self.is_map_literal():
            return self.parse_block()
        statement = self.parse_statement()
        return n.Block(statement.line, statement.column, [statement])

    def parse_switch(self) -> n.Switch:
        tok = self.advance()
        self.expect_op("(")
        subject = self.parse_expression()
        self.expect_op(")")
        self.skip_newlines()
        self.expect_op("{")
        self.skip_separators()
        cases: list[n.SwitchCase] = []
        arrow: bool | None = None
        while not self.is_op("}"):
            case_tok = self.tok
            if self.is_keyword("case"):
                self.advance()
                values = [self.parse_ternary()]
                while self.accept_op(","):
                    self.skip_newlines()
                    values.append(self.parse_ternary())
            elif self.is_keyword("default"):
                self.advance()
                values = None
            else:
                self.fail("expected 'case' or 'default'")
            is_arrow = self.is_op("->")
            if not (is_arrow or self.is_op(":")):
                self.fail("expected ':' or '->'")
            if arrow is not None and arrow != is_arrow:
                self.fail("a switch cannot mix 'case x:' and 'case x ->'", code=errors.SWITCH_STYLE_MISMATCH)
            arrow = is_arrow
            self.advance()
            self.skip_newlines()
            if is_arrow:
                body: list[n.Node] = [self.parse_branch()]
            else:
                body = []
                self.skip_separators()
                while not (self.is_keyword("case", "default") or self.is_op("}")):
                    if self.tok.kind == EOF:
                        self.fail("expected '}'")
                    body.append(self.parse_statement())
                    self.end_statement(body[-1])
                    self.skip_separators()
            cases.append(n.SwitchCase(values, body, case_tok.line, case_tok.column))
            self.skip_separators()
        self.advance()
        return n.Switch(tok.line, tok.column, subject, cases, bool(arrow))

    def parse_try(self) -> n.Try | n.Block:
        tok = self.advance()
        self.skip_newlines()
        body = self.parse_block()
        catches = []
        final = None
        while self.next_significant().kind == KEYWORD and self.next_significant().value == "catch":
            self.skip_newlines()
            catch_tok = self.advance()
            self.expect_op("(")
            types: list[str] | None = None
            name = None
            if self.tok.kind in (IDENT, KEYWORD) and not (self.peek().kind == OP and self.peek().value == ")"):
                types = [self.parse_type()]
                while self.accept_op("|"):
                    types.append(self.parse_type())
            if self.tok.kind == IDENT:
                name = self.advance().value
            self.expect_op(")")
            self.skip_newlines()
            catches.append(n.CatchClause(types, name, self.parse_block(), catch_tok.line, catch_tok.column))
        if self.next_significant().kind == KEYWORD and self.next_significant().value == "finally":
            self.skip_newlines()
            self.advance()
            self.skip_newlines()
            final = self.parse_block()
        if not catches and final is None:  # QLExpress accepts `try { ... }` alone: it is the block
            return body
        return n.Try(tok.line, tok.column, body, catches, final)

    def is_map_literal(self) -> bool:
        """`{:}`, `{ key :` or `{ 'key' :` starts a map; any other `{` starts a block."""
        j = self.i + 1
        while self.tokens[j].kind == NEWLINE:
            j += 1
        first = self.tokens[j]
        if first.kind == OP and first.value == ":":
            return True
        if first.kind in (IDENT, KEYWORD, STRING):
            second = self.tokens[j + 1]
            return second.kind == OP and second.value == ":"
        return False

    def parse_map(self) -> n.MapLit:
        tok = self.advance()
        self.skip_newlines()
        items: list[tuple[str, n.Node]] = []
        if self.accept_op(":"):
            self.skip_newlines()
            self.expect_op("}")
            return n.MapLit(tok.line, tok.column, items)
        while not self.is_op("}"):
            key_tok = self.tok
            if key_tok.kind not in (IDENT, KEYWORD, STRING):
                self.fail("a map key must be a name or a string")
            self.advance()
            self.expect_op(":")
            self.skip_newlines()
            items.append((key_tok.value, self.parse_expression()))
            self.skip_newlines()
            if not self.accept_op(","):
                break
            self.skip_newlines()
        self.expect_op("}")
        return n.MapLit(tok.line, tok.column, items)

    def is_lambda_at_paren(self) -> bool:
        """`(a, b) ->`, `(int a) ->` or `() ->`: a parameter list followed by an arrow."""
        j = self.i + 1
        tokens = self.tokens
        while True:
            tok = tokens[j]
            if tok.kind == OP and tok.value == ")":
                nxt = tokens[j + 1]
                return nxt.kind == OP and nxt.value == "->"
            if not (tok.kind in (IDENT, KEYWORD) or (tok.kind == OP and tok.value in (",", "<", ">", "[", "]", "."))):
                return False
            j += 1

    def parse_lambda(self) -> n.Lambda:
        tok = self.tok
        if tok.kind == IDENT:
            self.advance()
            params = [n.Param(tok.value, None, tok.line, tok.column)]
        else:
            params = self.parse_params()
        self.expect_op("->")
        self.skip_newlines()
        if self.is_op("{") and not self.is_map_literal():
            body: n.Node = self.parse_block()
        else:
            body = self.parse_expression()
        return n.Lambda(tok.line, tok.column, params, body)

    def parse_template(self, tok: Token) -> n.Node:
        parts: list[Any] = []
        for part in tok.value:
            if isinstance(part, Interpolation):
                parts.append(self.parse_interpolation(part))
            else:
                parts.append(part)
        return n.Template(tok.line, tok.column, parts)

    def parse_interpolation(self, part: Interpolation) -> n.Node:
        if self.interpolation == "variable":
            return n.Name(part.line, part.column, part.source.strip())
        if not part.source.strip():
            raise QLSyntaxError("empty ${} in a string", line=part.line, column=part.column, source=self.source)
        tokens = tokenize(part.source, strict_newlines=False, interpolation=self.interpolation)
        for token in tokens:
            if token.line == 1:
                token.column += part.column - 1
            token.line += part.line - 1
        inner = Parser(self.source, tokens, self.interpolation)
        inner.depth = self.depth
        statements = []
        inner.skip_separators()
        while inner.tok.kind != EOF:
            statements.append(inner.parse_statement())
            inner.end_statement(statements[-1])
            inner.skip_separators()
        if len(statements) == 1 and isinstance(statements[0], n.ExprStmt):
            return statements[0].expr
        return n.Block(part.line, part.column, statements)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def check_depth(root: n.Node) -> None:
    """Reject trees deeper than the compiler may safely recurse, without recursing here."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    limit = MAX_NESTING * 2
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            line = getattr(node, "line", 1)
            column = getattr(node, "column", 1)
            raise QLSyntaxError(f"script nested deeper than {limit} levels", line=line, column=column)
        for child in n.children(node):
            stack.append((child, depth + 1))


def parse(source: str, *, strict_newlines: bool = True, interpolation: str = "script") -> n.Program:
    tokens = tokenize(source, strict_newlines=strict_newlines, interpolation=interpolation)
    parser = Parser(source, tokens, interpolation)
    program = parser.parse_program()
    check_depth(program)
    return program
