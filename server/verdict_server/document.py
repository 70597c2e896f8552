"""Loading rule-set and route-table documents: safe, size-limited YAML/JSON with a position for every value.

Operations staff write these documents by hand, so every problem must point at a line and column. PyYAML's composer
gives us nodes with marks; we build plain Python values from them ourselves (instead of `yaml.safe_load`) so that we
can remember where each value came from, reject duplicate keys, and bound the work an anchor/alias bomb can cause.
JSON is read by the same path: YAML 1.2 is a superset of JSON, and PyYAML reads JSON documents as YAML flow style.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

try:  # the C composer is much faster on large documents; both give identical nodes and marks
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_NODES = 100_000  # counts nodes as visited, so an alias expanded many times counts many times
MAX_DEPTH = 64
MAX_EXPANDED_CHARS = (
    2 * MAX_DOCUMENT_BYTES
)  # scalar characters after alias expansion: twice what a plain document may hold

RULE_SET = "RuleSet"
ROUTE_TABLE = "RouteTable"
KINDS = (RULE_SET, ROUTE_TABLE)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_COLLECTION_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document. Line and column are 1-based; 0 means the document as a whole."""

    message: str
    line: int = 0
    column: int = 0
    path: str = ""
    code: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.line else "document"
        at = f" ({self.path})" if self.path else ""
        return f"{where}{at}: {self.message}"


class DocumentInvalid(Exception):
    """A document with one or more problems; all of them are listed, not only the first."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid document")


@dataclass(frozen=True)
class ValueSpan:
    """Where a value stands in the document text, and how a scalar was written (for mapping QL positions)."""

    line: int
    column: int
    style: str | None = None  # None (plain), "'", '"', "|" or ">"
    # Character offsets of the value's first character and just past its last one, so a tool can edit the text in
    # place (set_selection flips one switch without disturbing comments). -1 when unknown.
    start_offset: int = -1
    end_offset: int = -1


@dataclass
class SourceDocument:
    """A parsed document: plain Python data plus the position of every value, keyed by path ("rules[2].when")."""

    text: str
    data: dict[str, Any]
    spans: dict[str, ValueSpan] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.data.get("kind", "")

    @property
    def name(self) -> str:
        return self.data.get("name", "")

    def span(self, path: str) -> ValueSpan:
        """The span of the value at path, or of its nearest parent that has one."""
        while path:
            found = self.spans.get(path)
            if found is not None:
                return found
            path = _parent_path(path)
        return self.spans.get("", ValueSpan(1, 1))

    def problem(self, path: str, message: str, code: str = "") -> Problem:
        span = self.span(path)
        return Problem(message, span.line, span.column, path, code)

    def ql_problem(self, path: str, message: str, code: str, ql_line: int | None, ql_column: int | None) -> Problem:
        """A problem inside QL source stored at path, with the QL position translated to document coordinates."""
        line, column = self.ql_position(path, ql_line or 1, ql_column or 1)
        return Problem(message, line, column, path, code)

    def ql_position(self, path: str, ql_line: int, ql_column: int) -> tuple[int, int]:
        span = self.span(path)
        if span.style in ("|", ">"):
            # Block scalars start on the line after the indicator. Their indentation is set by the first non-blank
            # content line; a later line may be indented further, and that extra indentation is part of the QL text.
            return span.line + ql_line, _block_indentation(self.text, span.line) + ql_column
        offset = 1 if span.style in ("'", '"') else 0
        if ql_line == 1:
            return span.line, span.column + offset + ql_column - 1
        return span.line + ql_line - 1, ql_column


class ProblemCollector:
    """Gathers every problem of a document while a validator walks it, so the author sees all of them at once."""

    def __init__(self, doc: SourceDocument) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def add(self, path: str, message: str, code: str = "") -> None:
        self.problems.append(self.doc.problem(path, message, code))

    def add_ql(self, path: str, message: str, code: str, ql_line: int | None, ql_column: int | None) -> None:
        self.problems.append(self.doc.ql_problem(path, message, code, ql_line, ql_column))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DocumentInvalid(sorted(self.problems, key=lambda p: (p.line, p.column)))

    def mapping(self, value: Any, path: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.add(path, f"must be a mapping, got {type_name(value)}")
        return None

    def field(
        self,
        mapping: dict[str, Any],
        path: str,
        key: str,
        types: type | tuple[type, ...],
        *,
        required: bool = False,
        default: Any = None,
    ) -> Any:
        """Returns mapping[key] when it has one of `types`; records a problem (and returns default) otherwise."""
        child = join_path(path, key)
        if key not in mapping or mapping[key] is None:
            if required:
                self.add(path, f"'{key}' is required")
            return default
        value = mapping[key]
        if not _has_type(value, types):
            self.add(child, f"'{key}' must be {_describe(types)}, got {type_name(value)}")
            return default
        return value

    def unknown_fields(self, mapping: dict[str, Any], path: str, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        for key in mapping:
            if key not in allowed:
                self.add(join_path(path, key), f"unknown field '{key}' (allowed: {', '.join(sorted(allowed))})")


def load_document(text: str) -> SourceDocument:
    """Parses and checks the envelope (kind, name) of a document; raises DocumentInvalid with every problem found."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise DocumentInvalid([Problem(f"document is larger than {MAX_DOCUMENT_BYTES} bytes")])
    if not text.strip():
        raise DocumentInvalid([Problem("document is empty")])
    root = _compose(text)
    builder = _Builder()
    data = builder.build(root, "", 0)
    doc = SourceDocument(text, data if isinstance(data, dict) else {}, builder.spans)
    if builder.problems:
        raise DocumentInvalid(builder.problems)
    if not isinstance(data, dict):
        raise DocumentInvalid([doc.problem("", f"a document must be a mapping, got {type_name(data)}")])
    _check_envelope(doc)
    return doc


