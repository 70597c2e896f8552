"""Plain Python in, plain Python out: the conversions between the SDK's values and the verdict.v1 messages.

Facts and results travel as JSON text (`facts_json`, RESULT_FORMAT_JSON): integers of any size stay exact, and
encoding with the C JSON encoder is faster than building a Struct. A Decimal fact is sent as the nearest double; a
rule's Decimal result comes back as a float.

Route bodies, properties and explain traces still use google.protobuf.Struct / Value. These functions walk those
messages directly instead of going through `json_format` (several times slower). A Value carries every number as a
double: a double with an integral value within ±2**53 (where a double is exact) comes back as an `int`, and an int
too large for a double to hold exactly is refused rather than silently rounded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf import struct_pb2

from .v1 import admin_pb2, decision_pb2

EXACT_INT_LIMIT = 2**53
MAX_DEPTH = 64  # the server refuses deeper facts; refusing here gives a clearer message, before any network call

JSON_CONTENT_TYPE = "application/json"

# --------------------------------------------------------------------------------------- values <-> Struct/Value


def to_struct(mapping: Mapping[str, Any]) -> struct_pb2.Struct:
    """A mapping of JSON-like values (dict, list/tuple, str, int, float, Decimal, bool, None) as a Struct."""
    struct = struct_pb2.Struct()
    fill_struct(mapping, struct)
    return struct


def fill_struct(mapping: Mapping[str, Any], out: struct_pb2.Struct, path: str = "facts") -> None:
    """Writes `mapping` into an existing Struct (e.g. a field of a request). TypeError/ValueError name the path."""
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{path} must be a mapping (dict), not {type(mapping).__name__}")
    _fill_struct(mapping, out, 0, path)


def to_value(python: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    _fill_value(python, value, 0, "value")
    return value


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {key: from_value(value) for key, value in struct.fields.items()}


def from_value(value: struct_pb2.Value) -> Any:
    """The Value as plain Python: dict, list, str, int (integral numbers), float, bool or None."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return _number(value.number_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return from_struct(value.struct_value)
    if kind == "list_value":
        return [from_value(item) for item in value.list_value.values]
    return None  # null_value, or no kind set


def _number(number: float) -> int | float:
    if number.is_integer() and -EXACT_INT_LIMIT <= number <= EXACT_INT_LIMIT:
        return int(number)
    return number


def _fill_struct(mapping: Mapping[Any, Any], out: struct_pb2.Struct, depth: int, path: str) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    fields = out.fields
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"{path}: keys must be strings, not {type(key).__name__} ({key!r})")
        _fill_value(item, fields[key], depth + 1, f"{path}.{key}")


def _fill_value(python: Any, out: struct_pb2.Value, depth: int, path: str) -> None:
    if python is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif python is True or python is False:  # before int: bool is an int subclass
        out.bool_value = python
    elif isinstance(python, str):
        out.string_value = python
    elif isinstance(python, int):
        out.number_value = _exact_int(python, path)
    elif isinstance(python, float | Decimal):
        out.number_value = _finite(python, path)
    elif isinstance(python, Mapping):
        out.struct_value.SetInParent()  # an empty dict must still be a struct, not an unset Value
        _fill_struct(python, out.struct_value, depth, path)
    elif isinstance(python, list | tuple):
        if depth > MAX_DEPTH:
            raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        values = out.list_value.values
        out.list_value.SetInParent()
        for index, item in enumerate(python):
            _fill_value(item, values.add(), depth + 1, f"{path}[{index}]")
    else:
        raise TypeError(
            f"{path}: a {type(python).__name__} cannot be sent; use JSON-like values"
            " (dict, list, str, int, float, Decimal, bool, None)"
        )


def _exact_int(number: int, path: str) -> float:
    if -EXACT_INT_LIMIT <= number <= EXACT_INT_LIMIT:
        return float(number)
    raise ValueError(f"{path}: {number} is too large to send exactly as a number (beyond ±2**53); send it as a string")


def _finite(number: float | Decimal, path: str) -> float:
    as_float = float(number)
    if math.isnan(as_float) or math.isinf(as_float):
        raise ValueError(f"{path}: {number} is not a finite number, which JSON cannot carry")
    return as_float


def to_json_text(mapping: Mapping[str, Any], path: str = "facts") -> str:
    """A mapping of JSON-like values as compact JSON text (ints exact). TypeError/ValueError name the bad path."""
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{path} must be a mapping (dict), not {type(mapping).__name__}")
    try:
        return _JSON.encode(mapping)
    except (TypeError, ValueError, RecursionError):
        _check_json(mapping, 0, path)  # raises the error that names where the value is
        raise


