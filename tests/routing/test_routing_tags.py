"""Tag expressions, RocketMQ style: `*` or `A || B || C`; a message with several tags matches if any is listed."""

from __future__ import annotations

import pytest

from verdict_server.routing.tags import TagExpressionError, TagFilter


@pytest.mark.parametrize("text", [None, "", "*", "  *  "])
def test_any_tag_accepts_messages_with_and_without_tags(text):
    tags = TagFilter.parse(text)
    assert tags.accepts_everything
    assert tags.matches(())
    assert tags.matches(("PAID",))


@pytest.mark.parametrize(
    ("text", "message_tags", "expected"),
    [
        ("PAID", ("PAID",), True),
        ("PAID", ("paid",), False),  # tags are case-sensitive, as in RocketMQ
        ("PAID || REFUNDED", ("REFUNDED",), True),
        ("PAID||REFUNDED", ("REFUNDED",), True),
        ("  PAID ||   REFUNDED  ", ("PAID",), True),
        ("PAID || REFUNDED", ("CREATED",), False),
        ("PAID || REFUNDED", (), False),
        ("PAID || REFUNDED", ("CREATED", "REFUNDED"), True),  # several tags: any one is enough
        ("PAID || REFUNDED", ("CREATED", "SHIPPED"), False),
    ],
)
def test_tag_expression(text, message_tags, expected):
    assert TagFilter.parse(text).matches(message_tags) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PAID || || REFUNDED", "alternative 2 is empty"),
        ("PAID ||", "alternative 2 is empty"),
        ("PAID || *", "'\\*' must stand alone"),
        ("PAID | REFUNDED", "single '\\|'"),
    ],
)
def test_invalid_tag_expressions(text, message):
    with pytest.raises(TagExpressionError, match=message):
        TagFilter.parse(text)
