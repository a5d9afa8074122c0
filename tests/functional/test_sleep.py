"""step.sleep and step.sleep_until: the run resumes after the wanted time, not before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import wayline
from compat.harness import step_named

from .support import Dev, Flavor, Framework, Functions, flavors, serve, trigger

SLEEP_SECONDS = 1.0


def now() -> float:
    return time.time()


def wake_time(ctx: wayline.Context | wayline.SyncContext) -> datetime:
    return datetime.fromtimestamp(float(ctx.event.data["until"]), UTC)


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="sleep-async", trigger=trigger("sleep", "async"), retries=0)
    async def sleep_async(ctx: wayline.Context) -> dict[str, float]:
        before = await ctx.step.run("before", now)
        await ctx.step.sleep("nap", timedelta(seconds=SLEEP_SECONDS))
        after = await ctx.step.run("after", now)
        return {"before": before, "after": after}

    @client.function(id="sleep-sync", trigger=trigger("sleep", "sync"), retries=0)
    def sleep_sync(ctx: wayline.SyncContext) -> dict[str, float]:
        before = ctx.step.run("before", now)
        ctx.step.sleep("nap", "1s")
        after = ctx.step.run("after", now)
        return {"before": before, "after": after}

    @client.function(id="sleep-until-async", trigger=trigger("sleep-until", "async"), retries=0)
    async def sleep_until_async(ctx: wayline.Context) -> float:
        await ctx.step.sleep_until("alarm", wake_time(ctx))
        return await ctx.step.run("woke", now)

    @client.function(id="sleep-until-sync", trigger=trigger("sleep-until", "sync"), retries=0)
    def sleep_until_sync(ctx: wayline.SyncContext) -> float:
        # The string form: an ISO-8601 time.
        ctx.step.sleep_until("alarm", wake_time(ctx).isoformat())
        return ctx.step.run("woke", now)

    return [sleep_async, sleep_sync, sleep_until_async, sleep_until_sync]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(framework, build, tmp_path_factory, app_id="sleep") as running:
        yield running


@flavors
def test_sleep(dev: Dev, flavor: Flavor) -> None:
    run = dev.wait(dev.start("sleep", flavor))

    slept = run["output"]["after"] - run["output"]["before"]
    assert SLEEP_SECONDS - 0.05 <= slept < SLEEP_SECONDS + 5
    nap = step_named(run, "nap")
    assert (nap["op"], nap["status"]) == ("Sleep", "Completed")
    assert [s["name"] for s in run["steps"]] == ["before", "nap", "after"]


@flavors
def test_sleep_until(dev: Dev, flavor: Flavor) -> None:
    until = time.time() + 1.5
    run = dev.wait(dev.start("sleep-until", flavor, until=until))

    assert until - 0.05 <= run["output"] < until + 5
    alarm = step_named(run, "alarm")
    assert (alarm["op"], alarm["status"]) == ("Sleep", "Completed")
