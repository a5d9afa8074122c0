"""The flow-control gate: admission of new runs and concurrency slots for SDK calls.

Like ``service``, it reaches storage only through ports; the decisions themselves are the
pure functions of ``engine/flow``. Every counter update is a compare-and-set retried on a
lost race, and every slot or lock is a lease that expires, so a crashed worker neither
double-admits nor leaks capacity.

Admission order: a paused function (skip), rate limit (skip), idempotency (skip),
singleton (skip, or cancel the holder), throttle (delay). A run skipped by a later check
has still used its rate-limit token: rate limits count attempts, as on Inngest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import StoreError
from . import expr
from .flow import gcra
from .flow.config import IDEMPOTENCY_PERIOD_MS, FlowConfig, Rate, clamp_priority, flow_config
from .flow.keys import concurrency_key, fn_key
from .model import JSON, FunctionDef, Run, WorkItem
from .pause import PAUSED_REASON, Pauses
from .ports import Store

SLOT_TTL_MS = 60_000
"""A call's concurrency slot lapses this long after its last renewal (a dead worker)."""
SINGLETON_TTL_MS = 366 * 24 * 3600 * 1000
"""Singleton locks last as long as a run may; a finished holder is released or ignored."""
MAX_CAS_ATTEMPTS = 50

Slots = tuple[tuple[str, int], ...]
"""The concurrency slots one call holds: (key, limit) pairs."""


@dataclass(frozen=True, slots=True)
class Admission:
    first_call_at: int = 0
    """When the run's first call is due: throttle delay, minus its priority."""
    skip_reason: str | None = None
    replaces: tuple[str, ...] = ()
    """Runs to cancel first (singleton ``cancel`` mode)."""


