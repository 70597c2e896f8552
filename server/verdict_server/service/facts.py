"""Converting between protobuf Struct/Value and the plain Python values rules work on.

This is on the hot path of every Evaluate, so it converts only what the rules can read: a compiled rule set knows
its free variables, and `select_facts` walks just those entries of the message. For 4 of 10 typical facts that is
2.1 µs against 13.5 µs for `json_format.MessageToDict` of the whole Struct (a full direct walk costs about the same as
MessageToDict: the protobuf accessors dominate). Measured with `python benchmarks/bench_facts.py`.

Numbers: a Struct carries every number as a double. A double with an integral value (and within the range a double
holds exactly) becomes a Python int, so that facts behave like the JSON the caller wrote (`categoryId == 1001`,
`1 / 2` → 0.5 as in QLExpress, ints in results stay ints). Every other number stays a float.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

from google.protobuf import struct_pb2

_EXACT_INT_LIMIT = 2**53
MAX_DEPTH = 64  # deeper facts are refused: no rule needs them and deep recursion is an attack surface


class FactsError(ValueError):
    """Facts or a result that cannot be converted; the message names the field path."""


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The Struct as a dict of plain values (see module doc for numbers)."""
    return _struct(struct, 0, "facts")


def select_facts(struct: struct_pb2.Struct, names: frozenset[str]) -> dict[str, Any]:
    """Only the top-level facts in names, converted: a compiled rule set knows every name its QL can read
    (free variables), and reading 4 keys out of 40 costs a tenth of converting them all."""
    fields = struct.fields
    selected = {}
    for name in names:
        value = fields.get(name)  # get() does not insert a default entry, unlike fields[name]
        if value is not None:
            selected[name] = _value(value, 1, "facts", name)
    return selected


def _struct(struct: struct_pb2.Struct, depth: int, path: str) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise FactsError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    return {key: _value(value, depth + 1, path, key) for key, value in struct.fields.items()}


def _value(value: struct_pb2.Value, depth: int, path: str, key: str | int) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return _number(value.number_value)
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _struct(value.struct_value, depth, _child(path, key))
    if kind == "list_value":
        return _list(value.list_value, depth, _child(path, key))
    return None  # null_value, or a Value with no kind set


def _list(values: struct_pb2.ListValue, depth: int, path: str) -> list[Any]:
    if depth > MAX_DEPTH:
        raise FactsError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    return [_value(item, depth + 1, path, index) for index, item in enumerate(values.values)]


def _number(number: float) -> int | float:
    if number.is_integer() and -_EXACT_INT_LIMIT <= number <= _EXACT_INT_LIMIT:
        return int(number)
    return number


def _child(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}"


def to_value(python: Any, out: struct_pb2.Value) -> None:
    """Writes a plain Python value (a rule's result) into a protobuf Value.

    Decimals become doubles (the nearest one; a Value has no decimal type), nested dict keys become strings.
    Anything that is not JSON-like (a QL lambda, say) is refused with FactsError rather than silently stringified.
    """
    _fill(python, out, 0)


