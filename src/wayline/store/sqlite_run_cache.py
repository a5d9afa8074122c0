"""Runs kept in memory by the SQLite run store, so a call does not decode its run again.

Every SDK call loads its run twice (to build the request, then to apply the response);
decoding the body and every memo each time made a call's cost grow with the run. The
cache holds the run as this process last committed or read it, keyed by run id, with the
stored row's ``(version, outbox)``. A load still reads those two columns (one indexed
row), and serves the cached run only if they match, so another process (or another
store object) writing the same file is always seen: a version is written exactly once by
a conditional save, and an outbox acknowledgement flips the flag. Entries are put only
after their writes are committed (``Database.after_commit``), never from a transaction
that may still roll back.

Runs are immutable by convention (the engine derives new runs with ``replace``), so one
object may be handed to several callers. Bounded: the least recently used run goes first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from wayline.engine.model import Run

DEFAULT_SIZE = 2048


class RunCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, Run] = OrderedDict()

    def get(self, run_id: str, *, version: int, outbox: bool) -> Run | None:
        """The cached run if it is the stored one (same version, same outbox state)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.version != version or bool(run.outbox) != outbox:
                return None
            self._runs.move_to_end(run_id)
            return run

    def latest(self, run_id: str) -> Run | None:
        """The run as this process last saw it committed (not checked against the file)."""
        with self._lock:
            return self._runs.get(run_id)

    def put(self, run: Run) -> None:
        with self._lock:
            current = self._runs.get(run.id)
            if current is not None and current.version > run.version:
                return  # a slower reader must not replace a newer committed save
            self._runs[run.id] = run
            self._runs.move_to_end(run.id)
            while len(self._runs) > self._size:
                self._runs.popitem(last=False)

    def drop(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)
