"""The forwarding loop: consume → route → publish to every destination → wait for every confirm → acknowledge.

Built on pika's asynchronous SelectConnection: one thread owns the broker connection (a consuming channel and a
confirm-mode publishing channel) and does all AMQP work; `--workers` threads only compute routes, so a slow QL
condition never stalls the connection. The invariants (docs/forwarding.md):

- A source message is acknowledged only after every copy was confirmed by the broker and none was returned, or after
  its copy to the dead-letter exchange was; anything unacknowledged when a connection is lost is redelivered.
- Messages with the same key are handled one at a time, in the order received: the next one is routed only after
  the previous one was acknowledged, so each destination sees one key's messages in source order, retries included.
- A failed (returned or nacked) copy is published again, to the failed destinations only, after a doubling backoff;
  after --max-attempts rounds the message is dead-lettered with `verdict-error`.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import pika
import pika.exceptions
import pika.spec

from .. import ql
from ..routing import ERROR, Destination, InvalidMessage, RouteOutcome
from ..service.catalog import Catalog, Snapshot
from ..service.decision_log import DecisionLog
from ..service.ids import DecisionIds
from ..service.observe import Observer, ServingObserver
from ..service.shutdown import ExitDeadline, enable_stack_dumps
from ..service.stores import open_serving_store
from ..store import ChangePoller
from . import amqp_fields
from .config import ForwardConfig
from .mapping import (
    MESSAGE_ID_HEADER,
    dead_letter_headers,
    destination_headers,
    message_id,
    route_message,
    routing_key_of,
)
from .observe import DEAD_LETTERED, FORWARDED, NO_DESTINATION, ForwardMetrics
from .pending import Publish, SourceMessage, Unconfirmed

log = logging.getLogger(__name__)
amqp_fields.install()

PERSISTENT = 2
FIRST_RECONNECT_S = 0.2
WORKER_BATCH = 64
RouteResult = tuple[RouteOutcome | None, str]  # the outcome, or why the message cannot be routed


class Forwarder:
    def __init__(
        self,
        config: ForwardConfig,
        catalog: Catalog,
        metrics: ForwardMetrics,
        observer: Observer | None = None,
        announce: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.metrics = metrics
        self._observer = observer or Observer()
        self._announce = announce
        self._ids = DecisionIds()
        self._stopping = False
        self._stop_event = threading.Event()
        self._generation = 0
        self._conn: pika.SelectConnection | None = None
        self._work: queue.SimpleQueue[SourceMessage | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work_loop, name=f"verdict-forward-{n}", daemon=True)
            for n in range(config.workers)
        ]
        self._bound: set[str] = set()
        self._reset_connection_state()

    def _reset_connection_state(self) -> None:
        self._consume_ch = None
        self._publish_ch = None
        self._consumer_tag = ""
        self._consuming = False
        self._draining = False
        self._cancelled = False
        self._closing = False
        self._unconfirmed = Unconfirmed()
        self._busy_keys: dict[str, deque[SourceMessage]] = {}  # key → messages waiting behind the one in flight
        self._in_flight = 0
        self.metrics.in_flight.set(0)
        self.metrics.consuming.set(0)

    # lifecycle (any thread) -----------------------------------------------------------------------------------

    def healthy(self) -> bool:
        return self._consuming and not self._draining

    def request_stop(self) -> None:
        """Stop consuming, finish what is in flight, then return from run(). Safe from a signal handler."""
        self._stopping = True
        self._stop_event.set()
        conn = self._conn
        if conn is not None:
            self._call_soon(conn, self._begin_drain)

    def snapshot_changed(self, _snapshot: Snapshot) -> None:
        conn = self._conn
        if conn is not None and self.config.bind:
            self._call_soon(conn, self._bind_new_topics)

    def run(self) -> int:
        for thread in self._threads:
            thread.start()
        backoff = FIRST_RECONNECT_S
        try:
            while not self._stopping:
                consumed = self._run_connection()
                if self._stopping:
                    break
                backoff = FIRST_RECONNECT_S if consumed else min(backoff * 2, self.config.reconnect_max_s)
                log.warning("not connected to the broker; connecting again in %.1fs", backoff)
                self._stop_event.wait(backoff)
        finally:
            for _ in self._threads:
                self._work.put(None)
        return 0

    def _run_connection(self) -> bool:
        """One broker connection, until it closes. True when it got as far as consuming."""
        self._generation += 1
        self._reset_connection_state()
        parameters = pika.URLParameters(self.config.broker)
        parameters.client_properties = {"connection_name": f"verdict forward {self.config.queue}"}
        conn = pika.SelectConnection(
            parameters,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_error,
            on_close_callback=self._on_connection_closed,
        )
        self._conn = conn
        self._reached_consuming = False
        if self._stopping:  # a stop that came before the connection existed
            self._call_soon(conn, self._begin_drain)
        try:
            conn.ioloop.start()
        finally:
            self._conn = None
            self._consuming = False
            self.metrics.consuming.set(0)
        return self._reached_consuming

    @staticmethod
    def _call_soon(conn: pika.SelectConnection, callback: Callable[[], None]) -> None:
        try:
            conn.ioloop.add_callback_threadsafe(callback)
        except Exception:  # the connection's loop is gone: whatever it carried is redelivered by the broker
            log.debug("connection loop already closed", exc_info=True)

    # connecting (the connection thread from here on) ----------------------------------------------------------

    def _on_connection_open(self, conn: pika.SelectConnection) -> None:
        if self._generation > 1:
            self.metrics.reconnects.inc()
        conn.channel(on_open_callback=self._on_publish_channel)

    def _on_connection_error(self, conn: pika.SelectConnection, err: BaseException) -> None:
        log.warning("cannot connect to the broker at %s: %s", _safe_url(self.config.broker), err or type(err).__name__)
        conn.ioloop.stop()

    def _on_connection_closed(self, conn: pika.SelectConnection, reason: BaseException) -> None:
        self._consuming = False
        if not self._stopping:
            log.warning("broker connection closed: %s", reason)
        conn.ioloop.stop()

    def _on_channel_closed(self, channel, reason: BaseException) -> None:
        if self._closing or self._conn is None:
            return
        log.error("broker closed channel %d: %s; reconnecting", channel.channel_number, reason)
        self._close_connection()

    def _on_publish_channel(self, channel) -> None:
        self._publish_ch = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm)
        config = self.config
        exchanges = [config.target_exchange, config.dead_letter_exchange]
        if config.bind:
            exchanges.append(config.source_exchange)
        self._declare_exchanges(exchanges)

    def _declare_exchanges(self, names: list[str]) -> None:
        if not names:
            self._conn.channel(on_open_callback=self._on_consume_channel)
            return
        self._publish_ch.exchange_declare(
            names[0], exchange_type="topic", durable=True, callback=lambda _frame: self._declare_exchanges(names[1:])
        )

    def _on_consume_channel(self, channel) -> None:
        self._consume_ch = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_cancel_callback(self._on_consumer_cancelled)
        channel.basic_qos(prefetch_count=self.config.prefetch, callback=lambda _frame: self._declare_queue())

    def _declare_queue(self) -> None:
        config = self.config
        if config.bind:
            self._consume_ch.queue_declare(config.queue, durable=True, callback=lambda _f: self._bind_all())
        else:  # passive: a missing queue is an operator error, reported (channel closes with 404) and retried
            self._consume_ch.queue_declare(config.queue, passive=True, callback=lambda _f: self._start_consuming())

    def _bind_all(self) -> None:
        self._bound = set()
        self._bind(sorted(self._wanted_topics()), then=self._start_consuming)

    def _wanted_topics(self) -> set[str]:
        return {table.topic for table in self.catalog.snapshot.route_tables}

    def _bind(self, topics: list[str], then: Callable[[], None] | None = None) -> None:
        if not topics:
            if then is not None:
                then()
            return
        topic = topics[0]
        self._bound.add(topic)
        self._consume_ch.queue_bind(
            self.config.queue,
            self.config.source_exchange,
            routing_key=topic,
            callback=lambda _frame: self._bind(topics[1:], then),
        )

    def _bind_new_topics(self) -> None:
        if self._consuming and self._consume_ch is not None and self._consume_ch.is_open:
            new = sorted(self._wanted_topics() - self._bound)
            if new:
                log.info("binding %s to %s", ", ".join(new), self.config.source_exchange)
                self._bind(new)

    def _start_consuming(self) -> None:
        self._consumer_tag = self._consume_ch.basic_consume(
            self.config.queue, on_message_callback=self._on_message, callback=self._on_consuming
        )

    def _on_consuming(self, _frame) -> None:
        self._consuming = self._reached_consuming = True
        self.metrics.consuming.set(1)
        log.info("consuming %s (prefetch %d, %d workers)", self.config.queue, self.config.prefetch, self.config.workers)
        if self._announce is not None:
            self._announce()
            self._announce = None

    def _on_consumer_cancelled(self, _frame) -> None:
        log.error("the broker cancelled the consumer of %s (queue deleted?); reconnecting", self.config.queue)
        self._close_connection()

    # receiving and routing --------------------------------------------------------------------------------------

    def _on_message(self, _channel, method, properties, body: bytes) -> None:
        message = SourceMessage(
            self._generation, method.delivery_tag, method.routing_key, properties, body, time.monotonic()
        )
        self._in_flight += 1
        self.metrics.in_flight.inc()
        try:
            message.key = routing_key_of(properties.headers, properties.message_id)
        except InvalidMessage as err:
            message.message_id = message_id(message.routing_key, "", body, properties.message_id)
            self._dead_letter(message, str(err))
            return
        message.message_id = message_id(message.routing_key, message.key, body, properties.message_id)
        if message.key:
            waiting = self._busy_keys.get(message.key)
            if waiting is not None:  # an earlier message of this key is in flight: keep source order
                waiting.append(message)
                return
            self._busy_keys[message.key] = deque()
        self._dispatch(message)

    def _dispatch(self, message: SourceMessage) -> None:
        if self._threads:
            self._work.put(message)
        else:
            self._routed(message, self._route(message))

    def _work_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            results = [(message, self._route(message)) for message in batch]
            conn = self._conn  # a batch may straddle a reconnection: _routed drops the messages of a lost one
            if conn is not None:
                # One hand-back per batch, not per message: every wake-up of the connection thread is a GIL
                # switch, and per message they made routing threads slower than routing on the connection thread.
                self._call_soon(conn, lambda done=results: self._routed_many(done))

    def _next_batch(self) -> list[SourceMessage] | None:
        """The next message and whatever else is already waiting (up to WORKER_BATCH); None: stop."""
        first = self._work.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < WORKER_BATCH:
            try:
                message = self._work.get_nowait()
            except queue.Empty:
                break
            if message is None:
                self._work.put(None)  # stop after this batch
                break
            batch.append(message)
        return batch

    def _routed_many(self, results: list[tuple[SourceMessage, RouteResult]]) -> None:
        for message, result in results:
            self._routed(message, result)

    def _route(self, message: SourceMessage) -> RouteResult:
        properties = message.properties
        try:
            routed = route_message(
                message.routing_key, properties.headers, message.key, message.body, properties.content_type
            )
        except InvalidMessage as err:
            return None, str(err)
        outcome = self.catalog.snapshot.route_index.route(routed)
        try:
            self._observer.routed(routed, outcome, self._ids.next())
        except Exception:  # metrics and the decision log must never decide whether a message is forwarded
            log.exception("recording the route of a message failed")
        return outcome, ""

    def _routed(self, message: SourceMessage, result: RouteResult) -> None:
        if message.generation != self._generation:
            return  # its connection is gone; the broker redelivers it
        outcome, problem = result
        if outcome is None:
            self._dead_letter(message, f"cannot route: {problem}")
            return
        errors = [s for s in outcome.skipped if s.reason == ERROR]
        if errors:
            details = "; ".join(f"{s.table}/{s.system}: {s.detail}" for s in errors)
            self._dead_letter(message, f"cannot route: {details}")
            return
        if not outcome.destinations:
            self._finish(message, NO_DESTINATION)
            return
        self._publish_round(message, outcome.destinations)

    # publishing ----------------------------------------------------------------------------------------------

    def _publish_round(self, message: SourceMessage, destinations: tuple[Destination, ...] | list[Destination]) -> None:
        if message.generation != self._generation:
            return
        message.failed = []
        message.outstanding = len(destinations)
        exchange = self.config.target_exchange
        for destination in destinations:
            headers = destination_headers(message.properties.headers, destination, message.message_id)
            self._publish(message, destination, exchange, destination.target, headers)

    def _dead_letter(self, message: SourceMessage, reason: str) -> None:
        log.warning("dead-lettering message %s (routing key %r): %s", message.message_id, message.routing_key, reason)
        message.dead_letter_reason = reason
        self._publish_dead_letter(message)

    def _publish_dead_letter(self, message: SourceMessage) -> None:
        if message.generation != self._generation:
            return
        message.outstanding = 1
        headers = dead_letter_headers(message.properties.headers, message.dead_letter_reason, message.message_id)
        self._publish(message, None, self.config.dead_letter_exchange, message.routing_key, headers)

    def _publish(
        self, message: SourceMessage, destination: Destination | None, exchange: str, routing_key: str, headers: dict
    ) -> None:
        properties = _copy_properties(message.properties, headers)
        try:
            self._publish_ch.basic_publish(exchange, routing_key, message.body, properties, mandatory=True)
        except Exception as err:  # the channel is closing: the source message stays unacknowledged and comes back
            log.warning("cannot publish (%s); reconnecting", err)
            self._close_connection()
            return
        self._unconfirmed.add(Publish(message, destination, exchange, routing_key))

    def _on_return(self, _channel, method, properties, _body: bytes) -> None:
        headers = properties.headers or {}
        why = (
            f"returned by the broker ({method.reply_code} {method.reply_text}): no queue is bound to exchange "
            f"{method.exchange!r} for routing key {method.routing_key!r}"
        )
        if not self._unconfirmed.mark_returned(
            str(headers.get(MESSAGE_ID_HEADER, "")), method.exchange, method.routing_key, why
        ):
            log.warning("a return matched no publish in flight: %s", why)

    def _on_confirm(self, frame) -> None:
        method = frame.method
        acked = isinstance(method, pika.spec.Basic.Ack)
        for publish in self._unconfirmed.confirm(method.delivery_tag, method.multiple):
            failure = publish.returned or ("" if acked else "nacked by the broker")
            self.metrics.child(self.metrics.publishes, publish.system, _result(acked, publish.returned)).inc()
            if publish.destination is None:
                self._dead_letter_settled(publish.message, failure)
            else:
                self._copy_settled(publish, failure)

    def _copy_settled(self, publish: Publish, failure: str) -> None:
        message = publish.message
        if failure:
            message.failed.append(publish.destination)
            message.failures.append(f"{publish.system}: {failure}")
        message.outstanding -= 1
        if message.outstanding:
            return
        if not message.failed:
            self._finish(message, FORWARDED)
            return
        message.attempts += 1
        if message.attempts >= self.config.max_attempts:
            last = "; ".join(message.failures[-len(message.failed) :])
            self._dead_letter(message, f"not delivered after {message.attempts} attempts: {last}")
            return
        failed = list(message.failed)
        self.metrics.retries.inc(len(failed))
        delay = self.config.retry_backoff_s * 2 ** (message.attempts - 1)
        self._later(message, delay, lambda: self._publish_round(message, failed))

    def _dead_letter_settled(self, message: SourceMessage, failure: str) -> None:
        if not failure:
            self._finish(message, DEAD_LETTERED)
            return
        # Losing the message is never an option: it stays unacknowledged (blocking its key) and is tried again.
        message.attempts += 1
        delay = min(self.config.retry_backoff_s * 2 ** min(message.attempts, 16), self.config.reconnect_max_s)
        log.error("cannot dead-letter message %s (%s); trying again in %.1fs", message.message_id, failure, delay)
        self._later(message, delay, lambda: self._publish_dead_letter(message))

    def _later(self, message: SourceMessage, delay: float, callback: Callable[[], None]) -> None:
        generation = message.generation
        self._conn.ioloop.call_later(delay, lambda: callback() if generation == self._generation else None)

    def _finish(self, message: SourceMessage, outcome: str) -> None:
        try:
            self._consume_ch.basic_ack(message.delivery_tag)
        except Exception as err:  # not acknowledged: the broker redelivers it, which at-least-once allows
            log.warning("cannot acknowledge (%s); reconnecting", err)
            self._close_connection()
            return
        self._in_flight -= 1
        metrics = self.metrics
        metrics.in_flight.dec()
        metrics.child(metrics.messages, outcome).inc()
        metrics.child(metrics.latency, outcome).observe(time.monotonic() - message.received)
        if message.key:
            waiting = self._busy_keys[message.key]
            if waiting:
                self._dispatch(waiting.popleft())
            else:
                del self._busy_keys[message.key]
        if self._draining and self._cancelled and not self._in_flight:
            self._close_connection()

    # stopping -----------------------------------------------------------------------------------------------

    def _begin_drain(self) -> None:
        if self._draining or self._conn is None:
            return
        self._draining = True
        log.info("stopping: consuming no more, finishing %d messages in flight", self._in_flight)
        self._conn.ioloop.call_later(self.config.grace_s, self._grace_over)
        channel = self._consume_ch
        if self._consumer_tag and channel is not None and channel.is_open:
            channel.basic_cancel(self._consumer_tag, callback=self._on_cancel_ok)
        else:
            self._close_connection()

    def _on_cancel_ok(self, _frame) -> None:
        self._cancelled = True
        if not self._in_flight:
            self._close_connection()

    def _grace_over(self) -> None:
        if self._in_flight:
            log.warning("grace period over: %d messages go back to the queue unacknowledged", self._in_flight)
        self._close_connection()

    def _close_connection(self) -> None:
        conn = self._conn
        if conn is None or self._closing:
            return
        self._closing = True
        self._consuming = False
        try:
            if conn.is_open or conn.is_opening:
                conn.close()
            else:
                conn.ioloop.stop()
        except Exception:
            log.debug("closing the connection failed", exc_info=True)
            conn.ioloop.stop()


def _result(acked: bool, returned: str) -> str:
    if not acked:
        return "nacked"
    return "returned" if returned else "confirmed"


def _copy_properties(source, headers: dict) -> pika.BasicProperties:
    """The source message's properties on the copy, persistent, with these headers. user_id is left out: the broker
    checks it against the forwarder's own login and would refuse the copy."""
    return pika.BasicProperties(
        content_type=source.content_type,
        content_encoding=source.content_encoding,
        headers=headers,
        delivery_mode=PERSISTENT,
        priority=source.priority,
        correlation_id=source.correlation_id,
        reply_to=source.reply_to,
        expiration=source.expiration,
        message_id=source.message_id,
        timestamp=source.timestamp,
        type=source.type,
        app_id=source.app_id,
    )


