"""The book-keeping of messages between receiving and acknowledging them: one SourceMessage per delivery, one
Publish per copy sent, matched to the broker's confirms (by publish sequence number) and returns (by idempotency
key, exchange and routing key: the broker sends a return before the confirm of the same publish)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..routing import Destination


@dataclass(eq=False)
class SourceMessage:
    generation: int  # the broker connection it arrived on; its delivery tag means nothing on another one
    delivery_tag: int
    routing_key: str
    properties: Any  # pika.BasicProperties
    body: bytes
    received: float
    key: str = ""
    message_id: str = ""
    attempts: int = 0  # publish rounds finished with a failure
    outstanding: int = 0  # publishes of the current round not yet confirmed
    failed: list[Destination] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    dead_letter_reason: str = ""


@dataclass(eq=False)
class Publish:
    message: SourceMessage
    destination: Destination | None  # None: the copy sent to the dead-letter exchange
    exchange: str
    routing_key: str
    returned: str = ""  # why the broker returned it (mandatory and no queue bound), if it did

    @property
    def system(self) -> str:
        return self.destination.system if self.destination is not None else "(dead-letter)"


class Unconfirmed:
    """Publishes the broker has not confirmed yet, in publish order."""

    def __init__(self) -> None:
        self._by_seq: dict[int, Publish] = {}
        self._returnable: dict[tuple[str, str, str], deque[Publish]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._by_seq)

    def add(self, publish: Publish) -> None:
        self._seq += 1  # the broker numbers a confirm-mode channel's publishes 1, 2, 3, ...
        self._by_seq[self._seq] = publish
        self._returnable.setdefault(_return_key(publish), deque()).append(publish)

    def mark_returned(self, message_id: str, exchange: str, routing_key: str, why: str) -> bool:
        for publish in self._returnable.get((message_id, exchange, routing_key), ()):
            if not publish.returned:
                publish.returned = why
                return True
        return False

    def confirm(self, seq: int, multiple: bool) -> list[Publish]:
        """The publishes a confirm (ack or nack) of `seq` settles, oldest first."""
        settled = []
        if multiple:
            by_seq = self._by_seq
            while by_seq:
                first = next(iter(by_seq))
                if first > seq:
                    break
                settled.append(by_seq.pop(first))
        else:
            publish = self._by_seq.pop(seq, None)
            if publish is not None:
                settled.append(publish)
        for publish in settled:
            self._forget_returnable(publish)
        return settled

    def _forget_returnable(self, publish: Publish) -> None:
        key = _return_key(publish)
        waiting = self._returnable[key]
        if waiting[0] is publish:
            waiting.popleft()
        else:
            waiting.remove(publish)
        if not waiting:
            del self._returnable[key]


def _return_key(publish: Publish) -> tuple[str, str, str]:
    return publish.message.message_id, publish.exchange, publish.routing_key