def _compose(text: str) -> yaml.Node:
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        message = " ".join(part for part in (err.context, err.problem) if part) or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise DocumentInvalid([Problem(f"YAML syntax error: {message}", line, column)]) from None
    except yaml.reader.ReaderError as err:
        line, column = _line_and_column(text, err.position)
        code = err.character if isinstance(err.character, int) else ord(err.character)
        message = f"YAML error: control characters are not allowed (found U+{code:04X}); only tab and line breaks are"
        raise DocumentInvalid([Problem(message, line, column)]) from None
    except yaml.YAMLError as err:
        raise DocumentInvalid([Problem(f"YAML error: {err}")]) from None
    except RecursionError:
        raise DocumentInvalid([Problem(f"document nests deeper than {MAX_DEPTH} levels")]) from None
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        raise DocumentInvalid([Problem("document is empty")])
    if len(nodes) > 1:
        mark = nodes[1].start_mark
        raise DocumentInvalid([Problem("one document per text: found a second '---' document", mark.line + 1, 1)])
    return nodes[0]


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


class _Builder:
    """Turns composed YAML nodes into plain values, recording spans and problems, within node and depth limits."""

    def __init__(self) -> None:
        self.spans: dict[str, ValueSpan] = {}
        self.problems: list[Problem] = []
        self.visited = 0
        self.expanded_chars = 0
        self._constructor = yaml.SafeLoader("")  # only its scalar constructors are used

    def build(self, node: yaml.Node, path: str, depth: int) -> Any:
        self.visited += 1
        if isinstance(node, yaml.ScalarNode):
            # Aliases repeat what they point to: count every repetition, so a big anchored value used many times
            # cannot turn a small document into a huge one.
            self.expanded_chars += len(node.value)
            if self.expanded_chars > MAX_EXPANDED_CHARS:
                raise DocumentInvalid(
                    [
                        _problem_at(
                            node,
                            path,
                            f"document expands to more than {MAX_EXPANDED_CHARS} characters of values "
                            "(anchors and aliases count each time they are used)",
                        )
                    ]
                )
        if self.visited > MAX_NODES:
            raise DocumentInvalid(
                [
                    Problem(
                        f"document expands to more than {MAX_NODES} values (anchors and aliases count each time they are used)"
                    )
                ]
            )
        if depth > MAX_DEPTH:
            raise DocumentInvalid([_problem_at(node, path, f"document nests deeper than {MAX_DEPTH} levels")])
        start, end = node.start_mark, node.end_mark
        self.spans.setdefault(path, ValueSpan(start.line + 1, start.column + 1, _style(node), start.index, end.index))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if node.tag not in _COLLECTION_TAGS:
            self.problems.append(_problem_at(node, path, f"unsupported YAML tag {node.tag}"))
            return None
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        self.problems.append(_problem_at(node, path, "unsupported YAML node"))
        return None

    def _scalar(self, node: yaml.ScalarNode, path: str) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self.problems.append(_problem_at(node, path, f"unsupported YAML tag {node.tag}"))
            return None
        try:
            value = self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as err:
            self.problems.append(_problem_at(node, path, f"invalid value: {err}"))
            return None
        if isinstance(value, datetime.date):  # documents hold JSON-like values only; dates stay as written
            return node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(
                    _problem_at(key_node, path, "mapping keys must be plain strings (no merge keys or complex keys)")
                )
                continue
            key = key_node.value
            child = join_path(path, key)
            if key in result:
                self.problems.append(_problem_at(key_node, child, f"duplicate key '{key}'"))
                continue
            result[key] = self.build(value_node, child, depth + 1)
        return result


def _check_envelope(doc: SourceDocument) -> None:
    problems = ProblemCollector(doc)
    kind = doc.data.get("kind")
    if kind is None:
        problems.add("", f"'kind' is required ({' or '.join(KINDS)})")
    elif kind not in KINDS:
        problems.add("kind", f"unknown kind {kind!r} (expected {' or '.join(KINDS)})")
    name = doc.data.get("name")
    if name is None:
        problems.add("", "'name' is required")
    elif not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.add(
            "name",
            "'name' must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    problems.raise_if_any()


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _parent_path(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def _problem_at(node: yaml.Node, path: str, message: str) -> Problem:
    shown = path if len(path) <= 80 else path[:77] + "..."
    return Problem(message, node.start_mark.line + 1, node.start_mark.column + 1, shown)


def _style(node: yaml.Node) -> str | None:
    # The C composer reports plain scalars as style "" where the Python one says None.
    return (getattr(node, "style", None) or None) if isinstance(node, yaml.ScalarNode) else None


def _block_indentation(text: str, indicator_line: int) -> int:
    for content in text.splitlines()[indicator_line:]:
        if content.strip():
            return len(content) - len(content.lstrip(" "))
    return 0


def _has_type(value: Any, types: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int in Python, never in a document
        return bool in (types if isinstance(types, tuple) else (types,))
    return isinstance(value, types)


def _describe(types: type | tuple[type, ...]) -> str:
    names = [type_name_of(t) for t in (types if isinstance(types, tuple) else (types,))]
    return " or ".join(dict.fromkeys(names))


def type_name_of(t: type) -> str:
    return {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a mapping",
    }.get(t, t.__name__)


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    return type_name_of(type(value))