def _safe_url(url: str) -> str:
    """The broker URL without its password, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def forward(config: ForwardConfig) -> int:
    """Runs `verdict forward` until SIGTERM or SIGINT; returns the exit code."""
    store = open_serving_store(config.store_url(), seed=config.seed)
    metrics = ForwardMetrics()
    decision_log = (
        DecisionLog(config.decision_log, sample=config.decision_log_sample, masked=config.masked_fields())
        if config.decision_log
        else None
    )
    forwarder: Forwarder | None = None

    def reloaded(snapshot: Snapshot) -> None:
        metrics.snapshot_loaded(snapshot)
        if forwarder is not None:
            forwarder.snapshot_changed(snapshot)

    catalog = Catalog(store, ql.Engine(stdlib=True), on_reload=reloaded)
    catalog.reload(force=True)
    metrics_port = 0
    announce_text = f"verdict: forwarding queue {config.queue} at {_safe_url(config.broker)}"
    forwarder = Forwarder(
        config,
        catalog,
        metrics,
        ServingObserver(metrics, decision_log),
        announce=lambda: print(
            announce_text + (f" (metrics on port {metrics_port})" if metrics_port else ""), flush=True
        ),
    )
    if config.metrics_port is not None:
        metrics_port = metrics.serve_with_health(config.metrics_port, config.host, forwarder.healthy)

    deadlines: list[ExitDeadline] = []

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping (grace %.1fs)", signal.Signals(signum).name, config.grace_s)
        if not deadlines:
            deadlines.append(ExitDeadline(config.grace_s).start())
        forwarder.request_stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    enable_stack_dumps()
    poller = ChangePoller(store, catalog.reload, interval_s=config.poll_interval_s)
    poller.start()
    snapshot = catalog.snapshot
    log.info("routing with %d route tables from %s", len(snapshot.route_tables), config.rules_dir or config.data_dir)
    try:
        return forwarder.run()
    finally:
        poller.stop()
        store.close()
        if decision_log is not None:
            decision_log.close()
        for deadline in deadlines:
            deadline.stopped()
