"""The floor of bench_forward.py: the plainest correct consume → publish → confirm → ack loop, written directly
with pika (the client `verdict forward` uses), on the same broker, prefetch and messages. No routing, no headers
added, one copy per message: whatever `verdict forward` costs beyond this is Verdict's.

    python benchmarks/forward_floor.py --broker URL --queue Q --exchange X --routing-key K --prefetch N
"""

from __future__ import annotations

import argparse
import signal

import pika
import pika.spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--routing-key", required=True)
    parser.add_argument("--prefetch", type=int, default=256)
    args = parser.parse_args()
    pending: dict[int, int] = {}  # publish sequence number → source delivery tag
    state = {"seq": 0}

    def on_confirm(frame) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        if not method.multiple:
            settle(pending.pop(method.delivery_tag, None), acked)
            return
        while pending and next(iter(pending)) <= method.delivery_tag:  # oldest first, like the forwarder
            settle(pending.pop(next(iter(pending))), acked)

    def settle(source_tag: int | None, acked: bool) -> None:
        if source_tag is not None and acked:
            channel.basic_ack(source_tag)

    def on_message(_ch, method, properties, body) -> None:
        channel.basic_publish(args.exchange, args.routing_key, body, properties, mandatory=True)
        state["seq"] += 1
        pending[state["seq"]] = method.delivery_tag

    def on_channel(ch) -> None:
        nonlocal channel
        channel = ch
        ch.confirm_delivery(ack_nack_callback=on_confirm)
        ch.basic_qos(
            prefetch_count=args.prefetch,
            callback=lambda _f: ch.basic_consume(args.queue, on_message_callback=on_message),
        )
        print("floor: consuming", flush=True)

    channel = None
    conn = pika.SelectConnection(
        pika.URLParameters(args.broker), on_open_callback=lambda c: c.channel(on_open_callback=on_channel)
    )
    signal.signal(signal.SIGTERM, lambda *_: conn.ioloop.add_callback_threadsafe(conn.ioloop.stop))
    conn.ioloop.start()


if __name__ == "__main__":
    main()
