"""The synced functions, cached per process and invalidated by a sync generation.

Every sync bumps one counter, the store's sync generation; a process keeps the function
list it loaded together with the generation it saw, and looks at the counter again at most
every ``check_every_ms``. So a function synced through one process (the AWS api Lambda, or
another ``Service`` on the same file) is seen by every other warm process within that
interval - a new function starts, a changed trigger or flow-control setting applies, a
removed function gets no new runs - and a process that sees no sync pays one small read
per interval instead of one function read per event and per SDK call.

Costs: the counter is one tiny item (DynamoDB: one eventually consistent GetItem, 0.5
read units, per process per interval); a reload reads the whole function list once.
Races: a reload racing a sync may load the old list with the new generation only if the
list is read before the put and the counter after; ``Service.sync_app`` writes the
functions first and bumps the counter second, and the cache reads the counter first and
the list second, so a loaded list is never older than the generation it is stored with.
"""

from __future__ import annotations

from .model import FunctionDef
from .ports import Clock, Store

SYNC_GENERATION_KEY = "sync-generation"
SYNC_GENERATION_TTL_MS = 10 * 365 * 24 * 3600 * 1000
"""The counter must outlive every deployment: ten years, refreshed by each sync."""
DEFAULT_CHECK_EVERY_MS = 1_000
MAX_BUMP_ATTEMPTS = 20


class FunctionCache:
    def __init__(self, store: Store, clock: Clock, *, check_every_ms: int) -> None:
        self._store = store
        self._clock = clock
        self._check_every_ms = check_every_ms
        self._generation: int | None = None
        self._checked_at: int | None = None
        self._by_id: dict[str, FunctionDef] = {}

    def all(self) -> list[FunctionDef]:
        self._refresh()
        return list(self._by_id.values())

    def get(self, function_id: str) -> FunctionDef | None:
        self._refresh()
        return self._by_id.get(function_id)

    def bump(self) -> None:
        """Record a sync: every process's cache reloads at its next check."""
        counters, now = self._store.counters, self._clock.now_ms()
        for _ in range(MAX_BUMP_ATTEMPTS):
            current = counters.get(SYNC_GENERATION_KEY, now=now)
            version = current.version if current else 0
            if counters.put(
                SYNC_GENERATION_KEY,
                version + 1,
                expected_version=version,
                now=now,
                ttl_ms=SYNC_GENERATION_TTL_MS,
            ):
                break
        self._generation = None  # this process reloads at once

    def _refresh(self) -> None:
        now = self._clock.now_ms()
        if (
            self._generation is not None
            and self._checked_at is not None
            and now - self._checked_at < self._check_every_ms
        ):
            return
        current = self._store.counters.get(SYNC_GENERATION_KEY, now=now)
        generation = current.version if current else 0
        if generation != self._generation:
            functions = self._store.apps.list_functions()
            self._by_id = {fn.id: fn for fn in functions}
            self._generation = generation
        # The check time last: the AWS dispatcher runs a batch's records on threads, and a
        # thread reading meanwhile must see an old check time (and check for itself),
        # never a fresh one beside the old list - it would fail a new function's run as
        # "removed".
        self._checked_at = now
