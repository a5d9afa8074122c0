"""step.run: each body runs once and is memoized; a step id reused in a loop gets ``:1``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

import wayline
from compat.harness import Compat, Tally, step_by_id, step_named

from .support import (
    Dev,
    Flavor,
    Framework,
    Functions,
    build_web_app,
    flavors,
    key_of,
    serve,
    trigger,
)

tally = Tally()


def first(key: str) -> int:
    tally.incr(f"{key}:first")
    return 1


def second(key: str, prev: int) -> dict[str, int]:
    tally.incr(f"{key}:second")
    return {"prev": prev, "value": prev + 1}


def loop_body(key: str, i: int) -> int:
    tally.incr(f"{key}:loop")
    return i * 10


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="two-steps-async", trigger=trigger("two-steps", "async"), retries=0)
    async def two_steps_async(ctx: wayline.Context) -> dict[str, Any]:
        key = key_of(ctx)
        tally.incr(f"{key}:calls")
        a = await ctx.step.run("first", first, key)
        b = await ctx.step.run("second", second, key, a)
        return {"a": a, "b": b}

    @client.function(id="two-steps-sync", trigger=trigger("two-steps", "sync"), retries=0)
    def two_steps_sync(ctx: wayline.SyncContext) -> dict[str, Any]:
        key = key_of(ctx)
        tally.incr(f"{key}:calls")
        a = ctx.step.run("first", first, key)
        b = ctx.step.run("second", second, key, a)
        return {"a": a, "b": b}

    @client.function(id="loop-async", trigger=trigger("loop", "async"), retries=0)
    async def loop_async(ctx: wayline.Context) -> list[int]:
        key = key_of(ctx)
        return [await ctx.step.run("loop", loop_body, key, i) for i in range(3)]

    @client.function(id="loop-sync", trigger=trigger("loop", "sync"), retries=0)
    def loop_sync(ctx: wayline.SyncContext) -> list[int]:
        key = key_of(ctx)
        return [ctx.step.run("loop", loop_body, key, i) for i in range(3)]

    return [two_steps_async, two_steps_sync, loop_async, loop_sync]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(framework, build, tmp_path_factory, app_id="steps") as running:
        yield running


@flavors
def test_two_steps_are_memoized(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("two-steps", flavor)
    run = dev.wait(started)

    assert run["output"] == {"a": 1, "b": {"prev": 1, "value": 2}}
    assert run["function_id"] == dev.compat.function_id(started.fn_id)
    assert step_named(run, "first")["output"] == 1
    assert step_named(run, "second")["output"] == {"prev": 1, "value": 2}
    assert [(s["name"], s["op"], s["status"]) for s in run["steps"]] == [
        ("first", "StepRun", "Completed"),
        ("second", "StepRun", "Completed"),
    ]
    # Each body ran once; checkpointed, both steps and the return take one call.
    assert tally.count(f"{started.key}:first") == 1
    assert tally.count(f"{started.key}:second") == 1
    assert tally.count(f"{started.key}:calls") == 1


@flavors
def test_reused_step_id_gets_an_index_suffix(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("loop", flavor)
    run = dev.wait(started)

    assert run["output"] == [0, 10, 20]
    for index, step_id in enumerate(("loop", "loop:1", "loop:2")):
        step = step_by_id(run, hashlib.sha1(step_id.encode()).hexdigest())  # noqa: S324
        assert step["name"] == "loop"
        assert step["output"] == index * 10
    assert len(run["steps"]) == 3
    assert tally.count(f"{started.key}:loop") == 3


def test_django_sync_view(compat: Compat) -> None:
    """With only ``def`` functions, ``wayline.django.serve`` mounts a plain sync view (the
    module's Django app, serving both flavours, has an async one)."""
    client = wayline.Wayline(app_id="steps-sync-view", is_dev=True, base_url=compat.server_url)
    sync_only = [fn for fn in build(client) if not fn.is_async]
    web_app, ids = build_web_app("django", client, sync_only)
    compat.serve_app(web_app, app_id="steps-sync-view", function_ids=ids)
    dev = Dev(compat, "django", client)
    try:
        two = dev.start("two-steps", "sync")
        loop = dev.start("loop", "sync")
        assert dev.wait(two)["output"] == {"a": 1, "b": {"prev": 1, "value": 2}}
        assert dev.wait(loop)["output"] == [0, 10, 20]
        assert tally.count(f"{two.key}:calls") == 1  # checkpointed
        assert tally.count(f"{loop.key}:loop") == 3
    finally:
        client.close()
