"""In-process: how one AMQP message becomes the router's Message, and the idempotency key."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from verdict_server.forward.mapping import destination_headers, message_id, route_message, routing_key_of
from verdict_server.routing import BodyError, Destination, InvalidMessage


def test_headers_become_tags_key_and_string_properties():
    headers = {"tags": "PAID, URGENT", "key": 42, "env": "prod", "n": 3, "ok": True, "d": Decimal("1.5"), "t": {"x": 1}}
    key = routing_key_of(headers, "m-1")
    message = route_message("order.status.paid", headers, key, b"", None)
    assert message.tags == ("PAID", "URGENT")
    assert message.key == "42"
    assert message.properties == {"env": "prod", "n": "3", "ok": "true", "d": "1.5"}  # the table is left out
    assert message.body() is None  # an empty payload is no body


def test_tags_as_a_list_and_key_from_message_id():
    message = route_message("a.b", {"tags": ["PAID", b"X"]}, routing_key_of({}, "m-7"), b"", None)
    assert message.tags == ("PAID", "X") and message.key == "m-7"
    assert routing_key_of(None, None) == ""


@pytest.mark.parametrize(
    ("headers", "field"),
    [({"tags": {"a": 1}}, "header tags"), ({"tags": ["ok", 3]}, "header tags[1]"), ({"tags": b"\xff"}, "header tags")],
)
def test_unusable_headers_name_the_header(headers, field):
    with pytest.raises(InvalidMessage) as caught:
        route_message("a.b", headers, "", b"", None)
    assert caught.value.field == field


def test_a_bad_topic_is_refused_like_the_rpc_does():
    with pytest.raises(InvalidMessage, match="topic: must be 1-1024 characters"):
        route_message("a..b", {}, "", b"", None)


def test_the_body_is_read_as_json_only_when_asked():
    assert route_message("a", {}, "", b'{"amount": 1}', "application/json").body() == {"amount": 1}
    with pytest.raises(BodyError, match="not JSON"):
        route_message("a", {}, "", b"<xml/>", "text/xml").body()


def test_the_idempotency_key_is_the_message_id_or_a_stable_hash():
    assert message_id("a.b", "k", b"payload", "given") == "given"
    expected = hashlib.sha256(b"a.b\0k\0payload").hexdigest()
    assert message_id("a.b", "k", b"payload", None) == expected == message_id("a.b", "k", b"payload", "")
    assert message_id("a.b", "k2", b"payload", None) != expected


def test_destination_headers_add_to_a_copy_of_the_original():
    original = {"env": "prod"}
    headers = destination_headers(original, Destination("crm", "crm.t", 0, "order-events", 3), "m-1")
    assert headers == {
        "env": "prod",
        "verdict-system": "crm",
        "verdict-route-table": "order-events",
        "verdict-table-version": 3,
        "verdict-message-id": "m-1",
    }
    assert original == {"env": "prod"}


def test_double_headers_decode_and_encode_exactly():
    """An AMQP double (from a Java or Go producer): pika alone decodes 99.5 as 99, dies on NaN, encodes no float."""
    import math
    import struct

    import pika.data

    from verdict_server.forward import amqp_fields

    amqp_fields.install()
    table = b"".join(
        [
            b"\x05price" + b"d" + struct.pack(">d", 99.5),
            b"\x03nan" + b"d" + struct.pack(">d", float("nan")),
            b"\x04half" + b"f" + struct.pack(">f", 0.5),
            b"\x06nested" + b"F" + struct.pack(">I", 11) + b"\x01x" + b"d" + struct.pack(">d", -1.25),
            b"\x01n" + b"I" + struct.pack(">i", 7),
        ]
    )
    headers, _ = pika.data.decode_table(struct.pack(">I", len(table)) + table, 0)
    assert headers["price"] == 99.5 and math.isnan(headers["nan"]) and headers["half"] == 0.5
    assert headers["nested"] == {"x": -1.25} and headers["n"] == 7
    copy = destination_headers(headers, Destination("crm", "crm.t", 0, "order-events", 3), "m-1")
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, copy)
    again, _ = pika.data.decode_table(b"".join(pieces), 0)
    assert again["price"] == 99.5 and again["nested"] == {"x": -1.25} and math.isnan(again["nan"])
    assert route_message("a", headers, "", b"", None).properties["price"] == "99.5"
