"""One message as it arrives for routing, from any transport: the Route RPC or the MQ forwarder.

Both build their `Message` here, with the same topic check and the same raw-body reader, so an AMQP message and a
Route call carrying the same topic, tags, key, properties and payload get the same answer from `RouteIndex.route`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .body import parse_json_body
from .route import Message, _no_body

MAX_TOPIC_LENGTH = 1024


class InvalidMessage(ValueError):
    """The message cannot be routed at all; `field` names what is wrong, the text reads '<field>: <problem>'."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def inbound_message(
    topic: str,
    tags: Iterable[str],
    key: str,
    properties: Mapping[str, str],
    body: Callable[[], Any] | None = None,
) -> Message:
    """The router's view of one message (body: its loader, None = no body); raises InvalidMessage for a topic no
    table could ever match."""
    if not topic or len(topic) > MAX_TOPIC_LENGTH or "" in topic.split("."):
        raise InvalidMessage(
            "topic", f"must be 1-{MAX_TOPIC_LENGTH} characters of '.'-separated non-empty words, got {topic!r:.200}"
        )
    return Message(topic=topic, tags=tuple(tags), key=key, properties=dict(properties), body=body or _no_body)


def raw_body(raw: bytes, content_type: str) -> Callable[[], Any]:
    """The body loader of a raw payload: parsed as JSON only if a condition reads `body` (may raise BodyError)."""
    return lambda: parse_json_body(raw, content_type)
