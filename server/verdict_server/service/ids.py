"""Decision ids: unique across processes and restarts, and cheap enough for every answer.

A uuid4 per call costs ~2 µs; a random per-process prefix plus a counter costs ~0.2 µs and is just as unique in
practice (48 random bits per process start).
"""

from __future__ import annotations

import itertools
import os
import secrets


class DecisionIds:
    def __init__(self) -> None:
        self._prefix = f"{secrets.token_hex(6)}-{os.getpid():x}"
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"
