"""Calls wait for a worker thread instead of being refused, and are shed only when they have waited too long.

gRPC's own `maximum_concurrent_rpcs` refuses a call the moment the limit is reached: with the old default of 64,
64 callers in flight (an ordinary service) already saw RESOURCE_EXHAUSTED and a load balancer would eject the
replica. Now the limit is high (a guard against unbounded memory), calls queue in the executor for a free thread,
and a call that waited longer than `--max-queue-ms` for one is answered RESOURCE_EXHAUSTED (reason OVERLOADED,
with RetryInfo) before it runs: that is the sign of real overload, where running it would only make every later
call later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

_local = threading.local()


class QueueTimingExecutor(ThreadPoolExecutor):
    """A thread pool that remembers, for the call a worker runs, when it was submitted."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        queued_at = time.monotonic()

        def timed() -> Any:
            _local.queued_at = queued_at
            return fn(*args, **kwargs)

        return super().submit(timed)


def queued_seconds() -> float:
    """How long the call running on this thread waited for it (0 outside a QueueTimingExecutor)."""
    queued_at = getattr(_local, "queued_at", None)
    return 0.0 if queued_at is None else time.monotonic() - queued_at
