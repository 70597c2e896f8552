"""A one-line progress indicator on stderr, rewritten in place; no dependency.

    with Progress("Evaluate 64 in flight", total_s=5.0) as bar:
        while ...:
            bar.update(elapsed_s)

On a terminal the line is redrawn with a carriage return; in a log (stderr not a tty) only the finished line is
written, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

WIDTH = 30


class Progress:
    def __init__(self, label: str, total: float, unit: str = "s") -> None:
        self.label = label
        self.total = max(total, 1e-9)
        self.unit = unit
        self.started = time.monotonic()
        self._interactive = sys.stderr.isatty()
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        self.update(0.0)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done()

    def update(self, done: float) -> None:
        now = time.monotonic()
        if not self._interactive or now - self._last_draw < 0.1:
            return
        self._last_draw = now
        sys.stderr.write("\r" + self._line(done) + "\033[K")
        sys.stderr.flush()

    def done(self, note: str = "") -> None:
        elapsed = time.monotonic() - self.started
        line = f"{self.label} ... done in {elapsed:.1f}s{' ' + note if note else ''}"
        sys.stderr.write(("\r" + line + "\033[K\n") if self._interactive else line + "\n")
        sys.stderr.flush()

    def _line(self, done: float) -> str:
        fraction = min(max(done / self.total, 0.0), 1.0)
        filled = int(fraction * WIDTH)
        bar = "#" * filled + "." * (WIDTH - filled)
        return f"{self.label} [{bar}] {done:.1f}/{self.total:.1f}{self.unit}"


def note(text: str) -> None:
    """A plain status line between progress bars."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


@contextmanager
def ticking(label: str, expected_s: float) -> Iterator[Progress]:
    """A progress line that advances with the clock while another process does the work."""
    bar = Progress(label, expected_s)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.2):
            bar.update(time.monotonic() - bar.started)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield bar
    finally:
        stop.set()
        thread.join()
        bar.done()
