"""The settings of `verdict forward` (flags, VERDICT_* environment or a TOML file, like `verdict serve`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..locations import default_data_dir
from ..service.config import store_url_of


@dataclass
class ForwardConfig:
    broker: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue: str = ""
    store: str | None = None  # a store URL, as for `verdict serve --store`
    data_dir: Path = field(default_factory=default_data_dir)
    rules_dir: Path | None = None
    seed: bool = True
    bind: bool = False
    source_exchange: str = "verdict.in"
    target_exchange: str = "verdict.out"
    dead_letter_exchange: str = "verdict.dlx"
    prefetch: int = 256
    workers: int = 2
    max_attempts: int = 5
    retry_backoff_s: float = 0.2
    reconnect_max_s: float = 10.0
    poll_interval_s: float = 0.25
    grace_s: float = 30.0
    host: str = "127.0.0.1"
    metrics_port: int | None = None
    decision_log: str | None = None
    decision_log_sample: float = 0.01
    decision_log_mask: str = ""

    def store_url(self) -> str:
        return store_url_of(self.store, self.rules_dir, self.data_dir)

    def masked_fields(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.decision_log_mask.split(",") if name.strip())

    def problems(self) -> list[str]:
        found = []
        if not self.queue:
            found.append("--queue is required (the source queue to consume)")
        if not self.broker.startswith(("amqp://", "amqps://")):
            found.append(f"--broker must be an amqp:// or amqps:// URL, got {self.broker!r}")
        if self.prefetch < 1:
            found.append(f"--prefetch must be at least 1, got {self.prefetch}")
        if self.workers < 0:
            found.append(f"--workers must be 0 (route on the connection thread) or more, got {self.workers}")
        if self.max_attempts < 1:
            found.append(f"--max-attempts must be at least 1, got {self.max_attempts}")
        if self.retry_backoff_s < 0 or self.reconnect_max_s <= 0:
            found.append("--retry-backoff-s must not be negative and --reconnect-max-s must be positive")
        if self.poll_interval_s <= 0:
            found.append(f"--poll-interval-s must be positive, got {self.poll_interval_s}")
        if not 0.0 <= self.decision_log_sample <= 1.0:
            found.append(f"--decision-log-sample must be between 0 and 1, got {self.decision_log_sample}")
        for name in ("source_exchange", "target_exchange", "dead_letter_exchange"):
            if not getattr(self, name):
                found.append(f"--{name.replace('_', '-')} must not be empty")
        return found


FORWARD_HELP = {
    "broker": "AMQP URL of the RabbitMQ broker (amqp://user:pass@host:5672/vhost)",
    "queue": "the durable source queue to consume",
    "store": "the store URL: postgresql://..., sqlite:///PATH/verdict.db or dir:///PATH (as for `verdict serve`)",
    "data_dir": "data directory of the embedded SQLite store (the same one `verdict serve --data` uses)",
    "rules_dir": "route with a read-only folder of YAML documents instead (reloaded on change)",
    "seed": "fill a brand-new store from examples/",
    "bind": "declare --queue and bind it to --source-exchange with the topic of every route table",
    "source_exchange": "durable topic exchange the source queue is bound to (with --bind)",
    "target_exchange": "durable topic exchange every destination copy is published to (routing key = target)",
    "dead_letter_exchange": "durable topic exchange for messages that cannot be routed or delivered",
    "prefetch": "unacknowledged source messages in flight (bounds memory)",
    "workers": "routing threads (0 = route on the connection thread); they route in batches while the connection thread does I/O",
    "max_attempts": "publish attempts per destination before the message is dead-lettered",
    "retry_backoff_s": "delay before the first retry of a failed publish; doubled each attempt",
    "reconnect_max_s": "longest wait between reconnection attempts (backoff doubles up to it)",
    "poll_interval_s": "seconds between checks of the store for route-table and selection changes",
    "grace_s": "seconds in-flight messages get to finish on SIGTERM/SIGINT",
    "host": "address the metrics port listens on",
    "metrics_port": "serve Prometheus metrics and /healthz on this port (0 = any free port; absent = off)",
    "decision_log": "append one JSON line per sampled routing decision to this file ('-' = stdout)",
    "decision_log_sample": "fraction of messages written to the decision log (0..1)",
    "decision_log_mask": "comma-separated property names whose values the decision log masks",
}
