"""The dev server's work loop: claim due items from the SQLite queue and process them.

It is the dev driver of the call cycle (``wayline.calls.cycle``): the same flow as the
Lambda dispatcher, with the dev policy (``invoker.dev_policy``). SDK calls run
concurrently as asyncio tasks (parallel steps really run in parallel); state transitions
run on the event loop thread between awaits, so two results of the same run never
interleave inside one load -> decide -> save. The cycles' store steps that are ready in
one loop turn (the starts of the items claimed together, the results that came back
together) commit in one transaction (``turn_batch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..calls.cycle import AsyncTransport, CallCycle, Policy, drive_async
from ..engine.model import WorkItem, WorkKind
from ..engine.ports import Clock
from ..engine.service import Service
from ..turn_batch import TurnBatch
from .invoker import dev_policy

log = logging.getLogger("wayline.worker")

LEASE_MS = 60_000
MAX_IDLE_S = 0.25
CLAIM_BATCH = 64
BLOCKED_RETRY_MS = 100
"""How soon a blocked item is tried again when ``Blocked`` names no time."""


class Worker:
    def __init__(
        self,
        service: Service,
        transport: AsyncTransport,
        clock: Clock,
        *,
        signing_key: str | None = None,
        policy: Policy | None = None,
        max_in_flight: int = 256,
    ) -> None:
        """``transport``: ``invoker.AiohttpTransport`` (real HTTP); ``policy``: the dev
        policy unless a test needs another."""
        self._service = service
        self._transport = transport
        self._cycle = CallCycle(
            service, clock, policy or dev_policy(), signing_key=lambda: signing_key
        )
        self._clock = clock
        self._steps = TurnBatch(service.batch)
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
        """Make the item's SDK call; False if a concurrency limit deferred it or the item
        was acknowledged with the call's result (in one commit)."""
        cycle = self._cycle
        result = await drive_async(
            cycle.flow(item),
            self._transport,
            renew_every_s=cycle.policy.renew_every_s,
            run_step=self._steps.run,  # the store steps of one loop turn: one commit
        )
        if result.blocked is not None:
            # Parked: a release of the slot it waits for wakes it (``Service.release_call``
            # clears the deferral); ``retry_ms`` is only the fallback re-check.
            retry_ms = result.blocked.retry_ms or BLOCKED_RETRY_MS
            self._service.store.queue.defer(item.id, until=self._clock.now_ms() + retry_ms)
            return False
        return not result.acknowledged

    async def stop(self) -> None:
        self._stopping = True
        self.wake()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
