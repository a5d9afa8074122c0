"""Items blocked by a concurrency limit wait for a slot without polling, on the AWS
topology (issue 11): a blocked item is parked in the table under its full key and re-sent
with only a long fallback delay; the release of a slot sends the oldest parked item again
at once. Before, every blocked item was re-sent every 2 s for as long as it waited.

Two dispatch containers: one (a thread) holds the only slot in a call the app keeps open;
the other receives the 19 other items meanwhile, and virtual time passes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import fastapi
import pytest

import wayline
import wayline.fastapi
from compat.harness import UvicornAppServer
from wayline import signing
from wayline.aws.eventbridge import EventBus
from wayline.engine.model import RunStatus, WorkItem
from wayline.engine.service import BLOCKED_RECHECK_MS, Blocked, PreparedCall

from .conftest import Stack, VirtualClock
from .driver import SIGNING_KEY, Driver, make_runtime

BEARER = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}
RUNS = 20


@pytest.fixture
def app() -> Iterator[tuple[str, threading.Event]]:
    """One function with concurrency 1; a run with ``hold`` keeps its call open until the
    returned event is set."""
    held = threading.Event()
    client = wayline.Wayline(app_id="one", signing_key=SIGNING_KEY, base_url="http://127.0.0.1:9")

    @client.function(
        id="one",
        trigger=wayline.TriggerEvent(event="t/one"),
        retries=0,
        concurrency=[wayline.Concurrency(limit=1)],
    )
    async def one(ctx: wayline.Context) -> str:
        if ctx.event.data.get("hold"):
            assert await asyncio.to_thread(held.wait, 30)
        return "done"

    web = fastapi.FastAPI()
    wayline.fastapi.serve(web, client, [one])
    with ExitStack() as stack:
        stack.callback(client.close)
        server = UvicornAppServer(web)
        stack.callback(server.stop)
        yield f"http://127.0.0.1:{server.port}/api/inngest", held


def count_attempts(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    attempts: list[str] = []
    service = driver.runtime.service
    prepare = service.prepare_call

    def counted(item: WorkItem) -> PreparedCall | Blocked | None:
        attempts.append(item.id)
        return prepare(item)

    monkeypatch.setattr(service, "prepare_call", counted)
    return attempts


def send(stack: Stack, *data: dict[str, Any]) -> None:
    bus = EventBus(bus_name=stack.bus, client=stack.events)
    for chunk in range(0, len(data), 10):
        results = bus.publish([{"name": "t/one", "data": d} for d in data[chunk : chunk + 10]])
        assert all(r.ok for r in results)


def completed(driver: Driver) -> int:
    runs = driver.runtime.store.runs.list_runs(function_id="one-one", limit=100)
    return sum(r.status is RunStatus.COMPLETED for r in runs)


def test_twenty_runs_on_one_slot_are_woken_not_polled(
    stack: Stack,
    clock: VirtualClock,
    app: tuple[str, threading.Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, held = app
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    assert driver.api("PUT", "/v1/apps/sync", {"url": url}, BEARER)[0] == 200
    attempts = count_attempts(driver, monkeypatch)
    send(stack, {"hold": True})
    while driver.poll("ingest"):
        pass
    holder = threading.Thread(target=driver.poll, args=("dispatch",))  # a second container
    holder.start()
    while not attempts:  # the held run has its slot
        holder.join(0.01)

    send(stack, *({"n": i} for i in range(RUNS - 1)))
    for _ in range(4):  # 40 s pass while the slot is held: nothing polls (the clock is
        driver.step()  # real time plus offset: the margin to the 60 s re-check is for a
        clock.advance(10_000)  # slow machine, and for the slot lease, renewed in real time
    assert len(attempts) == RUNS  # one attempt each: the blocked ones were parked
    held.set()
    holder.join(30)
    assert not holder.is_alive()

    driver.settle()  # each release wakes the next parked item, at once
    assert completed(driver) == RUNS
    assert len(attempts) == 2 * RUNS - 1

    # The fallback re-checks sent when each item was blocked find their runs finished.
    clock.advance(BLOCKED_RECHECK_MS)
    driver.settle()
    assert len(attempts) <= 3 * RUNS
    assert completed(driver) == RUNS


def test_no_run_is_stranded_when_the_wakes_are_lost(
    stack: Stack,
    clock: VirtualClock,
    app: tuple[str, threading.Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container that dies between its release and the wake loses the wake: the 60 s
    fallback re-check (the copy sent when the item was blocked) still runs every item."""
    url, held = app
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    assert driver.api("PUT", "/v1/apps/sync", {"url": url}, BEARER)[0] == 200
    lost: list[WorkItem] = []
    monkeypatch.setattr(driver.runtime.queue, "wake", lost.extend)
    attempts = count_attempts(driver, monkeypatch)
    send(stack, {"hold": True})
    while driver.poll("ingest"):
        pass
    holder = threading.Thread(target=driver.poll, args=("dispatch",))
    holder.start()
    while not attempts and holder.is_alive():  # the held run has its slot
        holder.join(0.01)
    send(stack, *({"n": i} for i in range(4)))
    driver.step()  # all four are blocked and parked
    held.set()
    holder.join(30)
    driver.settle()
    assert completed(driver) == 1 and len(lost) == 1  # the wake went nowhere
    assert len(attempts) == 5  # nothing polls meanwhile
    # The fallback re-checks come back. A batch's records run concurrently, so in each
    # round one of them wins the slot and the others are parked again (with a new
    # re-check): with every wake lost, the four finish within four rounds, never stranded.
    rounds = 0
    while completed(driver) < 5 and rounds < 4:
        clock.advance(BLOCKED_RECHECK_MS)
        driver.settle()
        rounds += 1
    assert completed(driver) == 5
