"""group.parallel in WAIT and RACE mode: step order and SDK-call counts of the official SDK.

Two branches of two steps each: ``a.*`` are fast, ``b.*`` are slow. In WAIT mode the group
moves in lockstep (``a.1 b.1`` then ``a.2 b.2``; 2 plans + 4 steps + 1 discovery = 7 calls);
in RACE mode each branch moves on by itself (``a.1 a.2 b.1 b.2``; 1 plan + 4 steps + 4
discoveries = 9 calls), as tests/compat/test_parallel.py asserts for the official SDK.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import wayline
from compat.harness import Tally, step_named

from .support import Dev, Flavor, Framework, Functions, flavors, key_of, serve, trigger

SLOW_STEP_SECONDS = 0.8
tally = Tally()


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="two-groups-async", trigger=trigger("two-groups", "async"), retries=0)
    async def two_groups_async(ctx: wayline.Context) -> list[str]:
        key = key_of(ctx)
        tally.incr(f"{key}:calls")

        async def fast(name: str) -> str:
            tally.note(f"{key}:order", name)
            return name

        async def slow(name: str) -> str:
            await asyncio.sleep(SLOW_STEP_SECONDS)
            tally.note(f"{key}:order", name)
            return name

        async def fast_group() -> str:
            return await ctx.step.run("a.1", fast, "a.1") + await ctx.step.run("a.2", fast, "a.2")

        async def slow_group() -> str:
            return await ctx.step.run("b.1", slow, "b.1") + await ctx.step.run("b.2", slow, "b.2")

        return list(await ctx.group.parallel([fast_group, slow_group], mode=ctx.event.data["mode"]))

    @client.function(id="two-groups-sync", trigger=trigger("two-groups", "sync"), retries=0)
    def two_groups_sync(ctx: wayline.SyncContext) -> list[str]:
        key = key_of(ctx)
        tally.incr(f"{key}:calls")

        def fast(name: str) -> str:
            tally.note(f"{key}:order", name)
            return name

        def slow(name: str) -> str:
            time.sleep(SLOW_STEP_SECONDS)
            tally.note(f"{key}:order", name)
            return name

        def fast_group() -> str:
            return ctx.step.run("a.1", fast, "a.1") + ctx.step.run("a.2", fast, "a.2")

        def slow_group() -> str:
            return ctx.step.run("b.1", slow, "b.1") + ctx.step.run("b.2", slow, "b.2")

        return list(ctx.group.parallel([fast_group, slow_group], mode=ctx.event.data["mode"]))

    return [two_groups_async, two_groups_sync]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(framework, build, tmp_path_factory, app_id="parallel") as running:
        yield running


@flavors
def test_wait_mode(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("two-groups", flavor, mode="wait")
    run = dev.wait(started)

    assert run["output"] == ["a.1a.2", "b.1b.2"]
    assert tally.notes(f"{started.key}:order") == ["a.1", "b.1", "a.2", "b.2"]
    assert tally.count(f"{started.key}:calls") == 7
    assert sorted(s["name"] for s in run["steps"]) == ["a.1", "a.2", "b.1", "b.2"]
    assert step_named(run, "b.2")["output"] == "b.2"


@flavors
def test_race_mode(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("two-groups", flavor, mode="race")
    run = dev.wait(started)

    assert run["output"] == ["a.1a.2", "b.1b.2"]
    assert tally.notes(f"{started.key}:order") == ["a.1", "a.2", "b.1", "b.2"]
    assert tally.count(f"{started.key}:calls") == 9
    assert [s["status"] for s in run["steps"]] == ["Completed"] * 4
