"""AMQP header values that pika (1.4) gets wrong, fixed once for the process before any connection exists.

pika decodes an AMQP double or float header (`d`, `f`: what Java, Go and .NET producers send for a `double`) with
`long(...)`: 99.5 arrives as 99 (and an infinity raises inside pika's frame reader, which would kill the connection
on every redelivery of that message). It also cannot encode a float at all, so no copy of a
message carrying one could be published. Here `d`/`f` decode to a Python float and a float encodes as `d`: the value
reaches the route's properties and every copy exactly as the producer sent it.
"""

from __future__ import annotations

import struct
from typing import Any

import pika.data

_decode_value = pika.data.decode_value
_encode_value = pika.data.encode_value


def decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
    kind = encoded[offset : offset + 1]
    if kind == b"d":
        return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
    if kind == b"f":
        return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
    return _decode_value(encoded, offset)


def encode_value(pieces: list[bytes], value: Any) -> int:
    if isinstance(value, float):
        pieces.append(struct.pack(">cd", b"d", value))
        return 9
    return _encode_value(pieces, value)


def install() -> None:
    """pika's table codec looks both functions up in its module at every call (also for nested tables)."""
    pika.data.decode_value = decode_value
    pika.data.encode_value = encode_value
