"""Wiring one serving process: store → catalog → servicers, health, reflection, metrics, change polling, shutdown."""

from __future__ import annotations

import logging
import signal
import ssl
import threading
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from verdict.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc

from .. import ql
from ..store import ChangePoller, Store, StoreError
from .admin import AdminServicer
from .auth import TokenCheck, load_or_create_token
from .catalog import Catalog, Snapshot
from .config import ServeConfig
from .connections import ConnectionWatch, connection_limit, raise_file_limit, server_options
from .decision import DecisionServicer, adhoc_engine
from .decision_log import DecisionLog
from .interceptors import ServingInterceptor
from .metrics import Metrics
from .observe import ServingObserver
from .queueing import QueueTimingExecutor
from .reflection import enable_reflection
from .seed import seed_examples
from .shutdown import ExitDeadline, enable_stack_dumps
from .stores import open_serving_store

log = logging.getLogger(__name__)

DECISION_SERVICE = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
MIN_STREAMS_PER_CONNECTION = 100
MIN_PENDING_CALLS = 10_000


class VerdictServer:
    """One serving process. start() returns the bound port (port 0 picks a free one); stop() drains calls.

    `shared_port` is set by the pre-fork supervisor: the workers bind the same port with SO_REUSEPORT and the
    supervisor, not a worker, serves the metrics port.
    """

    def __init__(self, config: ServeConfig, *, shared_port: bool = False) -> None:
        self.config = config
        self.shared_port = shared_port
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.metrics = Metrics()
        self.store: Store | None = None
        self.catalog: Catalog | None = None
        self.decision_log: DecisionLog | None = None
        self._server: grpc.Server | None = None
        self._poller: ChangePoller | None = None
        self._connections: ConnectionWatch | None = None
        self.max_connections = 0
        self._store_up = True
        self.port = 0
        self.metrics_port = 0
        self.token_path: Path | None = None

    def start(self) -> int:
        config = self.config
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        self.store = open_serving_store(config.store_url(), seed=config.seed)
        self._created_at_open = getattr(self.store, "created", False)
        max_memory = config.max_run_memory_mb * 1024 * 1024
        engine = ql.Engine(stdlib=True, max_memory_bytes=max_memory)
        self.catalog = Catalog(
            self.store, engine, on_reload=self._reloaded, pinned_cache_bytes=config.pinned_cache_mb * 1024 * 1024
        )
        token, self.token_path = load_or_create_token(config.admin_token_file, config.data_dir)
        if config.decision_log:
            self.decision_log = DecisionLog(
                config.decision_log, sample=config.decision_log_sample, masked=config.masked_fields()
            )
        self.max_connections = connection_limit(config.max_connections, raise_file_limit())
        self._server = self._build_server(engine, token)
        self.port = self._add_port(self._server)
        self._first_load()
        self._server.start()
        self._poller = ChangePoller(
            self.store, self._store_changed, interval_s=config.poll_interval_s, on_reachable=self._store_reachable
        )
        self._poller.start()
        self._connections = ConnectionWatch(self.max_connections)
        self._connections.start()
        if config.metrics_port is not None and not self.shared_port:
            self.metrics.watch_compile_cache(engine.cache_info)
            self.metrics_port = self.metrics.serve(config.metrics_port, config.host)
        if self.catalog.loaded:
            self._now_serving()
        return self.port

    def _first_load(self) -> None:
        """Load everything before serving. A database that does not answer yet is not fatal: health stays
        NOT_SERVING (there is nothing to serve) and the poller keeps trying."""
        try:
            self.catalog.reload(force=True)
        except StoreError as err:
            self._store_up = False
            self.metrics.store_up.set(0)
            log.error("%s; NOT_SERVING until the store answers", err)

    def _store_changed(self) -> None:
        was_loaded = self.catalog.loaded
        self.catalog.reload()
        if not was_loaded and self.catalog.loaded:
            if self.config.seed and not self._created_at_open and getattr(self.store, "created", False):
                seed_examples(self.store)  # the database came up empty after this replica started: a new store
                self.catalog.reload()
            self._now_serving()

    def _store_reachable(self, up: bool) -> None:
        was_up, self._store_up = self._store_up, up
        self.metrics.store_up.set(1 if up else 0)
        if up and not was_up:
            log.info("the store answers again: %s", _store_name(self.store))
        elif not up:
            log.error(
                "the store is unreachable: %s; serving the last loaded snapshot, admin writes fail with UNAVAILABLE",
                _store_name(self.store),
            )

    def _now_serving(self) -> None:
        self._set_health(health_pb2.HealthCheckResponse.SERVING)
        snapshot = self.catalog.snapshot
        log.info(
            "serving on %s:%d: %d rule sets, %d route tables",
            self.config.host,
            self.port,
            len(snapshot.rule_sets),
            len(snapshot.route_tables),
        )

    def _build_server(self, engine: ql.Engine, token: str) -> grpc.Server:
        config = self.config
        pending_calls = max(MIN_PENDING_CALLS, 4 * config.concurrency_limit())
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", 1 if self.shared_port else 0),
            ("grpc.keepalive_time_ms", int(config.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout_s * 1000)),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # Bounds what one connection can have in flight: a client that fires thousands of calls at once waits on
            # its own side of HTTP/2 flow control instead of overflowing the core's pending-request queue, where the
            # excess would be cancelled before --max-concurrent-rpcs could answer RESOURCE_EXHAUSTED.
            ("grpc.max_concurrent_streams", max(MIN_STREAMS_PER_CONNECTION, 2 * config.concurrency_limit())),
            # Calls the core has accepted but the Python layer has not yet picked up. Past gRPC's default (1,000,
            # randomly dropping up to 3,000) the core CANCELs them, which a caller cannot tell from its own
            # cancellation; under this bound every call reaches --max-concurrent-rpcs and is run or refused with
            # RESOURCE_EXHAUSTED. Found by the 10-minute soak with --max-concurrent-rpcs 2500.
            ("grpc.server.max_pending_requests", pending_calls),
            ("grpc.server.max_pending_requests_hard_limit", pending_calls),
            *server_options(self.max_connections, config.handshake_timeout_s, config.max_connection_idle_s),
        ]
        server = grpc.server(
            QueueTimingExecutor(max_workers=config.workers, thread_name_prefix="verdict-rpc"),
            interceptors=[ServingInterceptor(self.metrics, max_queue_s=config.max_queue_ms / 1000)],
            options=options,
            maximum_concurrent_rpcs=config.concurrency_limit(),
        )
        observer = ServingObserver(self.metrics, self.decision_log)
        decision_pb2_grpc.add_DecisionServiceServicer_to_server(
            DecisionServicer(
                self.catalog,
                adhoc_engine(config.max_run_memory_mb * 1024 * 1024),
                allow_adhoc=config.allow_adhoc,
                observer=observer,
                max_batch_ms=config.max_batch_ms,
            ),
            server,
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(self.catalog, TokenCheck(token)), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        enable_reflection((DECISION_SERVICE, ADMIN_SERVICE, HEALTH_SERVICE), server)
        return server

    def _add_port(self, server: grpc.Server) -> int:
        config = self.config
        address = f"{config.host}:{config.port}"
        try:
            if config.tls_cert is not None:
                port = server.add_secure_port(address, _server_credentials(config))
            else:
                port = server.add_insecure_port(address)
        except RuntimeError:  # grpc raises RuntimeError when the address cannot be bound; its text adds nothing
            port = 0
        if port == 0:
            raise SystemExit(
                f"verdict: cannot listen on {address}: the port is in use or the host is not an address of this "
                "machine; choose another with --port N (0 picks a free one) or --host"
            )
        return port

    def _reloaded(self, snapshot: Snapshot) -> None:
        self.metrics.snapshot_loaded(snapshot)

    def _set_health(self, status: int) -> None:
        for service in ("", DECISION_SERVICE, ADMIN_SERVICE):
            self.health.set(service, status)

    def stop(self, grace_s: float | None = None) -> None:
        """Health goes NOT_SERVING first so load balancers stop sending; in-flight calls get the grace period."""
        self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._poller is not None:
            self._poller.stop()
        if self._connections is not None:
            self._connections.stop()
        if self._server is not None:
            self._server.stop(self.config.grace_s if grace_s is None else grace_s).wait()
        if self.store is not None:
            self.store.close()
        if self.decision_log is not None:
            self.decision_log.close()


def _store_name(store: Store | None) -> str:
    return str(getattr(store, "name", None) or getattr(store, "path", None) or "the store")


def _server_credentials(config: ServeConfig) -> grpc.ServerCredentials:
    key = _read_pem(config.tls_key, "--tls-key")
    cert = _read_pem(config.tls_cert, "--tls-cert")
    client_ca = _read_pem(config.tls_client_ca, "--tls-client-ca") if config.tls_client_ca else None
    _check_tls_material(config, cert, client_ca)
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def _check_tls_material(config: ServeConfig, cert: bytes, client_ca: bytes | None) -> None:
    """Names the unusable file at start: gRPC itself only reports a failed bind, whatever is wrong with the PEM."""
    for flag, path, pem in (
        ("--tls-cert", config.tls_cert, cert),
        ("--tls-client-ca", config.tls_client_ca, client_ca),
    ):
        if pem is None:
            continue
        try:
            ssl.create_default_context(cadata=pem.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as err:
            raise SystemExit(f"verdict: {flag} {path} holds no usable PEM certificate ({_ssl_reason(err)})") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(config.tls_cert, config.tls_key)
    except ssl.SSLError as err:
        raise SystemExit(
            f"verdict: --tls-key {config.tls_key} is not a usable private key for --tls-cert {config.tls_cert} "
            f"({_ssl_reason(err)})"
        ) from None


def _ssl_reason(err: Exception) -> str:
    return getattr(err, "reason", None) or str(err) or type(err).__name__


def _read_pem(path: Path | None, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise SystemExit(f"verdict: {flag} {path}: {err.strerror}") from None


def serve(config: ServeConfig, *, shared_port: bool = False, announce: bool = True) -> int:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully. Returns the process exit code."""
    server = VerdictServer(config, shared_port=shared_port)
    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down (grace %.1fs)", signal.Signals(signum).name, config.grace_s)
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    enable_stack_dumps()
    server.start()
    if announce:
        metrics = f", metrics on port {server.metrics_port}" if server.metrics_port else ""
        print(
            f"verdict: serving on {config.host}:{server.port} (admin token: {server.token_path}{metrics})", flush=True
        )
    stopping.wait()
    deadline = ExitDeadline(config.grace_s).start()
    server.stop()
    deadline.stopped()
    log.info("stopped")
    return 0


__all__ = ["ServeConfig", "VerdictServer", "serve"]
