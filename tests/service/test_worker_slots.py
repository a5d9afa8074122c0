"""Items blocked by a full concurrency limit wait for a slot without polling (issue 11):
each is parked under the full key, and the release of a slot wakes the oldest parked item
(priority first, then arrival), on the dev worker's path through the real service and
SQLite queue. A long re-check (``BLOCKED_RECHECK_MS``) is only the fallback for a lost
wake. Time is a manual clock; SDK calls are held open by the test, so the interleaving is
exact and the number of ``prepare_call`` attempts is independent of the time spent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from wayline.calls.cycle import Reply
from wayline.devserver.worker import Worker
from wayline.engine.gateway import Outbound
from wayline.engine.model import RunStatus, WorkItem
from wayline.engine.service import BLOCKED_RECHECK_MS, Blocked, PreparedCall, Service

from .test_windows import Entropy, Harness, make

CONFIG = {"concurrency": [{"limit": 1}], "priority": {"run": "event.data.vip ? 300 : 0"}}


SDK = {"x-inngest-sdk": "py:v0.5.0"}
"""A 200 is a finished function only if it says it came from an SDK."""


class Calls:
    """A transport for the dev worker that never sees a gateway op."""

    async def fetch(self, request: Outbound) -> Reply:
        raise AssertionError("these functions make no gateway requests")


class HeldCalls(Calls):
    """Answers every SDK call with a finished function, once ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Reply:
        self.started.set()
        await self.release.wait()
        return Reply(200, SDK, b'"done"')


class QuickCalls(Calls):
    """Answers every SDK call after the event loop has run everything else once."""

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Reply:
        for _ in range(3):
            await asyncio.sleep(0)
        return Reply(200, SDK, b'"done"')


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    yield from make(CONFIG, "sqlite-memory", tmp_path)


def claim_ids(h: Harness) -> list[str]:
    return [i.run_id for i in h.store.queue.claim(now=h.clock.now, lease_ms=60_000, limit=10)]


async def freed_slot_scenario(h: Harness) -> tuple[str, str, list[str]]:
    invoker = HeldCalls()
    worker = Worker(h.service, invoker, h.clock)
    queue = h.store.queue
    h.send("e", who="blocker", vip=False)
    (blocker,) = queue.claim(now=h.clock.now, lease_ms=60_000, limit=10)
    holding = asyncio.create_task(worker._process(blocker))
    await invoker.started.wait()  # the blocker's call holds the only slot

    h.send("e", who="plain", vip=False)
    (plain,) = queue.claim(now=h.clock.now, lease_ms=60_000, limit=10)
    await worker._process(plain)  # blocked: parked
    h.clock.now += 50
    h.send("e", who="vip", vip=True)
    (vip,) = queue.claim(now=h.clock.now, lease_ms=60_000, limit=10)
    await worker._process(vip)  # blocked: parked

    h.clock.now += 10_000  # nothing polls meanwhile: both wait for the slot
    assert claim_ids(h) == []
    invoker.release.set()
    await holding  # the blocker finishes, frees the slot, and wakes one parked item
    return vip.run_id, plain.run_id, claim_ids(h)


def test_a_freed_slot_wakes_the_head_of_the_queue_only(h: Harness) -> None:
    vip, _plain, claimed = asyncio.run(freed_slot_scenario(h))
    assert claimed == [vip]  # priority first; the plain run stays parked, not polling


def count_attempts(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []
    prepare = h.service.prepare_call

    def counted(item: WorkItem) -> PreparedCall | Blocked | None:
        attempts.append(item.id)
        return prepare(item)

    monkeypatch.setattr(h.service, "prepare_call", counted)
    return attempts


async def drain(h: Harness, worker: Worker, *, runs: int, step_ms: int) -> None:
    """Run the worker, moving the clock ``step_ms`` whenever it is idle, until ``runs``
    runs have finished."""
    loop = asyncio.create_task(worker.run())
    try:
        for _ in range(2_000):
            done = h.store.runs.list_runs(function_id="app-fn", limit=100)
            if sum(r.status is RunStatus.COMPLETED for r in done) == runs:
                return
            await asyncio.sleep(0.002)
            h.clock.now += step_ms
        raise AssertionError("runs were stranded")
    finally:
        await worker.stop()
        loop.cancel()


def send_runs(h: Harness, n: int) -> None:
    for i in range(n):
        h.send("e", n=i, vip=False)


def test_twenty_runs_on_one_slot_cost_about_two_attempts_each(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = count_attempts(h, monkeypatch)
    send_runs(h, 20)
    # The clock moves 1 s per idle tick: under the old 100 ms (dev) / 2 s (AWS) retry
    # every blocked item was tried again on every tick while it waited.
    asyncio.run(drain(h, Worker(h.service, QuickCalls(), h.clock), runs=20, step_ms=1_000))
    # Each run: one attempt when it arrives (blocked, parked) and one when woken.
    assert 20 <= len(attempts) <= 2 * 20


class LostWakes:
    """The queue's ``wake`` is lost (a crash between the release and the wake)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def wake(self, items: Any) -> None:
        self.lost += len(items)


def test_no_run_is_stranded_when_every_wake_is_lost(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = LostWakes(h.store.queue)
    service = Service(replace(h.store, queue=lost), h.clock, Entropy())
    lossy = Harness(service, service.store, h.clock, [])
    attempts = count_attempts(lossy, monkeypatch)
    send_runs(lossy, 5)
    worker = Worker(service, QuickCalls(), h.clock)
    asyncio.run(drain(lossy, worker, runs=5, step_ms=BLOCKED_RECHECK_MS // 4))
    assert lost.lost >= 4  # every finished call's wake was lost; the fallback re-check ran
    assert len(attempts) >= 5 + 4
