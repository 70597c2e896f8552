"""Reading a raw MQ message body as JSON, for conditions that look at `body`.

The router calls this lazily, at most once per Route call, and only when a condition that reads `body` is reached.
Any failure is a BodyError whose message can be shown to the caller as is; the router turns it into an ERROR skip
for the systems whose condition needed the body, never into a failed call.
"""

from __future__ import annotations

import json
from typing import Any

MAX_BODY_BYTES = 4 * 1024 * 1024  # gRPC's default message limit; a larger body cannot arrive anyway
MAX_BODY_DEPTH = 64
JSON_MEDIA_TYPES = ("application/json", "text/json")


class BodyError(ValueError):
    """The body cannot be read as JSON; the message says why, with a line and column when the JSON is malformed."""


def parse_json_body(raw: bytes, content_type: str) -> Any:
    _check_content_type(content_type)
    if len(raw) > MAX_BODY_BYTES:
        raise BodyError(f"body is {len(raw)} bytes, more than the {MAX_BODY_BYTES} a condition may read")
    text = _decode_utf8(raw)
    if not text.strip():
        raise BodyError("body is empty, not JSON")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise BodyError(f"body is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from None
    except RecursionError:
        raise BodyError(f"body nests deeper than {MAX_BODY_DEPTH} levels") from None
    except ValueError as err:  # NaN/Infinity, or an integer with too many digits
        raise BodyError(f"body is not valid JSON: {err}") from None
    if _depth(value) > MAX_BODY_DEPTH:
        raise BodyError(f"body nests deeper than {MAX_BODY_DEPTH} levels")
    return value


def _check_content_type(content_type: str) -> None:
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type and media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise BodyError(
            f"content type {content_type!r} is not JSON: a condition can read only JSON bodies "
            "(application/json, */*+json, or no content type)"
        )
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BodyError(f"charset {value.strip()!r} is not supported: JSON bodies must be UTF-8")


def _decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # tolerate a byte-order mark, as JSON readers commonly do
    except UnicodeDecodeError as err:
        raise BodyError(f"body is not valid UTF-8: byte {err.start} ({raw[err.start]:#04x}) is {err.reason}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """Nesting depth of a parsed value, without recursion (json.loads already bounded it by the recursion limit)."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in item)
    return deepest