def _decimal_as_float(value: Any) -> float:
    if isinstance(value, Decimal) and value.is_finite():
        return float(value)
    raise TypeError(f"a {type(value).__name__} cannot be sent")


_JSON = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False, default=_decimal_as_float)


def _check_json(python: Any, depth: int, path: str) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(python, float | Decimal):
        _finite(python, path)
    elif isinstance(python, Mapping):
        for key, item in python.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: keys must be strings, not {type(key).__name__} ({key!r})")
            _check_json(item, depth + 1, f"{path}.{key}")
    elif isinstance(python, list | tuple):
        for index, item in enumerate(python):
            _check_json(item, depth + 1, f"{path}[{index}]")
    elif not (python is None or isinstance(python, str | int)):
        raise TypeError(
            f"{path}: a {type(python).__name__} cannot be sent; use JSON-like values"
            " (dict, list, str, int, float, Decimal, bool, None)"
        )


# ------------------------------------------------------------------------------------------------ result types


@dataclass(frozen=True)
class EvalError:
    """A QL error met while evaluating. `code` uses QLExpress's names (INVALID_BINARY_OPERAND, SCRIPT_TIME_OUT, ...)."""

    code: str
    message: str
    rule_id: str = ""  # empty for an ad-hoc expression or a rule set's script
    line: int = 0  # 1-based position in the rule's QL source; 0 when unknown
    column: int = 0


@dataclass(frozen=True)
class RuleTrace:
    """One rule's part in a decision (explain=True)."""

    rule_id: str
    evaluated: bool
    matched: bool
    condition: Any  # the value of the rule's `when`; None when it was not evaluated
    error: EvalError | None
    note: str  # why the rule was not evaluated, e.g. "disabled"


@dataclass(frozen=True)
class Evaluation:
    """The answer to one evaluate call."""

    result: Any
    matched_rules: list[str]
    rule_set: str
    version: int
    decision_id: str
    degraded: bool  # a rule failed and on_error: default answered with the default result; see `error`
    error: EvalError | None
    trace: list[RuleTrace] = field(default_factory=list)
    defaulted: bool = False  # the result is the rule set's `default`: no rule matched (or, degraded, one failed)


@dataclass(frozen=True)
class Destination:
    system: str
    target: str
    priority: int
    table: str
    version: int


@dataclass(frozen=True)
class Skipped:
    """A candidate system that does not receive the message. `reason` is the SkipReason without its prefix, e.g.
    "NOT_SELECTED" for SKIP_REASON_NOT_SELECTED."""

    system: str
    table: str
    reason: str
    detail: str
    version: int


@dataclass(frozen=True)
class Routing:
    """The answer to one route call."""

    destinations: list[Destination]
    skipped: list[Skipped]
    decision_id: str


@dataclass(frozen=True)
class DocumentVersion:
    kind: str
    name: str
    version: int
    unchanged: bool = False  # the content was already the head's: nothing was written, `version` is that head


@dataclass(frozen=True)
class Document:
    kind: str
    name: str
    version: int
    content: str
    active: bool  # this version is the head and not deleted
    author: str
    created_at: datetime | None  # timezone-aware UTC; None when the server did not say
    deleted: bool  # this version records a deletion


@dataclass(frozen=True)
class DocumentProblem:
    """One problem of a document. Line and column are 1-based; 0 means the document as a whole."""

    message: str
    line: int = 0
    column: int = 0
    path: str = ""  # e.g. "rules[2].when"
    code: str = ""  # QL error code when the problem is in QL source

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.line else "document"
        at = f" ({self.path})" if self.path else ""
        return f"{where}{at}: {self.message}"


@dataclass(frozen=True)
class Validation:
    valid: bool
    problems: list[DocumentProblem]
    kind: str = ""
    name: str = ""


# ----------------------------------------------------------------------------------------- requests (Python -> pb)


def evaluate_request(
    rule_set: str, facts: Mapping[str, Any], *, version: int = 0, explain: bool = False, expression: str = ""
) -> decision_pb2.EvaluateRequest:
    return decision_pb2.EvaluateRequest(
        rule_set=rule_set,
        version=version,
        explain=explain,
        expression=expression,
        facts_json=to_json_text(facts),
        result_format=decision_pb2.RESULT_FORMAT_JSON,
    )


def evaluate_batch_request(
    rule_set: str, facts_list: Iterable[Mapping[str, Any]], *, version: int = 0, explain: bool = False
) -> decision_pb2.EvaluateBatchRequest:
    texts = [to_json_text(facts, f"facts_list[{index}]") for index, facts in enumerate(facts_list)]
    return decision_pb2.EvaluateBatchRequest(
        rule_set=rule_set,
        version=version,
        explain=explain,
        facts_json=f"[{','.join(texts)}]",
        result_format=decision_pb2.RESULT_FORMAT_JSON,
    )


