"""One AMQP message → the router's Message, and the headers every published copy carries.

The mapping (docs/forwarding.md):
- topic = the routing key; tags = header `tags` (a string, split on commas, or a list of strings);
- key = header `key`, else the `message_id` property, else empty;
- properties = every other header whose value is a string, number or boolean (booleans as `true`/`false`);
- body = the payload with the content type, read as JSON only when a condition reads `body` (an empty payload is
  no body), exactly as a Route call carrying the payload in `body` with that `content_type`.

The idempotency key (`verdict-message-id`) is the `message_id` property, else a hash of routing key, key and
payload, so a redelivered message gets the same one.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from ..routing import Destination, InvalidMessage, Message, inbound_message, raw_body

TAGS_HEADER = "tags"
KEY_HEADER = "key"
SYSTEM_HEADER = "verdict-system"
TABLE_HEADER = "verdict-route-table"
TABLE_VERSION_HEADER = "verdict-table-version"
MESSAGE_ID_HEADER = "verdict-message-id"
ERROR_HEADER = "verdict-error"
MAX_HEADER_TEXT = 4096  # a header value a person reads (verdict-error); a broker frame must never be refused for it


def routing_key_of(headers: dict[str, Any] | None, message_id: str | None) -> str:
    """The message's ordering and gray key: header `key`, else the message_id property."""
    if headers:
        value = headers.get(KEY_HEADER)
        if value is not None:
            return _scalar_text(value, KEY_HEADER)
    return message_id or ""


def route_message(
    routing_key: str, headers: dict[str, Any] | None, key: str, payload: bytes, content_type: str | None
) -> Message:
    """The router's view of one AMQP message; raises InvalidMessage naming the header or field that is unusable."""
    headers = headers or {}
    tags = _tags(headers.get(TAGS_HEADER))
    properties = {}
    for name, value in headers.items():
        if name in (TAGS_HEADER, KEY_HEADER):
            continue
        text = _property_text(value)
        if text is not None:
            properties[name] = text
    body = raw_body(payload, content_type or "") if payload else None
    return inbound_message(routing_key, tags, key, properties, body)


def message_id(routing_key: str, key: str, payload: bytes, given: str | None) -> str:
    """The idempotency key: the message_id property, else a hash of routing key, key and payload (documented, so a
    consumer can recompute it: hex SHA-256 of routing key, NUL, key, NUL, payload)."""
    if given:
        return given
    digest = hashlib.sha256()
    digest.update(routing_key.encode("utf-8", "surrogateescape"))
    digest.update(b"\0")
    digest.update(key.encode("utf-8", "surrogateescape"))
    digest.update(b"\0")
    digest.update(payload)
    return digest.hexdigest()


def destination_headers(headers: dict[str, Any] | None, destination: Destination, message_key: str) -> dict[str, Any]:
    """The original headers plus what tells the destination where the copy came from and how to dedupe it."""
    out = dict(headers) if headers else {}
    out[SYSTEM_HEADER] = destination.system
    out[TABLE_HEADER] = destination.table
    out[TABLE_VERSION_HEADER] = destination.version
    out[MESSAGE_ID_HEADER] = message_key
    return out


def dead_letter_headers(headers: dict[str, Any] | None, error: str, message_key: str) -> dict[str, Any]:
    out = dict(headers) if headers else {}
    out[ERROR_HEADER] = error[:MAX_HEADER_TEXT]
    out[MESSAGE_ID_HEADER] = message_key
    return out


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes):
        return tuple(tag.strip() for tag in _text(value, TAGS_HEADER).split(",") if tag.strip())
    if isinstance(value, list):
        return tuple(_text(item, f"{TAGS_HEADER}[{index}]") for index, item in enumerate(value))
    raise InvalidMessage(f"header {TAGS_HEADER}", f"must be a string or a list of strings, got {type(value).__name__}")


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidMessage(f"header {where}", "not valid UTF-8") from None
    raise InvalidMessage(f"header {where}", f"must be a string, got {type(value).__name__}")


def _scalar_text(value: Any, where: str) -> str:
    text = _property_text(value)
    if text is None:
        raise InvalidMessage(f"header {where}", f"must be a string or a number, got {type(value).__name__}")
    return text


def _property_text(value: Any) -> str | None:
    """A header value as the string a Route property would carry; None for values that are not scalars."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None
