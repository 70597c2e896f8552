"""parse_json_body: JSON bodies only, with clear messages for everything else."""

from __future__ import annotations

import pytest

from verdict_server.routing import BodyError, parse_json_body
from verdict_server.routing.body import MAX_BODY_BYTES, MAX_BODY_DEPTH


@pytest.mark.parametrize(
    "content_type",
    ["", "application/json", "application/json; charset=utf-8", "application/vnd.order+json", "TEXT/JSON"],
)
def test_json_content_types(content_type):
    assert parse_json_body(b'{"amount": 12.5, "items": [1, 2]}', content_type) == {"amount": 12.5, "items": [1, 2]}


def test_byte_order_mark_is_tolerated():
    assert parse_json_body('\ufeff{"a": 1}'.encode(), "") == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (b'{"amount": 1,}', "", "not valid JSON: .* at line 1, column 14"),
        (b'{\n  "amount": \n}', "application/json", "line 3, column 1"),
        (b"\xff\xfe{}", "", "not valid UTF-8: byte 0 \\(0xff\\)"),
        (b"", "", "empty"),
        (b"{}", "text/plain", "content type 'text/plain' is not JSON"),
        (b"{}", "application/json; charset=latin-1", "charset 'latin-1' is not supported"),
        (b'{"a": NaN}', "", "NaN is not a JSON number"),
        (b"[" * (MAX_BODY_DEPTH + 1) + b"]" * (MAX_BODY_DEPTH + 1), "", "deeper than 64"),
        (b"[" * 100_000 + b"]" * 100_000, "", "deeper than 64"),
    ],
)
def test_bad_bodies_raise_clear_errors(raw, content_type, message):
    with pytest.raises(BodyError, match=message):
        parse_json_body(raw, content_type)


def test_nesting_up_to_the_limit_is_accepted():
    raw = b"[" * MAX_BODY_DEPTH + b"]" * MAX_BODY_DEPTH
    assert parse_json_body(raw, "") is not None


def test_too_large():
    with pytest.raises(BodyError, match="more than"):
        parse_json_body(b" " * (MAX_BODY_BYTES + 1), "")
