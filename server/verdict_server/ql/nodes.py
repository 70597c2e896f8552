"""QL syntax tree: plain dataclasses, one per construct. Every node carries the 1-based line and column of its token."""

from __future__ import annotations

from dataclasses import dataclass, field, is_dataclass
from typing import Any


@dataclass
class Node:
    line: int
    column: int


# -- expressions ---------------------------------------------------------------------------------------------------


@dataclass
class Literal(Node):
    value: Any


@dataclass
class Name(Node):
    name: str


@dataclass
class Template(Node):
    """A double-quoted string with `${}` parts: the parts are str or expression nodes."""

    parts: list[Any]


@dataclass
class ListLit(Node):
    items: list[Node]


@dataclass
class MapLit(Node):
    items: list[tuple[str, Node]]


@dataclass
class Unary(Node):
    op: str
    operand: Node


@dataclass
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass
class Logical(Node):
    """A chain of `&&`/`and` (op "&&") or `||`/`or` (op "||"); `eager` for the word forms, which QLExpress 4
    evaluates without short-circuit."""

    op: str
    operands: list[Node]
    eager: bool = False


@dataclass
class InstanceOf(Node):
    operand: Node
    type_name: str


@dataclass
class Cast(Node):
    type_name: str
    operand: Node


@dataclass
class Ternary(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass
class Assign(Node):
    op: str  # "=" or a compound operator such as "+="
    target: Node  # Name, Field or Index
    value: Node


@dataclass
class IncDec(Node):
    op: str  # "++" or "--"
    prefix: bool
    target: Node


@dataclass
class Field(Node):
    obj: Node
    name: str
    optional: bool = False


@dataclass
class SpreadField(Node):
    obj: Node
    name: str


@dataclass
class Index(Node):
    obj: Node
    index: Node


@dataclass
class Slice(Node):
    obj: Node
    start: Node | None
    stop: Node | None


@dataclass
class Call(Node):
    """`name(args)`: a script function, a host function, or a variable holding a lambda."""

    name: str
    args: list[Node]


@dataclass
class CallValue(Node):
    """`expr(args)` where the callee is any expression, e.g. `((a) -> a + 1)(2)`."""

    callee: Node
    args: list[Node]


@dataclass
class MethodCall(Node):
    obj: Node
    name: str
    args: list[Node]
    optional: bool = False
    spread: bool = False


@dataclass
class MethodRef(Node):
    obj: Node
    name: str


@dataclass
class ClassRef(Node):
    """A Java class name heading a path (`Math.max`); under isolation nothing on it is reachable."""

    name: str


@dataclass
class New(Node):
    type_name: str


@dataclass
class NewArray(Node):
    type_name: str  # the array type, `int[]` or `int[][]`
    sizes: list[Node] | None  # `new int[2][3]`
    items: list[Node] | None  # `new int[] {1, 2}`


@dataclass
class Param:
    name: str
    type_name: str | None
    line: int
    column: int


@dataclass
class Lambda(Node):
    params: list[Param]
    body: Block | Node  # a Block for `-> { ... }`, else one expression


@dataclass
class Block(Node):
    statements: list[Node]


@dataclass
class If(Node):
    condition: Node
    then: Node
    otherwise: Node | None


@dataclass
class SwitchCase:
    values: list[Node] | None  # None for `default`
    body: list[Node]  # statements (colon form) or one expression (arrow form)
    line: int
    column: int


@dataclass
class Switch(Node):
    subject: Node
    cases: list[SwitchCase]
    arrow: bool


@dataclass
class CatchClause:
    types: list[str] | None  # None catches anything
    name: str | None
    body: Block
    line: int
    column: int


@dataclass
class Try(Node):
    body: Block
    catches: list[CatchClause]
    final: Block | None


# -- statements ----------------------------------------------------------------------------------------------------


@dataclass
class ExprStmt(Node):
    expr: Node


@dataclass
class VarDecl(Node):
    type_name: str
    names: list[tuple[str, Node | None, int, int]]  # (name, initialiser, line, column)


@dataclass
class While(Node):
    condition: Node
    body: Block


@dataclass
class For(Node):
    init: Node | None
    condition: Node | None
    update: Node | None
    body: Block


@dataclass
class ForEach(Node):
    type_name: str | None
    name: str
    iterable: Node
    body: Block


@dataclass
class FunctionDef(Node):
    name: str
    params: list[Param]
    body: Block


@dataclass
class MacroDef(Node):
    name: str
    body: Block


@dataclass
class Break(Node):
    pass


@dataclass
class Continue(Node):
    pass


@dataclass
class Return(Node):
    value: Node | None


@dataclass
class Throw(Node):
    value: Node


@dataclass
class Program(Node):
    statements: list[Node] = field(default_factory=list)


def children(node: Any) -> list[Any]:
    """The direct sub-nodes of a node (for walks that must not recurse, like the depth check)."""
    out: list[Any] = []
    for value in vars(node).values():
        _collect(value, out)
    return out


def _collect(value: Any, out: list[Any]) -> None:
    if isinstance(value, Node | SwitchCase | CatchClause):
        out.append(value)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, out)


def strings_in(tree: Any) -> set[str]:
    """Every str held anywhere in a tree: each name it mentions, plus keys and literal text. A superset is all that
    deciding "this script never mentions that name" needs."""
    found: set[str] = set()
    stack = [tree]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif is_dataclass(value) and not isinstance(value, type):
            stack.extend(vars(value).values())
    return found