def route_request(
    topic: str,
    *,
    tags: Iterable[str] = (),
    key: str = "",
    properties: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | bytes | str | None = None,
    content_type: str = JSON_CONTENT_TYPE,
) -> decision_pb2.RouteRequest:
    """`body`: a mapping is sent as structured JSON (body_json); bytes or str are sent raw with `content_type`."""
    if isinstance(tags, str):
        raise TypeError(f"tags must be a list of strings, not the string {tags!r}")
    request = decision_pb2.RouteRequest(topic=topic, tags=list(tags), key=key)
    for name, text in (properties or {}).items():
        if not isinstance(name, str) or not isinstance(text, str):
            raise TypeError(f"properties must map str to str; got {name!r}: {text!r}")
        request.properties[name] = text
    if isinstance(body, Mapping):
        fill_struct(body, request.body_json, "body")
    elif isinstance(body, bytes | str):
        request.body = body.encode("utf-8") if isinstance(body, str) else body
        request.content_type = content_type
    elif body is not None:
        raise TypeError(f"body must be a dict, bytes or str, not {type(body).__name__}")
    return request


# ---------------------------------------------------------------------------------------- responses (pb -> Python)


def evaluation(response: decision_pb2.EvaluateResponse) -> Evaluation:
    return Evaluation(
        result=_result(response),
        matched_rules=list(response.matched_rules),
        rule_set=response.rule_set,
        version=response.version,
        decision_id=response.decision_id,
        degraded=response.degraded,
        error=_eval_error(response.error) if response.HasField("error") else None,
        trace=[_rule_trace(trace) for trace in response.trace],
        defaulted=response.defaulted,
    )


def evaluations(response: decision_pb2.EvaluateBatchResponse) -> list[Evaluation]:
    return [evaluation(result) for result in response.results]


def routing(response: decision_pb2.RouteResponse) -> Routing:
    return Routing(
        destinations=[
            Destination(system=d.system, target=d.target, priority=d.priority, table=d.table, version=d.version)
            for d in response.destinations
        ],
        skipped=[
            Skipped(system=s.system, table=s.table, reason=_skip_reason(s.reason), detail=s.detail, version=s.version)
            for s in response.skipped
        ],
        decision_id=response.decision_id,
    )


def document_version(response: Any) -> DocumentVersion:
    """The version a write answered (any of the write responses: their `document`, and `unchanged` where it has one)."""
    written = response.document
    return DocumentVersion(
        kind=written.kind,
        name=written.name,
        version=written.version,
        unchanged=getattr(response, "unchanged", False),
    )


def document(response: admin_pb2.Document) -> Document:
    return Document(
        kind=response.kind,
        name=response.name,
        version=response.version,
        content=response.content,
        active=response.active,
        author=response.author,
        created_at=response.created_at.ToDatetime(tzinfo=UTC) if response.HasField("created_at") else None,
        deleted=response.deleted,
    )


def documents(response: admin_pb2.ListDocumentsResponse | admin_pb2.ListVersionsResponse) -> list[Document]:
    return [document(item) for item in response.documents]


def validation(response: admin_pb2.ValidateDocumentResponse) -> Validation:
    return Validation(
        valid=response.ok,
        problems=[
            DocumentProblem(message=e.message, line=e.line, column=e.column, path=e.path, code=e.code)
            for e in response.errors
        ],
        kind=response.kind,
        name=response.name,
    )


def _result(response: decision_pb2.EvaluateResponse) -> Any:
    if response.result_json:
        return json.loads(response.result_json)
    return from_value(response.result) if response.HasField("result") else None


def _eval_error(error: decision_pb2.EvalError) -> EvalError:
    return EvalError(
        code=error.code, message=error.message, rule_id=error.rule_id, line=error.line, column=error.column
    )


def _rule_trace(trace: decision_pb2.RuleTrace) -> RuleTrace:
    return RuleTrace(
        rule_id=trace.rule_id,
        evaluated=trace.evaluated,
        matched=trace.matched,
        condition=from_value(trace.condition) if trace.HasField("condition") else None,
        error=_eval_error(trace.error) if trace.HasField("error") else None,
        note=trace.note,
    )


def _skip_reason(reason: int) -> str:
    try:
        return decision_pb2.SkipReason.Name(reason).removeprefix("SKIP_REASON_")
    except ValueError:  # a reason added to the contract after this SDK was built
        return f"UNKNOWN_{reason}"
