"""Real time and entropy for every composition root (dev server, Lambda handlers): the only
place that reads the system clock and randomness."""

from __future__ import annotations

import os
import threading
import time


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class OffsetClock:
    """Real time plus an offset that only moves forward (``--test-api`` time travel).

    Tests use it to fire a cron tick or a long timer without waiting for real time.
    """

    def __init__(self, base: SystemClock | None = None) -> None:
        self._base = base or SystemClock()
        self._offset_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._base.now_ms() + self._offset_ms

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset_ms += ms
        return self.now_ms()


class OsEntropy:
    def entropy(self, n: int) -> bytes:
        return os.urandom(n)
