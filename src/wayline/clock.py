"""Real time and entropy for every composition root (dev server, Lambda handlers): the only
place that reads the system clock and randomness."""

from __future__ import annotations

import os
import threading
import time
import weakref


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


ENTROPY_BUFFER_BYTES = 4096


class OsEntropy:
    """``os.urandom`` read a page at a time: a run takes a few bytes a dozen times (ids,
    retry jitter), and one system call each was ~2 % of the dev server's CPU in the W2
    bench. The bytes are the same kernel CSPRNG's; each is handed out once. A forked
    child starts with an empty buffer, so parent and child never share bytes."""

    def __init__(self) -> None:
        self._buffer = b""
        self._used = 0
        self._lock = threading.Lock()
        _instances.add(self)

    def entropy(self, n: int) -> bytes:
        if n > ENTROPY_BUFFER_BYTES:
            return os.urandom(n)
        with self._lock:
            start = self._used
            if start + n > len(self._buffer):
                self._buffer, start = os.urandom(ENTROPY_BUFFER_BYTES), 0
            self._used = start + n
            return self._buffer[start : start + n]

    def _forget(self) -> None:
        self._buffer, self._used = b"", 0
        self._lock = threading.Lock()


_instances: weakref.WeakSet[OsEntropy] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for source in list(_instances):
        source._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
