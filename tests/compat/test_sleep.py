"""step.sleep and step.sleep_until."""

from __future__ import annotations

import datetime
import time

import inngest
import pytest

from .harness import COMPLETED, Compat, Counter, Flavor, Framework, Recorder, step_named, variants

pytestmark = pytest.mark.compat

SLEEP = datetime.timedelta(seconds=2)
# The wake-up may not come early; allow for timer/clock granularity only.
MIN_GAP = SLEEP.total_seconds() - 0.1


@variants
def test_sleep(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    before_times, after_times = Recorder(), Recorder()
    trigger = inngest.TriggerEvent(event="compat/sleep")

    def before() -> str:
        before_times.append(time.monotonic())
        return "before"

    def after() -> str:
        after_times.append(time.monotonic())
        return "after"

    @client.create_function(fn_id="sleeper", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> str:
        ctx.step.run("before", before)
        ctx.step.sleep("nap", SLEEP)
        ctx.step.run("after", after)
        return "done"

    @client.create_function(fn_id="sleeper", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> str:
        async def before_async() -> str:
            return before()

        async def after_async() -> str:
            return after()

        await ctx.step.run("before", before_async)
        await ctx.step.sleep("nap", SLEEP)
        await ctx.step.run("after", after_async)
        return "done"

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(compat.send("compat/sleep"), "sleeper", status=COMPLETED)

    assert run["output"] == "done"
    assert len(before_times) == 1
    assert len(after_times) == 1
    gap = after_times.items[0] - before_times.items[0]
    assert gap >= MIN_GAP, f"woke up after {gap:.2f}s, slept for {SLEEP}"
    assert step_named(run, "before")["output"] == "before"
    assert step_named(run, "after")["output"] == "after"


@variants
def test_sleep_until(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    calls = Counter()
    target_times, woke_at = Recorder(), Recorder()
    trigger = inngest.TriggerEvent(event="compat/sleep-until")

    def pick_target() -> str:
        # Computed inside a step so every replay sleeps until the same instant.
        target = datetime.datetime.now(datetime.UTC) + SLEEP
        target_times.append(target)
        return target.isoformat()

    def wake() -> str:
        woke_at.append(datetime.datetime.now(datetime.UTC))
        return "awake"

    @client.create_function(fn_id="sleep-until", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> str:
        calls.incr()
        target = ctx.step.run("pick-target", pick_target)
        ctx.step.sleep_until("nap", datetime.datetime.fromisoformat(target))
        return ctx.step.run("wake", wake)

    @client.create_function(fn_id="sleep-until", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> str:
        calls.incr()

        async def pick_target_async() -> str:
            return pick_target()

        async def wake_async() -> str:
            return wake()

        target = await ctx.step.run("pick-target", pick_target_async)
        await ctx.step.sleep_until("nap", datetime.datetime.fromisoformat(target))
        return await ctx.step.run("wake", wake_async)

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(compat.send("compat/sleep-until"), "sleep-until", status=COMPLETED)

    assert run["output"] == "awake"
    assert len(target_times) == 1
    assert len(woke_at) == 1
    early = (target_times.items[0] - woke_at.items[0]).total_seconds()
    assert early <= 0.1, f"woke up {early:.2f}s before the sleep_until target"
    # pick-target, sleep (reported), wake, final return.
    assert calls.value == 4
