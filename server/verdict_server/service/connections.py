"""Connection limits (issue 19 row 11): enough file descriptors, a bound on connections, and no slot held forever.

1,100 TCP connections that sent 16 bytes of the HTTP/2 preface and stopped used to exhaust a soft NOFILE limit of
1,024 and keep every other client out for ~90 s, silently. Now:
- the soft NOFILE limit is raised to the hard one at start (the hard limit is the operator's decision);
- gRPC core accepts at most --max-connections connections (`grpc.max_allowed_incoming_connections`), kept well below
  the file limit so the store, the logs and the listening socket always have descriptors left;
- a connection that has not finished its handshake within --handshake-timeout-s is closed
  (`grpc.server_handshake_timeout_ms`), an idle one after --max-connection-idle-s (`grpc.max_connection_idle_ms`), and
  a client that pings too often is disconnected (`grpc.http2.max_ping_strikes`);
- gRPC core refuses connections past the limit without telling Python, so a watcher counts the process's sockets
  every few seconds and logs a warning while they are at the limit.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time

log = logging.getLogger(__name__)

RESERVED_DESCRIPTORS = 128  # the store, log files, the listening sockets, metrics: never given to connections
WATCH_INTERVAL_S = 5.0
WARN_EVERY_S = 60.0


def raise_file_limit() -> int:
    """Raises the soft NOFILE limit to the hard one; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as err:  # an unlimited hard limit some kernels refuse as the soft one
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, hard, err)
            return soft
        log.info("raised the open-file limit (NOFILE) from %d to %d", soft, hard)
        return hard
    return soft


def connection_limit(requested: int, file_limit: int) -> int:
    """--max-connections, lowered when the file limit cannot hold it plus the reserved descriptors."""
    usable = max(file_limit - RESERVED_DESCRIPTORS, 16)
    if requested > usable:
        log.warning(
            "--max-connections %d lowered to %d: the open-file limit is %d (raise it with ulimit -n / LimitNOFILE)",
            requested,
            usable,
            file_limit,
        )
        return usable
    return requested


def server_options(max_connections: int, handshake_timeout_s: float, idle_s: float) -> list[tuple[str, int]]:
    return [
        ("grpc.max_allowed_incoming_connections", max_connections),
        ("grpc.server_handshake_timeout_ms", int(handshake_timeout_s * 1000)),
        ("grpc.max_connection_idle_ms", int(idle_s * 1000)),
        ("grpc.http2.max_ping_strikes", 2),  # pings more often than min_ping_interval: GOAWAY after 2 strikes
    ]


def open_sockets() -> int:
    """Sockets this process holds (Linux /proc): connections, listeners and the store's none."""
    count = 0
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


class ConnectionWatch:
    """Logs a warning (at most once a minute) while the process's sockets are at the connection limit."""

    def __init__(self, max_connections: int) -> None:
        self._max = max_connections
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verdict-connections", daemon=True)
        self.reached = 0  # how many checks found the limit reached

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        last_warning = None
        while not self._stop.wait(WATCH_INTERVAL_S):
            sockets = open_sockets()
            if sockets < self._max:
                continue
            self.reached += 1
            now = time.monotonic()
            if last_warning is None or now - last_warning >= WARN_EVERY_S:
                last_warning = now
                log.warning(
                    "connection limit reached: %d sockets open, --max-connections %d; new connections are refused "
                    "until some close (half-open ones close after --handshake-timeout-s)",
                    sockets,
                    self._max,
                )
