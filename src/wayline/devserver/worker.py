"""The dev server's work loop: claim due items from the SQLite queue and process them.

SDK calls run concurrently as asyncio tasks (parallel steps really run in parallel);
state transitions run on the event loop thread between awaits, so two results of the
same run never interleave inside one load -> decide -> save.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from ..engine.gate import SLOT_TTL_MS
from ..engine.model import WorkItem, WorkKind
from ..engine.ports import Clock
from ..engine.protocol import CallResponse
from ..engine.service import Blocked, PreparedCall, Service

log = logging.getLogger("wayline.worker")

LEASE_MS = 60_000
MAX_IDLE_S = 0.25
CLAIM_BATCH = 64
BLOCKED_RETRY_MS = 100
"""How soon a blocked item is tried again when ``Blocked`` names no time."""


class Invoker(Protocol):
    """Makes an SDK call (``devserver.invoker.HttpInvoker`` over real HTTP)."""

    async def call(self, prepared: PreparedCall) -> CallResponse: ...


class Worker:
    def __init__(
        self, service: Service, invoker: Invoker, clock: Clock, *, max_in_flight: int = 256
    ) -> None:
        self._service = service
        self._invoker = invoker
        self._clock = clock
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    def wake(self) -> None:
        """Thread-safe: new work may be due now."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wakeup.set()
        else:
            loop.call_soon_threadsafe(self._wakeup.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        queue = self._service.store.queue
        while not self._stopping:
            items = queue.claim(now=self._clock.now_ms(), lease_ms=LEASE_MS, limit=CLAIM_BATCH)
            for item in items:
                if item.id in self._in_flight:
                    continue
                self._in_flight.add(item.id)
                task = asyncio.create_task(self._process(item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if len(items) < CLAIM_BATCH:
                await self._idle()

    async def _idle(self) -> None:
        next_due = self._service.store.queue.next_due()
        now = self._clock.now_ms()
        wait_s = MAX_IDLE_S if next_due is None else min(MAX_IDLE_S, max(0, next_due - now) / 1000)
        self._wakeup.clear()
        if wait_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait_s)

    async def _process(self, item: WorkItem) -> None:
        try:
            async with self._slots:
                done = True
                if item.kind is WorkKind.CALL:
                    done = await self._call(item)
                else:
                    self._service.fire(item)
            if done:
                self._service.store.queue.ack(item.id)
        except Exception:
            # Left leased: the item is claimed again when its lease expires.
            log.exception(
                "work item failed",
                extra={
                    "item_id": item.id,
                    "run_id": item.run_id or None,
                    "function_id": item.function_id,
                    "step_id": item.step_id,
                },
            )
        finally:
            self._in_flight.discard(item.id)
            self.wake()

    async def _call(self, item: WorkItem) -> bool:
        """Make the item's SDK call; False if a concurrency limit deferred it."""
        prepared = self._service.prepare_call(item)
        if isinstance(prepared, Blocked):
            # Parked: a release of the slot it waits for wakes it (``Service.release_call``
            # clears the deferral); ``retry_ms`` is only the fallback re-check.
            retry_ms = prepared.retry_ms or BLOCKED_RETRY_MS
            self._service.store.queue.defer(item.id, until=self._clock.now_ms() + retry_ms)
            return False
        if prepared is None:
            return True
        started_at = self._clock.now_ms()
        renew = asyncio.create_task(self._renew_slots(prepared, item)) if prepared.slots else None
        try:
            response = await self._invoker.call(prepared)
        finally:
            if renew:
                renew.cancel()
            self._service.release_call(prepared, item)
        self._service.complete_call(item, response, started_at=started_at)
        return True

    async def _renew_slots(self, prepared: PreparedCall, item: WorkItem) -> None:
        while True:
            await asyncio.sleep(SLOT_TTL_MS / 3000)
            self._service.renew_call(prepared, item)

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
