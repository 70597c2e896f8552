"""The settings of `verdict serve`. Kept free of gRPC and prometheus imports so the CLI can read them (and set up
multiprocess metrics) before anything that must not exist before a fork is created."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..locations import default_data_dir
from ..store.url import StoreUrlError, dir_url, parse_store_url, sqlite_url

DB_FILE_NAME = "verdict.db"


DEFAULT_CONCURRENCY_LIMIT = 2048  # a memory guard, far above what one process serves: the queue bound sheds first


def store_url_of(store: str | None, rules_dir: Path | None, data_dir: Path) -> str:
    """The store a process serves: --store, else --rules-dir as a dir:// URL, else the SQLite file in --data."""
    if store:
        return store
    if rules_dir is not None:
        return dir_url(rules_dir)
    return sqlite_url(data_dir / DB_FILE_NAME)


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: Path = field(default_factory=default_data_dir)
    rules_dir: Path | None = None
    store: str | None = None  # a store URL (postgresql://, sqlite:///, dir:///); default: DATA_DIR/verdict.db
    admin_token_file: Path | None = None
    workers: int = 16
    # Calls accepted at once (running or waiting for a worker); beyond it new ones get RESOURCE_EXHAUSTED at once.
    max_concurrent_rpcs: int | None = None  # None = max(2048, 4 × workers)
    max_queue_ms: float = 1000.0  # a call that waited longer than this for a worker is shed (RESOURCE_EXHAUSTED)
    max_message_bytes: int = 4 * 1024 * 1024
    keepalive_time_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    allow_adhoc: bool = False
    poll_interval_s: float = 1.0
    grace_s: float = 10.0
    seed: bool = True
    processes: int = 1
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    metrics_port: int | None = None
    decision_log: str | None = None  # a file path, or "-" for stdout
    decision_log_sample: float = 1.0
    decision_log_mask: str = ""  # comma-separated fact names whose values are masked in the log
    max_run_memory_mb: int = 256  # caps any rule set's memory_mb (docs/reliability.md)
    max_batch_ms: int = 10_000  # one EvaluateBatch stops at the caller's deadline or after this long
    pinned_cache_mb: int = 256  # compiled old versions (Evaluate with a version) kept, by estimated size
    max_connections: int = 2000  # lowered to fit the open-file limit (service/connections.py)
    handshake_timeout_s: float = 5.0
    max_connection_idle_s: float = 600.0

    def store_url(self) -> str:
        return store_url_of(self.store, self.rules_dir, self.data_dir)

    def concurrency_limit(self) -> int:
        return self.max_concurrent_rpcs or max(DEFAULT_CONCURRENCY_LIMIT, 4 * self.workers)

    def masked_fields(self) -> frozenset[str]:
        return frozenset(name.strip() for name in self.decision_log_mask.split(",") if name.strip())

    def problems(self) -> list[str]:
        """Settings that cannot work together; checked before anything starts."""
        found = []
        if (self.tls_cert is None) != (self.tls_key is None):
            found.append("--tls-cert and --tls-key must be given together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            found.append("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        if self.processes < 1:
            found.append(f"--processes must be at least 1, got {self.processes}")
        if self.workers < 1:
            found.append(f"--workers must be at least 1, got {self.workers}")
        if not 0.0 <= self.decision_log_sample <= 1.0:
            found.append(f"--decision-log-sample must be between 0 and 1, got {self.decision_log_sample}")
        if self.max_queue_ms <= 0:
            found.append(f"--max-queue-ms must be positive, got {self.max_queue_ms}")
        for name in ("max_run_memory_mb", "max_batch_ms", "pinned_cache_mb", "max_connections"):
            if getattr(self, name) < 1:
                found.append(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("handshake_timeout_s", "max_connection_idle_s"):
            if getattr(self, name) <= 0:
                found.append(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.poll_interval_s <= 0:
            found.append(f"--poll-interval-s must be positive, got {self.poll_interval_s}")
        if self.store and self.rules_dir is not None:
            found.append("--store and --rules-dir name two stores; give one (--rules-dir DIR is --store dir://DIR)")
        if self.store:
            try:
                parse_store_url(self.store)
            except StoreUrlError as err:
                found.append(f"--store: {err}")
        if self.processes > 1 and self.port == 0:
            found.append("--processes > 1 needs a fixed --port (the workers share it with SO_REUSEPORT)")
        return found