class FlowGate:
    def __init__(self, store: Store, *, is_live: Callable[[str], bool]) -> None:
        self._store = store
        self._is_live = is_live
        self.pauses = Pauses(store.counters)

    # ------------------------------------------------------------------ admission

    def admit(
        self, fn: FunctionDef, event: Mapping[str, JSON], *, run_id: str, now: int
    ) -> Admission:
        if self.pauses.is_paused(fn.id, now=now):
            return Admission(skip_reason=PAUSED_REASON)
        flow = flow_config(fn)
        if flow.rate_limit and not self._rate_limit(fn, flow.rate_limit, event, now):
            return Admission(
                skip_reason=f"rateLimit: more than {flow.rate_limit.limit} "
                f"per {flow.rate_limit.period_ms} ms"
            )
        if flow.idempotency and not self._idempotent(fn, flow.idempotency, event, now):
            return Admission(
                skip_reason="idempotency: a run with this key started in the last 24 h"
            )
        replaces: tuple[str, ...] = ()
        if flow.singleton:
            holders = self._singleton(fn, flow, event, run_id, now)
            if holders and flow.singleton.mode == "skip":
                return Admission(skip_reason=f"singleton: run {holders[0]} is running")
            replaces = tuple(holders)
        start_at = self._throttle(fn, flow.throttle, event, now) if flow.throttle else now
        return Admission(
            first_call_at=start_at - self._priority_ms(flow, event, now), replaces=replaces
        )

    def take_singleton(
        self, fn: FunctionDef, event: Mapping[str, JSON], *, run_id: str, now: int
    ) -> None:
        """After the replaced runs were cancelled, the new run takes the lock."""
        flow = flow_config(fn)
        if flow.singleton:
            key = fn_key("singleton", fn.id, flow.singleton.key, event, now_ms=now)
            self._store.leases.acquire(key, run_id, limit=1, now=now, ttl_ms=SINGLETON_TTL_MS)

    def release_singleton(self, fn: FunctionDef, run: Run, *, now: int) -> None:
        flow = flow_config(fn)
        if flow.singleton and run.events:
            key = fn_key("singleton", fn.id, flow.singleton.key, run.events[0], now_ms=now)
            self._store.leases.release(key, run.id)

    def _rate_limit(self, fn: FunctionDef, rate: Rate, event: Mapping[str, JSON], now: int) -> bool:
        key = fn_key("ratelimit", fn.id, rate.key, event, now_ms=now)
        return (
            self._gcra(
                key, lambda tat: gcra.rate_limit(tat, now=now, rate=rate), now, rate.period_ms
            )
            is not None
        )

    def _throttle(self, fn: FunctionDef, rate: Rate, event: Mapping[str, JSON], now: int) -> int:
        key = fn_key("throttle", fn.id, rate.key, event, now_ms=now)
        start = self._gcra(
            key, lambda tat: gcra.throttle(tat, now=now, rate=rate), now, rate.period_ms
        )
        return now if start is None else start

    def _gcra(
        self, key: str, decide: Callable[[int | None], gcra.Admission], now: int, period_ms: int
    ) -> int | None:
        """Compare-and-set loop over the key's TAT; returns the start time, or None."""
        counters = self._store.counters
        for _ in range(MAX_CAS_ATTEMPTS):
            current = counters.get(key, now=now)
            tat = current.value.get("tat") if current and isinstance(current.value, dict) else None
            decision = decide(tat if isinstance(tat, int) else None)
            if decision.start_at is None:
                return None
            version = current.version if current else 0
            ttl = max(decision.tat - now, 0) + period_ms  # after that the state is moot
            if counters.put(
                key, {"tat": decision.tat}, expected_version=version, now=now, ttl_ms=ttl
            ):
                return decision.start_at
        raise StoreError(f"flow key {key}: gave up after {MAX_CAS_ATTEMPTS} conflicting writes")

    def _idempotent(
        self, fn: FunctionDef, expression: str, event: Mapping[str, JSON], now: int
    ) -> bool:
        key = fn_key("idempotency", fn.id, expression, event, now_ms=now)
        return self._store.idempotency.claim(key, now=now, ttl_ms=IDEMPOTENCY_PERIOD_MS)

    def _singleton(
        self, fn: FunctionDef, flow: FlowConfig, event: Mapping[str, JSON], run_id: str, now: int
    ) -> list[str]:
        """Take the lock for ``run_id``, or return the live runs holding it."""
        assert flow.singleton is not None
        key = fn_key("singleton", fn.id, flow.singleton.key, event, now_ms=now)
        leases = self._store.leases
        for _ in range(MAX_CAS_ATTEMPTS):
            if leases.acquire(key, run_id, limit=1, now=now, ttl_ms=SINGLETON_TTL_MS):
                return []
            holders = leases.holders(key, now=now)
            live = [h for h in holders if self._is_live(h)]
            if live:
                return live
            for stale in holders:  # finished runs whose release was lost in a crash
                leases.release(key, stale)
        raise StoreError(f"singleton {key}: gave up after {MAX_CAS_ATTEMPTS} attempts")

    @staticmethod
    def _priority_ms(flow: FlowConfig, event: Mapping[str, JSON], now: int) -> int:
        if not flow.priority:
            return 0
        try:
            seconds = expr.evaluate(flow.priority, event=event, now_ms=now)
        except expr.ExpressionEvalError:
            return 0
        return clamp_priority(seconds) * 1000

    # ------------------------------------------------------------------ call slots

    def acquire_slots(self, fn: FunctionDef, run: Run, holder: str, *, now: int) -> Slots | None:
        """Take a slot under every concurrency limit, or none (None) if one is full."""
        taken = self._acquire(fn, run, holder, now=now)
        return taken if isinstance(taken, tuple) else None

    def acquire_or_park(
        self, fn: FunctionDef, run: Run, item: WorkItem, *, now: int
    ) -> Slots | None:
        """Take ``item``'s slots, or park it under the full key (None): the release of a
        slot of that key wakes the oldest parked item (``release_and_wake``)."""
        taken = self._acquire(fn, run, item.id, now=now)
        if isinstance(taken, tuple):
            return taken
        parked = self._store.parked
        parked.park(taken, item)
        # A release between the failed acquire and the park found nobody to wake: one more
        # try closes that window (a release after the park sees the entry).
        again = self._acquire(fn, run, item.id, now=now)
        if isinstance(again, tuple):
            parked.unpark(taken, item)
            return again
        if again != taken:
            parked.park(again, item)  # another of its limits is the full one now
        return None

    def _acquire(self, fn: FunctionDef, run: Run, holder: str, *, now: int) -> Slots | str:
        """Every slot, or the first full key (nothing held)."""
        flow = flow_config(fn)
        taken: list[tuple[str, int]] = []
        for limit in flow.concurrency:
            key = concurrency_key(limit, fn.id, run.events[0] if run.events else {}, now_ms=now)
            if not self._store.leases.acquire(
                key, holder, limit=limit.limit, now=now, ttl_ms=SLOT_TTL_MS
            ):
                self.release_slots(taken, holder)
                return key
            taken.append((key, limit.limit))
        return tuple(taken)

    def renew_slots(self, slots: Slots, holder: str, *, now: int) -> None:
        """Keep a long call's slots: re-acquiring renews; the limit still applies if the
        lease had lapsed meanwhile."""
        for key, limit in slots:
            self._store.leases.acquire(key, holder, limit=limit, now=now, ttl_ms=SLOT_TTL_MS)

    def release_slots(self, slots: Sequence[tuple[str, int]], holder: str) -> None:
        for key, _ in slots:
            self._store.leases.release(key, holder)

    def release_and_wake(self, slots: Slots, item: WorkItem) -> list[WorkItem]:
        """Give ``item``'s slots back; the oldest item parked under each key, to wake."""
        woken: list[WorkItem] = []
        for key, _ in slots:
            self._store.leases.release(key, item.id)
            waiting = self._store.parked.take_oldest(key, dropping=item)
            if waiting is not None:
                woken.append(waiting)
        return woken
