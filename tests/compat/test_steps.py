"""step.run: memoization and reused step ids."""

from __future__ import annotations

import hashlib
from typing import Any

import inngest
import pytest

from .harness import COMPLETED, Compat, Counter, Flavor, Framework, step_by_id, step_named, variants

pytestmark = pytest.mark.compat


@variants
def test_two_steps_are_memoized(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    calls, first_calls, second_calls = Counter(), Counter(), Counter()
    trigger = inngest.TriggerEvent(event="compat/two-steps")

    def first() -> int:
        first_calls.incr()
        return 1

    def second(prev: int) -> dict[str, int]:
        second_calls.incr()
        return {"prev": prev, "value": prev + 1}

    @client.create_function(fn_id="two-steps", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
        calls.incr()
        a = ctx.step.run("first", first)
        b = ctx.step.run("second", second, a)
        return {"a": a, "b": b}

    @client.create_function(fn_id="two-steps", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> dict[str, Any]:
        calls.incr()

        async def first_async() -> int:
            return first()

        async def second_async(prev: int) -> dict[str, int]:
            return second(prev)

        a = await ctx.step.run("first", first_async)
        b = await ctx.step.run("second", second_async, a)
        return {"a": a, "b": b}

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(compat.send("compat/two-steps"), "two-steps", status=COMPLETED)

    assert run["output"] == {"a": 1, "b": {"prev": 1, "value": 2}}
    assert run["function_id"] == compat.function_id("two-steps")
    assert step_named(run, "first")["output"] == 1
    assert step_named(run, "second")["output"] == {"prev": 1, "value": 2}
    # Each step body ran exactly once; the handler was replayed once per step
    # plus the final call that returned the function's output.
    assert first_calls.value == 1
    assert second_calls.value == 1
    assert calls.value == 3


@variants
def test_reused_step_id_gets_index_suffix(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    bodies = Counter()
    trigger = inngest.TriggerEvent(event="compat/loop")

    @client.create_function(fn_id="loop", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> list[int]:
        out: list[int] = []
        for i in range(2):

            def body(i: int = i) -> int:
                bodies.incr()
                return i

            out.append(ctx.step.run("loop", body))
        return out

    @client.create_function(fn_id="loop", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> list[int]:
        out: list[int] = []
        for i in range(2):

            async def body(i: int = i) -> int:
                bodies.incr()
                return i

            out.append(await ctx.step.run("loop", body))
        return out

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(compat.send("compat/loop"), "loop", status=COMPLETED)

    assert run["output"] == [0, 1]
    first = step_by_id(run, hashlib.sha1(b"loop").hexdigest())  # noqa: S324
    second = step_by_id(run, hashlib.sha1(b"loop:1").hexdigest())  # noqa: S324
    assert first["name"] == "loop"
    assert second["name"] == "loop"
    assert first["output"] == 0
    assert second["output"] == 1
    assert bodies.value == 2
