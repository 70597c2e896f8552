"""Prometheus metrics: RPCs by method and status, decisions, routes, the compile cache and the snapshot.

With `--processes N` every worker writes its samples to PROMETHEUS_MULTIPROC_DIR (set by the supervisor before any
worker starts) and the supervisor serves the sum on `--metrics-port`; with one process the server serves its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

NO_MATCH = "(default)"  # the matched-rule label of a decision that no rule matched
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    """Every metric of one serving process, registered in its own registry (tests may build several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}  # prometheus keeps every child anyway
        r = self.registry
        self.rpcs = Counter(
            "verdict_rpc_requests", "RPCs handled, by method and status code", ["method", "code"], registry=r
        )
        self.rpc_latency = Histogram(
            "verdict_rpc_latency_seconds",
            "RPC handling time, by method and status code",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decisions = Counter(
            "verdict_decisions",
            "Decisions, by rule set, version and matched rule",
            ["rule_set", "version", "rule"],
            registry=r,
        )
        self.degraded = Counter(
            "verdict_decisions_degraded", "Decisions answered with the default after an error", ["rule_set"], registry=r
        )
        self.destinations = Counter(
            "verdict_route_destinations", "Messages routed to a system", ["table", "system"], registry=r
        )
        self.skips = Counter(
            "verdict_route_skips", "Candidate systems skipped, by reason", ["table", "system", "reason"], registry=r
        )
        self.snapshot_generation = Gauge(
            "verdict_snapshot_generation", "Generation of the serving snapshot", registry=r, multiprocess_mode="max"
        )
        self.documents = Gauge(
            "verdict_documents_loaded",
            "Documents in the serving snapshot, by kind",
            ["kind"],
            registry=r,
            multiprocess_mode="max",
        )
        self.load_errors = Gauge(
            "verdict_document_load_errors",
            "Documents whose newest version does not compile (the previous version keeps serving)",
            registry=r,
            multiprocess_mode="max",
        )
        self.reloads = Counter("verdict_snapshot_reloads", "Snapshot rebuilds", registry=r)
        self.store_up = Gauge(
            "verdict_store_up",
            "1 while the store answers, 0 while it is unreachable (the last loaded snapshot keeps serving)",
            registry=r,
            multiprocess_mode="min",
        )
        self.store_up.set(1)

    def child(self, metric: Any, *labels: str) -> Any:
        """metric.labels(*labels), remembered: prometheus' own lookup takes a lock and costs ~1 µs a call."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children.setdefault(key, metric.labels(*labels))
        return found

    def snapshot_loaded(self, snapshot: Any) -> None:
        """After each catalog reload: the snapshot's generation and what it holds."""
        self.reloads.inc()
        self.snapshot_generation.set(snapshot.generation)
        self.documents.labels("RuleSet").set(len(snapshot.rule_sets))
        self.documents.labels("RouteTable").set(len(snapshot.route_tables))
        self.load_errors.set(len(snapshot.load_errors))

    def watch_compile_cache(self, cache_info: Callable[[], Any]) -> None:
        """Exports the QL compile cache's counters as they are at scrape time (single-process mode only)."""
        self.registry.register(_CompileCacheCollector(cache_info))

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server.server_port


class _CompileCacheCollector(Collector):
    def __init__(self, cache_info: Callable[[], Any]) -> None:
        self._cache_info = cache_info

    def collect(self) -> Iterable[CounterMetricFamily]:
        info = self._cache_info()
        family = CounterMetricFamily(
            "verdict_ql_compile_cache", "QL compile cache lookups, by result", labels=["result"]
        )
        family.add_metric(["hit"], info.get("hits", 0))
        family.add_metric(["miss"], info.get("misses", 0))
        yield family
