"""Cancelling a run with DELETE /v1/runs/{id}: while sleeping, and mid SDK call."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import inngest
import pytest

from .harness import (
    CANCELLED,
    RUNNING,
    Compat,
    Counter,
    Framework,
    JSONDict,
    Recorder,
    frameworks,
    step_named,
    steps_named,
    wait_until,
)

pytestmark = pytest.mark.compat

CANCELLED_EVENT = "inngest/function.cancelled"
LONG_SLEEP = datetime.timedelta(seconds=30)
SLOW_STEP_S = 1.5
# How long a wrongly resumed run would take to show it (a wake-up takes ~0.1 s).
SETTLE_S = 0.75


def _cancelled_events(compat: Compat, run_id: str) -> list[JSONDict]:
    return [e for e in compat.list_events(CANCELLED_EVENT) if e["data"].get("run_id") == run_id]


def _sleeping_run(compat: Compat, event_id: str, fn_id: str, step: str) -> JSONDict:
    """Wait until the run of ``event_id`` has recorded the sleep ``step``."""
    found: list[JSONDict] = []

    def sleeping() -> bool:
        run = compat.current_run(event_id, fn_id)
        if run is None or not steps_named(run, step):
            return False
        found.append(run)
        return True

    wait_until(sleeping, timeout=10.0, message=f"run never reported the sleep {step!r}")
    return found[-1]


@frameworks
def test_cancel_sleeping_run(compat: Compat, framework: Framework) -> None:
    client = compat.client()
    before_calls, after_calls = Counter(), Counter()
    trigger = inngest.TriggerEvent(event="compat/cancel.sleep")

    def before() -> str:
        before_calls.incr()
        return "before"

    def after() -> str:
        after_calls.incr()
        return "after"

    @client.create_function(fn_id="sleepy", retries=0, trigger=trigger)
    def fn(ctx: inngest.ContextSync) -> str:
        ctx.step.run("before", before)
        ctx.step.sleep("nap", LONG_SLEEP)
        ctx.step.run("after", after)
        return "done"

    compat.serve(framework, client, [fn])
    event_id = compat.send("compat/cancel.sleep", {"x": 1})
    sleeping = _sleeping_run(compat, event_id, "sleepy", "nap")
    run_id = str(sleeping["run_id"])
    assert sleeping["status"] == RUNNING
    assert step_named(sleeping, "before")["output"] == "before"

    cancelled_at = time.monotonic()
    summary = compat.cancel_run(run_id)
    assert summary["run_id"] == run_id
    assert summary["status"] == CANCELLED
    run = compat.wait_run_by_id(run_id, status=CANCELLED, timeout=3.0)
    assert time.monotonic() - cancelled_at < 3.0
    assert run["output"] is None
    assert run["ended_at"] is not None

    wait_until(
        lambda: len(_cancelled_events(compat, run_id)) >= 1,
        timeout=5.0,
        message=lambda: f"no {CANCELLED_EVENT} for {run_id}: {compat.list_events(CANCELLED_EVENT)}",
    )
    (event,) = _cancelled_events(compat, run_id)
    assert event["data"]["function_id"] == compat.function_id("sleepy")
    assert event["data"]["event"]["name"] == "compat/cancel.sleep"
    assert event["data"]["event"]["data"] == {"x": 1}

    # Cancelling again is not an error and changes nothing.
    again = compat.cancel_run(run_id)
    assert again["status"] == CANCELLED

    # Had the sleep survived the cancel, moving the clock past it would wake it.
    compat.advance_clock(int(LONG_SLEEP.total_seconds() * 1000) + 5_000)
    time.sleep(SETTLE_S)
    final = compat.get_run(run_id)
    assert final["status"] == CANCELLED
    assert final["ended_at"] == run["ended_at"]
    assert steps_named(final, "after") == []
    assert before_calls.value == 1
    assert after_calls.value == 0
    assert len(_cancelled_events(compat, run_id)) == 1


@frameworks
def test_cancel_during_an_sdk_call(compat: Compat, framework: Framework) -> None:
    """FastAPI runs the async flavour, Flask the sync one; both block in a slow step."""
    client = compat.client()
    handler_calls, after_calls = Counter(), Counter()
    slow_started, slow_finished = Recorder(), Recorder()
    trigger = inngest.TriggerEvent(event="compat/cancel.inflight")

    def after() -> str:
        after_calls.incr()
        return "after"

    @client.create_function(fn_id="inflight", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> str:
        handler_calls.incr()

        def slow() -> str:
            slow_started.append(ctx.run_id)
            time.sleep(SLOW_STEP_S)
            slow_finished.append(ctx.run_id)
            return "slow"

        ctx.step.run("slow", slow)
        ctx.step.run("after", after)
        return "done"

    @client.create_function(fn_id="inflight", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> str:
        handler_calls.incr()

        async def slow() -> str:
            slow_started.append(ctx.run_id)
            await asyncio.sleep(SLOW_STEP_S)
            slow_finished.append(ctx.run_id)
            return "slow"

        async def after_async() -> str:
            return after()

        await ctx.step.run("slow", slow)
        await ctx.step.run("after", after_async)
        return "done"

    fn: inngest.Function[Any] = fn_async if framework == "fastapi" else fn_sync
    compat.serve(framework, client, [fn])
    event_id = compat.send("compat/cancel.inflight")
    wait_until(lambda: len(slow_started) >= 1, timeout=10.0, message="slow step never started")
    run_id = str(slow_started.items[0])
    assert not slow_finished.items, "the slow step finished before the test could cancel"

    summary = compat.cancel_run(run_id)
    assert summary["status"] == CANCELLED
    run = compat.wait_run(event_id, "inflight", status=CANCELLED, timeout=3.0)
    assert run["run_id"] == run_id

    # The SDK's answer arrives after the cancel and must not revive the run.
    wait_until(
        lambda: len(slow_finished) >= 1,
        timeout=SLOW_STEP_S + 5.0,
        message="slow step never finished",
    )
    time.sleep(SETTLE_S)
    final = compat.get_run(run_id)
    assert final["status"] == CANCELLED
    assert final["output"] is None
    assert final["ended_at"] == run["ended_at"]
    assert steps_named(final, "after") == []
    assert after_calls.value == 0
    assert handler_calls.value == 1
    assert len(slow_started) == 1
    assert len(_cancelled_events(compat, run_id)) == 1
