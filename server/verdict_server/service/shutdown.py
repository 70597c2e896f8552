"""A stop request always ends the process, and a stuck one says where it is stuck.

A graceful stop waits for in-flight calls (the grace period) and then for every non-daemon thread at interpreter
exit. One thread that never finishes (a handler blocked in a library, a pool worker) would keep the replica alive
after SIGTERM until the orchestrator kills it, with nothing in the log to say why. The deadline below dumps every
thread's stack to stderr and exits once grace plus a margin has passed; `kill -USR1 PID` dumps the stacks of a
running process at any time, without stopping it.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading

log = logging.getLogger("verdict.shutdown")

EXIT_MARGIN_S = 10.0  # beyond the grace period: closing the store, flushing logs, joining threads


def enable_stack_dumps() -> None:
    """SIGUSR1 writes every thread's stack to stderr (faulthandler: works even while the main thread is blocked)."""
    if not hasattr(signal, "SIGUSR1"):
        return
    try:
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True, chain=False)
    except (AttributeError, ValueError, OSError):  # stderr without a file descriptor (captured in a test)
        log.debug("stderr has no file descriptor; SIGUSR1 stack dumps are off")


class ExitDeadline:
    """Started when a stop is requested; if the process is still alive `grace_s + EXIT_MARGIN_S` later, it logs the
    stuck phase, dumps all stacks and exits: 0 when the graceful stop itself had finished (only exit was stuck),
    1 when it had not."""

    def __init__(self, grace_s: float, margin_s: float = EXIT_MARGIN_S) -> None:
        self._limit_s = grace_s + margin_s
        self._stopped = threading.Event()
        self._timer = threading.Timer(self._limit_s, self._expire)
        self._timer.name = "verdict-exit-deadline"
        self._timer.daemon = True  # it must never be the thread that keeps the process alive

    def start(self) -> ExitDeadline:
        self._timer.start()
        return self

    def stopped(self) -> None:
        """The graceful stop finished: what is left is interpreter exit."""
        self._stopped.set()

    def _expire(self) -> None:
        finished = self._stopped.is_set()
        phase = "exit (a thread did not finish)" if finished else "the graceful stop"
        log.error("%s took longer than %.1fs; thread stacks follow, exiting now", phase, self._limit_s)
        for handler in logging.getLogger().handlers:
            handler.flush()
        try:
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass  # no usable stderr: exiting matters more than the dump
        os._exit(0 if finished else 1)


__all__ = ["EXIT_MARGIN_S", "ExitDeadline", "enable_stack_dumps"]
