"""A freed concurrency slot goes to the head of the queue, not to whichever blocked item's
retry happens to come up first (issue 12, item 9).

Items blocked by a full limit are deferred and retried on their own timers. The run with
priority was blocked 50 ms after the plain one, so when the slot freed its retry was
still 30 ms away and the plain run took the slot: priority (and arrival order) lost to
timer phase. Time here is a manual clock, and the one SDK call in flight is held open
by the test, so the interleaving is exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from wayline.calls.cycle import Reply
from wayline.devserver.worker import BLOCKED_RETRY_MS, Worker

from .test_windows import make

CONFIG = {"concurrency": [{"limit": 1}], "priority": {"run": "event.data.vip ? 300 : 0"}}


class HeldCalls:
    """Answers every SDK call with a finished function, once ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Reply:
        self.started.set()
        await self.release.wait()
        return Reply(200, {}, b'"done"')


async def scenario(tmp_path: Path) -> tuple[str, str, list[str]]:
    gen = make(CONFIG, "sqlite-memory", tmp_path)
    h = next(gen)
    try:
        invoker = HeldCalls()
        worker = Worker(h.service, invoker, h.clock)
        queue = h.store.queue

        def claim_one() -> list[str]:
            items = queue.claim(now=h.clock.now, lease_ms=60_000, limit=10)
            return [i.run_id for i in items]

        h.send("e", who="blocker", vip=False)
        (blocker,) = queue.claim(now=h.clock.now, lease_ms=60_000, limit=10)
        holding = asyncio.create_task(worker._process(blocker))
        await invoker.started.wait()  # the blocker's call holds the only slot

        h.send("e", who="plain", vip=False)
        (plain,) = queue.claim(now=h.clock.now, lease_ms=60_000, limit=10)
        await worker._process(plain)  # blocked: deferred until now + 100 ms
        h.clock.now += 50
        h.send("e", who="vip", vip=True)
        (vip,) = queue.claim(now=h.clock.now, lease_ms=60_000, limit=10)
        await worker._process(vip)  # blocked: deferred until now + 100 ms

        h.clock.now += BLOCKED_RETRY_MS - 30  # the plain run's retry is due, the vip's not
        invoker.release.set()
        await holding  # the blocker finishes and frees the slot
        return vip.run_id, plain.run_id, claim_one()
    finally:
        gen.close()


def test_a_freed_slot_goes_to_the_head_of_the_queue(tmp_path: Path) -> None:
    vip, plain, claimed = asyncio.run(scenario(tmp_path))
    assert claimed[:2] == [vip, plain]
