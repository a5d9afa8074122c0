"""group.parallel: SDK-call counts and step order match the official server.

Mirrors inngest-py's parallel_steps, parallel_mode_default and
parallel_mode_race cases: the number of handler invocations (a counter at the
top of the function body) is part of the protocol's observable behaviour.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import inngest
import pytest

from .harness import COMPLETED, Compat, Counter, Flavor, Framework, Recorder, variants

pytestmark = pytest.mark.compat

NEVER = inngest.TriggerEvent(event="compat/never")
SLOW_STEP_SECONDS = 1.5


@variants
def test_parallel_steps(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    calls, step_1a, step_1b, step_after = Counter(), Counter(), Counter(), Counter()
    trigger = inngest.TriggerEvent(event="compat/parallel-steps")

    @client.create_function(fn_id="parallel-child", retries=0, trigger=NEVER)
    def child_sync(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("sleep", datetime.timedelta(seconds=1))
        return "done"

    @client.create_function(fn_id="parallel-child", retries=0, trigger=NEVER)
    async def child_async(ctx: inngest.Context) -> str:
        await ctx.step.sleep("sleep", datetime.timedelta(seconds=1))
        return "done"

    def _1a() -> int:
        step_1a.incr()
        return 1

    def _1b() -> int:
        step_1b.incr()
        return 2

    @client.create_function(fn_id="parallel-steps", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> list[Any]:
        calls.incr()
        outputs = ctx.group.parallel(
            (
                lambda: ctx.step.invoke("invoke", function=child_sync),
                lambda: ctx.step.run("1a", _1a),
                lambda: ctx.step.run("1b", _1b),
                lambda: ctx.step.send_event(
                    "send", events=inngest.Event(name="compat/parallel-noop")
                ),
            )
        )
        ctx.step.run("after", step_after.incr)
        return list(outputs)

    @client.create_function(fn_id="parallel-steps", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> list[Any]:
        calls.incr()

        async def _1a_async() -> int:
            return _1a()

        async def _1b_async() -> int:
            return _1b()

        async def _after_async() -> int:
            return step_after.incr()

        outputs = await ctx.group.parallel(
            (
                lambda: ctx.step.invoke("invoke", function=child_async),
                lambda: ctx.step.run("1a", _1a_async),
                lambda: ctx.step.run("1b", _1b_async),
                lambda: ctx.step.send_event(
                    "send", events=inngest.Event(name="compat/parallel-noop")
                ),
            )
        )
        await ctx.step.run("after", _after_async)
        return list(outputs)

    fns: list[inngest.Function[Any]] = (
        [fn_sync, child_sync] if flavor == "sync" else [fn_async, child_async]
    )
    compat.serve(framework, client, fns)
    run = compat.wait_run(compat.send("compat/parallel-steps"), "parallel-steps", status=COMPLETED)

    output = run["output"]
    assert output[:3] == ["done", 1, 2]
    assert isinstance(output[3], list) and len(output[3]) == 1
    assert step_1a.value == 1
    assert step_1b.value == 1
    assert step_after.value == 1
    # 4 parallel steps + 1 for "after" + 1 for the final return.
    assert calls.value == 6


def _register_two_groups(
    client: inngest.Inngest,
    flavor: Flavor,
    *,
    fn_id: str,
    event: str,
    mode: inngest.ParallelMode,
    calls: Counter,
    order: Recorder,
) -> inngest.Function[Any]:
    trigger = inngest.TriggerEvent(event=event)

    if flavor == "sync":

        @client.create_function(fn_id=fn_id, retries=0, trigger=trigger)
        def fn_sync(ctx: inngest.ContextSync) -> None:
            calls.incr()

            def fast(name: str) -> None:
                order.append(name)

            def slow(name: str) -> None:
                time.sleep(SLOW_STEP_SECONDS)
                order.append(name)

            def fast_group() -> None:
                ctx.step.run("a.1", fast, "a.1")
                ctx.step.run("a.2", fast, "a.2")

            def slow_group() -> None:
                ctx.step.run("b.1", slow, "b.1")
                ctx.step.run("b.2", slow, "b.2")

            ctx.group.parallel((fast_group, slow_group), parallel_mode=mode)

        return fn_sync

    @client.create_function(fn_id=fn_id, retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> None:
        calls.incr()

        async def fast(name: str) -> None:
            order.append(name)

        async def slow(name: str) -> None:
            await asyncio.sleep(SLOW_STEP_SECONDS)
            order.append(name)

        async def fast_group() -> None:
            await ctx.step.run("a.1", fast, "a.1")
            await ctx.step.run("a.2", fast, "a.2")

        async def slow_group() -> None:
            await ctx.step.run("b.1", slow, "b.1")
            await ctx.step.run("b.2", slow, "b.2")

        await ctx.group.parallel((fast_group, slow_group), parallel_mode=mode)

    return fn_async


@variants
def test_parallel_mode_default_waits_for_all(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    calls, order = Counter(), Recorder()
    fn = _register_two_groups(
        client,
        flavor,
        fn_id="parallel-wait",
        event="compat/parallel-wait",
        mode=inngest.ParallelMode.WAIT,
        calls=calls,
        order=order,
    )
    compat.serve(framework, client, [fn])
    compat.wait_run(compat.send("compat/parallel-wait"), "parallel-wait", status=COMPLETED)

    assert order.items == ["a.1", "b.1", "a.2", "b.2"]
    # 2 plans + 4 parallel steps + 1 discovery request after all of them.
    assert calls.value == 7


@variants
def test_parallel_mode_race(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    calls, order = Counter(), Recorder()
    fn = _register_two_groups(
        client,
        flavor,
        fn_id="parallel-race",
        event="compat/parallel-race",
        mode=inngest.ParallelMode.RACE,
        calls=calls,
        order=order,
    )
    compat.serve(framework, client, [fn])
    compat.wait_run(compat.send("compat/parallel-race"), "parallel-race", status=COMPLETED)

    assert order.items == ["a.1", "a.2", "b.1", "b.2"]
    # 1 initial plan + 4 parallel steps + 4 discovery requests (one after each).
    assert calls.value == 9
