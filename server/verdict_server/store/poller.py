"""ChangePoller: a daemon thread that notices when a store changed (also through another process) and says so.

With a store that pushes its changes (PostgreSQL's LISTEN/NOTIFY) a second thread listens and wakes the poller the
moment a change commits anywhere; the poll at `interval_s` stays as the safety net for anything missed while the
listening connection was down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .errors import StoreUnreachable
from .record import PushesChanges, Store

log = logging.getLogger(__name__)

_UNKNOWN = object()  # the marker before the first poll: nothing has been seen yet
LISTEN_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)  # between attempts to re-establish LISTEN; the last one repeats


class ChangePoller:
    """Every `interval_s` seconds: store.reload(), then compare store.change_marker() with the last one seen and call
    `on_change()` when it moved.

    The first poll always calls `on_change()`: the poller cannot know what its caller loaded before the poller
    existed, so a write made in between must not be missed. `on_change` must therefore be cheap when nothing changed
    (the service's catalog compares the marker itself).

    An exception from the store or from `on_change` is logged and the poll is retried at the next interval (the marker
    is only remembered once `on_change` returned), so a failed reload is not forgotten and the thread never dies.
    """

    def __init__(
        self,
        store: Store,
        on_change: Callable[[], None],
        *,
        interval_s: float = 1.0,
        on_reachable: Callable[[bool], None] | None = None,
    ) -> None:
        """on_reachable(up) is called whenever the store starts or stops answering (and at the first answer)."""
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.store = store
        self.on_change = on_change
        self.interval_s = interval_s
        self.on_reachable = on_reachable
        self._marker: object = _UNKNOWN
        self._poll_lock = threading.Lock()  # poll_once() may also be called by hand while the thread runs
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set by the listener: poll now
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._last_error = ""
        self._reachable: bool | None = None

    def start(self) -> None:
        """Start the polling thread (a no-op if it is already running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stopping,), name="verdict-store-poller", daemon=True
        )
        self._thread.start()
        if isinstance(self.store, PushesChanges):
            self._listener = threading.Thread(
                target=self._listen, args=(self.store, self._stopping), name="verdict-store-listener", daemon=True
            )
            self._listener.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop polling and wait for the thread (a poll in progress finishes first). Safe to call more than once."""
        self._stopping.set()
        self._wake.set()
        for thread in (self._thread, self._listener):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll_once(self) -> bool:
        """Reload the store and call on_change() if its marker moved. Returns True when on_change() ran and returned.

        Never raises: failures are logged (once per distinct message, so a lasting failure does not flood the log).
        """
        with self._poll_lock:
            try:
                self.store.reload()
                marker = self.store.change_marker()
            except Exception as exc:
                self._report(f"cannot poll the store for changes: {exc}", exc)
                return False
            self._set_reachable(True)
            if marker == self._marker:
                self._recovered()
                return False
            try:
                self.on_change()
            except Exception as exc:
                self._report(f"reacting to a store change failed (retrying at the next poll): {exc}", exc)
                return False
            self._marker = marker
            self._recovered()
            return True

    def _run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            self._wake.clear()  # before the poll: a notification arriving during it makes the next wait return
            self.poll_once()
            self._wake.wait(self.interval_s)

    def _listen(self, store: PushesChanges, stopping: threading.Event) -> None:
        """Keeps a LISTEN open, re-establishing it with backoff; each notification (and each new LISTEN, after
        which a full marker check catches up on what was missed) wakes the poller."""
        failures = 0

        def heard(_payload: str) -> None:
            nonlocal failures
            failures = 0
            self._wake.set()

        while not stopping.is_set():
            try:
                store.listen(heard, stopping)
            except Exception as exc:
                self._report(f"lost the store's change notifications (reconnecting): {exc}", exc)
                stopping.wait(LISTEN_BACKOFF_S[min(failures, len(LISTEN_BACKOFF_S) - 1)])
                failures += 1

    def _set_reachable(self, up: bool) -> None:
        if up == self._reachable:
            return
        self._reachable = up
        if self.on_reachable is not None:
            self.on_reachable(up)

    def _report(self, message: str, exc: Exception) -> None:
        if isinstance(exc, StoreUnreachable):
            self._set_reachable(False)
        if message != self._last_error:
            # An unreachable store is an outage to report, not a bug to trace.
            log.error("%s", message, exc_info=None if isinstance(exc, StoreUnreachable) else exc)
            self._last_error = message

    def _recovered(self) -> None:
        if self._last_error:
            log.info("store polling works again")
            self._last_error = ""
