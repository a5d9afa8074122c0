"""Paused functions: while a function is paused no run of it starts and no call of it is made.

A pause is a small versioned value in the ``Counters`` port (key ``pause:<function id>``),
so it needs no new table on either store, survives a re-sync of the app (which replaces
the function list), and is set and cleared with compare-and-set writes.

What a pause does (the callers enforce it):

* ``FlowGate.admit`` refuses new runs: the event is kept and a Skipped run records the
  reason ``function paused`` (reruns, crons and invokes of the function included).
* ``Service.prepare_call`` returns ``Blocked`` for a call of a live run: the work item
  keeps its place and is offered again every ``PAUSED_RETRY_MS``, so the run continues
  where it stopped once the function is resumed. Sleeps and waits keep running: their
  wake-ups only queue the next call.

Reads are cached per process for ``CACHE_MS`` so a step does not pay for an extra read.
A pause or resume made through this process is seen at once; one made by another process
(the AWS API function, while a dispatcher is warm) takes effect within ``CACHE_MS``.
"""

from __future__ import annotations

from ..errors import StoreError
from .ports import Counters

CACHE_MS = 2_000
PAUSED_RETRY_MS = 5_000
"""How often a paused function's queued call is offered again (the resume latency)."""
PAUSED_REASON = "function paused"
_FOREVER_MS = 100 * 365 * 24 * 3600 * 1000
_MAX_CAS_ATTEMPTS = 20


def pause_key(function_id: str) -> str:
    return f"pause:{function_id}"


class Pauses:
    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._cache: dict[str, tuple[bool, int]] = {}

    def is_paused(self, function_id: str, *, now: int) -> bool:
        cached = self._cache.get(function_id)
        if cached is not None and now - cached[1] < CACHE_MS:
            return cached[0]
        paused = self._counters.get(pause_key(function_id), now=now) is not None
        self._cache[function_id] = (paused, now)
        return paused

    def paused_since(self, function_id: str, *, now: int) -> int | None:
        """When the function was paused (uncached: for views), or None if it is not."""
        found = self._counters.get(pause_key(function_id), now=now)
        if found is None:
            return None
        since = found.value.get("since") if isinstance(found.value, dict) else None
        return since if isinstance(since, int) else now

    def set(self, function_id: str, *, paused: bool, now: int) -> bool:
        """Pause or resume; True if that changed anything (repeating it is a no-op)."""
        key = pause_key(function_id)
        for _ in range(_MAX_CAS_ATTEMPTS):
            current = self._counters.get(key, now=now)
            if (current is not None) == paused:
                self._cache[function_id] = (paused, now)
                return False
            if paused:
                done = self._counters.put(
                    key, {"since": now}, expected_version=0, now=now, ttl_ms=_FOREVER_MS
                )
            else:
                assert current is not None
                done = self._counters.delete(key, expected_version=current.version)
            if done:
                self._cache[function_id] = (paused, now)
                return True
        raise StoreError(f"{key}: gave up after {_MAX_CAS_ATTEMPTS} conflicting writes")
