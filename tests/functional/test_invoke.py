"""step.invoke: the child's result, the child's failure, and the invoke timeout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import wayline
from compat.harness import FAILED, Tally, step_named, wait_until

from .support import Dev, Flavor, Framework, Functions, flavors, key_of, serve, trigger

NEVER = wayline.TriggerEvent(event="fn/never")
TIMEOUT_MESSAGE = "Timed out waiting for invoked function to complete"
TIMEOUT_ERROR = "InngestInvokeTimeoutError"
tally = Tally()


def caught(key: str, err: wayline.StepError) -> None:
    tally.note(f"{key}:raised", {"name": err.name, "message": err.message})


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="child", trigger=NEVER, retries=0)
    def child(ctx: wayline.SyncContext) -> dict[str, Any]:
        key = key_of(ctx)
        tally.incr(f"{key}:child")
        return {"double": int(ctx.event.data["n"]) * 2, "key": key}

    @client.function(id="broken-child", trigger=NEVER, retries=2)
    async def broken_child(ctx: wayline.Context) -> None:
        tally.incr(f"{key_of(ctx)}:child")
        raise wayline.NonRetriableError("child broke")

    @client.function(id="slow-child", trigger=NEVER, retries=0)
    async def slow_child(ctx: wayline.Context) -> str:
        tally.incr(f"{key_of(ctx)}:child")
        await ctx.step.sleep("long-nap", "60s")
        return "too late"

    children: dict[str, wayline.Function[Any, Any]] = {
        "ok": child,
        "fail": broken_child,
        "timeout": slow_child,
    }

    @client.function(id="parent-async", trigger=trigger("parent", "async"), retries=0)
    async def parent_async(ctx: wayline.Context) -> Any:
        key = key_of(ctx)
        try:
            return await ctx.step.invoke(
                "call-child",
                function=children[ctx.event.data["child"]],
                data={"key": key, "n": 21},
                timeout=timedelta(seconds=float(ctx.event.data["timeout"])),
            )
        except wayline.StepError as err:
            caught(key, err)
            raise

    @client.function(id="parent-sync", trigger=trigger("parent", "sync"), retries=0)
    def parent_sync(ctx: wayline.SyncContext) -> Any:
        key = key_of(ctx)
        try:
            return ctx.step.invoke(
                "call-child",
                function=children[ctx.event.data["child"]],
                data={"key": key, "n": 21},
                timeout=f"{ctx.event.data['timeout']}s",
            )
        except wayline.StepError as err:
            caught(key, err)
            raise

    return [child, broken_child, slow_child, parent_async, parent_sync]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(framework, build, tmp_path_factory, app_id="invoke") as running:
        yield running


@flavors
def test_invoke_returns_the_child_result(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("parent", flavor, child="ok", timeout=60)
    run = dev.wait(started)

    assert run["output"] == {"double": 42, "key": started.key}
    step = step_named(run, "call-child")
    assert (step["op"], step["status"]) == ("InvokeFunction", "Completed")
    assert step["output"] == {"double": 42, "key": started.key}
    assert tally.count(f"{started.key}:child") == 1
    assert tally.notes(f"{started.key}:raised") == []


@flavors
def test_child_failure_fails_the_parent(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("parent", flavor, child="fail", timeout=60)
    run = dev.wait(started, status=FAILED)

    assert run["output"]["name"] == "NonRetriableError"
    assert run["output"]["message"] == "child broke"
    error = step_named(run, "call-child")["error"]
    assert (error["name"], error["message"]) == ("NonRetriableError", "child broke")
    assert tally.notes(f"{started.key}:raised") == [
        {"name": "NonRetriableError", "message": "child broke"}
    ]
    assert tally.count(f"{started.key}:child") == 1  # non-retriable: no retry of the child


@flavors
def test_invoke_timeout(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("parent", flavor, child="timeout", timeout=1)
    run = dev.wait(started, status=FAILED)

    assert run["output"]["code"] == "step_errored"
    assert run["output"]["message"] == TIMEOUT_MESSAGE
    step = step_named(run, "call-child")
    assert (step["op"], step["status"]) == ("InvokeFunction", "Failed")
    assert (step["error"]["name"], step["error"]["message"]) == (TIMEOUT_ERROR, TIMEOUT_MESSAGE)
    assert run["output"]["name"] == TIMEOUT_ERROR
    assert tally.notes(f"{started.key}:raised") == [
        {"name": TIMEOUT_ERROR, "message": TIMEOUT_MESSAGE}
    ]
    wait_until(lambda: tally.count(f"{started.key}:child") == 1, message="child never started")