def _fill(python: Any, out: struct_pb2.Value, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FactsError(f"result nests deeper than {MAX_DEPTH} levels")
    if python is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif python is True or python is False:
        out.bool_value = python
    elif isinstance(python, str):
        out.string_value = python
    elif isinstance(python, int | float | Decimal):
        out.number_value = _finite(python)
    elif isinstance(python, dict):
        fields = out.struct_value.fields
        out.struct_value.SetInParent()  # an empty dict must still be a struct, not an unset Value
        for key, item in python.items():
            _fill(item, fields[str(key)], depth + 1)
    elif isinstance(python, list | tuple):
        values = out.list_value.values
        out.list_value.SetInParent()
        for item in python:
            _fill(item, values.add(), depth + 1)
    else:
        raise FactsError(f"result of type {type(python).__name__} cannot be returned (only JSON-like values)")


def _finite(number: int | float | Decimal) -> float:
    as_float = float(number)
    if math.isnan(as_float) or math.isinf(as_float):
        raise FactsError(f"result number {number} is not finite and cannot be returned")
    return as_float


def from_value(value: struct_pb2.Value) -> Any:
    """The plain Python value of a protobuf Value (used for route bodies and by tests)."""
    return _value(value, 0, "value", "")


def dict_to_struct(data: dict[str, Any]) -> struct_pb2.Struct:
    """A Struct holding data, for callers and tests; nested values use the same rules as to_value."""
    struct = struct_pb2.Struct()
    for key, item in data.items():
        _fill(item, struct.fields[str(key)], 1)
    return struct


# JSON facts and results (facts_json, RESULT_FORMAT_JSON) -------------------------------------------------------------
#
# The C JSON parser keeps integers of any size exact (a Struct carries doubles) and is faster than walking a Struct:
# a caller who needs a Java long above 2^53, or speed, sends JSON text instead.

MAX_JSON_INT_DIGITS = 400  # far beyond any id or amount; bounds the quadratic cost of int(str) in C


def parse_facts_json(text: str, names: frozenset[str] | None, path: str = "facts_json") -> dict[str, Any]:
    """The JSON object in text (only the top-level names in `names`, when given), refused with FactsError naming
    the line and column when it is not an object of JSON-like values."""
    value = _load_json(text, path)
    if not isinstance(value, dict):
        raise FactsError(f"{path}: must be a JSON object, got {_json_kind(value)}")
    if names is not None:
        value = {name: value[name] for name in names if name in value}
    _check_depth(value, path)
    return value


def parse_facts_json_list(text: str, names: frozenset[str], path: str = "facts_json") -> list[dict[str, Any]]:
    """The JSON array of objects in text, each reduced to `names` like parse_facts_json."""
    value = _load_json(text, path)
    if not isinstance(value, list):
        raise FactsError(f"{path}: must be a JSON array of objects, got {_json_kind(value)}")
    selected = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            raise FactsError(f"{where}: must be a JSON object, got {_json_kind(item)}")
        item = {name: item[name] for name in names if name in item}
        _check_depth(item, where)
        selected.append(item)
    return selected


def _load_json(text: str, path: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as err:
        raise FactsError(f"{path}: not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    except RecursionError:
        raise FactsError(f"{path}: nested deeper than {MAX_DEPTH} levels") from None


def _reject_constant(name: str) -> Any:
    raise FactsError(f"{name} is not a JSON number")


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_JSON_INT_DIGITS:
        raise FactsError(f"an integer of {len(digits)} digits is longer than the {MAX_JSON_INT_DIGITS} accepted")
    return int(digits)


def _check_depth(value: Any, path: str) -> None:
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise FactsError(f"{path}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def to_json(python: Any) -> str:
    """A rule's result as JSON text: integers and decimals exactly as computed (a Value would make them doubles)."""
    parts: list[str] = []
    _write_json(python, parts, 0)
    return "".join(parts)


def _write_json(python: Any, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FactsError(f"result nests deeper than {MAX_DEPTH} levels")
    if python is None:
        out.append("null")
    elif python is True or python is False:
        out.append("true" if python else "false")
    elif isinstance(python, str):
        out.append(_json_string(python))
    elif isinstance(python, int):
        out.append(int.__repr__(python))
    elif isinstance(python, float | Decimal):
        _finite(python)
        out.append(float.__repr__(python) if isinstance(python, float) else _decimal_text(python))
    elif isinstance(python, dict):
        out.append("{")
        for index, (key, item) in enumerate(python.items()):
            out.append(("," if index else "") + _json_string(str(key)) + ":")
            _write_json(item, out, depth + 1)
        out.append("}")
    elif isinstance(python, list | tuple):
        out.append("[")
        for index, item in enumerate(python):
            if index:
                out.append(",")
            _write_json(item, out, depth + 1)
        out.append("]")
    else:
        raise FactsError(f"result of type {type(python).__name__} cannot be returned (only JSON-like values)")


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _decimal_text(number: Decimal) -> str:
    return str(number)  # plain or scientific ('1E+3'), both JSON numbers; a scale such as 2.50 is kept


def facts_for_log(source: struct_pb2.Struct | str | dict[str, Any]) -> dict[str, Any]:
    """The facts of a request as plain values, from either encoding (for the decision log)."""
    if isinstance(source, dict):
        return source
    if isinstance(source, str):
        return parse_facts_json(source, None) if source else {}
    return struct_to_dict(source)
