"""What a running forwarder shows: Prometheus metrics and `/healthz` on --metrics-port.

Routing counters (destinations, skips by reason) and the snapshot gauges are the ones `verdict serve` exports, from
the same `Metrics` class, so one dashboard reads both; the `verdict_forward_*` metrics are the forwarder's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from ..service.metrics import LATENCY_BUCKETS, Metrics

FORWARDED = "forwarded"  # every destination confirmed, source acknowledged
NO_DESTINATION = "no_destination"  # no system selected for it: acknowledged, nothing published
DEAD_LETTERED = "dead_lettered"  # unroutable or undeliverable: published to the dead-letter exchange, acknowledged


class ForwardMetrics(Metrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.messages = Counter(
            "verdict_forward_messages", "Source messages finished, by outcome", ["outcome"], registry=r
        )
        self.publishes = Counter(
            "verdict_forward_publishes",
            "Copies published to destination systems, by result (confirmed, returned, nacked)",
            ["system", "result"],
            registry=r,
        )
        self.retries = Counter("verdict_forward_retries", "Publishes retried after a return or nack", registry=r)
        self.reconnects = Counter("verdict_forward_reconnects", "Broker connections opened after a loss", registry=r)
        self.in_flight = Gauge(
            "verdict_forward_in_flight", "Source messages received and not yet acknowledged", registry=r
        )
        self.consuming = Gauge("verdict_forward_consuming", "1 while connected and consuming", registry=r)
        self.latency = Histogram(
            "verdict_forward_latency_seconds",
            "From receiving a source message to acknowledging it",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def serve_with_health(self, port: int, host: str, healthy: Callable[[], bool]) -> int:
        """/healthz answers 200 while connected and consuming, else 503; every other path is the metrics page."""
        registry = self.registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                if self.path.split("?")[0] == "/healthz":
                    ok = healthy()
                    self._answer(200 if ok else 503, b"ok\n" if ok else b"not consuming\n", "text/plain")
                else:
                    self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:  # scrapes every few seconds must not fill the log
                pass

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="verdict-metrics", daemon=True).start()
        return server.server_address[1]
