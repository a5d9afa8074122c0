"""step.invoke: success, failure of the invoked function, invoke timeout."""

from __future__ import annotations

import datetime
from typing import Any

import inngest
import pytest

from .harness import (
    COMPLETED,
    FAILED,
    Compat,
    Counter,
    Flavor,
    Framework,
    Recorder,
    step_named,
    variants,
    wait_until,
)

pytestmark = pytest.mark.compat

NEVER = inngest.TriggerEvent(event="compat/never")


def _record_step_error(errors: Recorder, err: Exception) -> None:
    if isinstance(err, inngest.StepError):
        errors.append({"type": "StepError", "name": err.name, "message": err.message})
    else:
        errors.append({"type": type(err).__name__, "message": str(err)})


@variants
def test_invoke_success(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    child_calls, child_data = Counter(), Recorder()
    parent_trigger = inngest.TriggerEvent(event="compat/invoke.ok")

    @client.create_function(fn_id="child", retries=0, trigger=NEVER)
    def child_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
        child_calls.incr()
        child_data.append(dict(ctx.event.data))
        return {"foo": {"bar": 1}}

    @client.create_function(fn_id="child", retries=0, trigger=NEVER)
    async def child_async(ctx: inngest.Context) -> dict[str, Any]:
        child_calls.incr()
        child_data.append(dict(ctx.event.data))
        return {"foo": {"bar": 1}}

    @client.create_function(fn_id="parent", retries=0, trigger=parent_trigger)
    def parent_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
        return {"child": ctx.step.invoke("call-child", function=child_sync, data={"x": 7})}

    @client.create_function(fn_id="parent", retries=0, trigger=parent_trigger)
    async def parent_async(ctx: inngest.Context) -> dict[str, Any]:
        return {"child": await ctx.step.invoke("call-child", function=child_async, data={"x": 7})}

    fns = [parent_sync, child_sync] if flavor == "sync" else [parent_async, child_async]
    compat.serve(framework, client, fns)
    run = compat.wait_run(compat.send("compat/invoke.ok"), "parent", status=COMPLETED)

    assert run["output"] == {"child": {"foo": {"bar": 1}}}
    assert step_named(run, "call-child")["output"] == {"foo": {"bar": 1}}
    assert child_calls.value == 1
    # The invoke payload is the child's event data (plus the server's `_inngest`
    # bookkeeping key, as with the official server).
    assert child_data.items[0]["x"] == 7


@variants
def test_invoke_failure_fails_parent(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    raised = Recorder()
    parent_trigger = inngest.TriggerEvent(event="compat/invoke.fail")

    @client.create_function(fn_id="child", retries=0, trigger=NEVER)
    def child_sync(ctx: inngest.ContextSync) -> None:
        raise inngest.NonRetriableError("child broke")

    @client.create_function(fn_id="child", retries=0, trigger=NEVER)
    async def child_async(ctx: inngest.Context) -> None:
        raise inngest.NonRetriableError("child broke")

    @client.create_function(fn_id="parent", retries=0, trigger=parent_trigger)
    def parent_sync(ctx: inngest.ContextSync) -> None:
        try:
            ctx.step.invoke("call-child", function=child_sync)
        except Exception as err:
            _record_step_error(raised, err)
            raise

    @client.create_function(fn_id="parent", retries=0, trigger=parent_trigger)
    async def parent_async(ctx: inngest.Context) -> None:
        try:
            await ctx.step.invoke("call-child", function=child_async)
        except Exception as err:
            _record_step_error(raised, err)
            raise

    fns = [parent_sync, child_sync] if flavor == "sync" else [parent_async, child_async]
    compat.serve(framework, client, fns)
    run = compat.wait_run(compat.send("compat/invoke.fail"), "parent", status=FAILED)

    assert run["output"]["message"] == "child broke"
    assert run["output"]["name"] == "NonRetriableError"
    assert raised.items == [
        {"type": "StepError", "name": "NonRetriableError", "message": "child broke"}
    ]


@variants
def test_invoke_timeout(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    raised = Recorder()
    child_started = Counter()
    parent_trigger = inngest.TriggerEvent(event="compat/invoke.timeout")

    @client.create_function(fn_id="child", retries=0, trigger=NEVER)
    def child_sync(ctx: inngest.ContextSync) -> str:
        child_started.incr()
        ctx.step.sleep("long-nap", datetime.timedelta(seconds=60))
        return "too late"

    @client.create_function(fn_id="child", retries=0, trigger=NEVER)
    async def child_async(ctx: inngest.Context) -> str:
        child_started.incr()
        await ctx.step.sleep("long-nap", datetime.timedelta(seconds=60))
        return "too late"

    @client.create_function(fn_id="parent", retries=0, trigger=parent_trigger)
    def parent_sync(ctx: inngest.ContextSync) -> str:
        try:
            ctx.step.invoke(
                "call-child", function=child_sync, timeout=datetime.timedelta(seconds=1)
            )
        except Exception as err:
            _record_step_error(raised, err)
            raise
        return "unreachable"

    @client.create_function(fn_id="parent", retries=0, trigger=parent_trigger)
    async def parent_async(ctx: inngest.Context) -> str:
        try:
            await ctx.step.invoke(
                "call-child", function=child_async, timeout=datetime.timedelta(seconds=1)
            )
        except Exception as err:
            _record_step_error(raised, err)
            raise
        return "unreachable"

    fns = [parent_sync, child_sync] if flavor == "sync" else [parent_async, child_async]
    compat.serve(framework, client, fns)
    run = compat.wait_run(compat.send("compat/invoke.timeout"), "parent", status=FAILED)

    message = "Timed out waiting for invoked function to complete"
    assert raised.items == [
        {"type": "StepError", "name": "InngestInvokeTimeoutError", "message": message}
    ]
    step_error = step_named(run, "call-child")["error"]
    assert step_error["name"] == "InngestInvokeTimeoutError"
    assert step_error["message"] == message
    assert run["output"]["code"] == "step_errored"
    assert run["output"]["name"] == "InngestInvokeTimeoutError"
    assert run["output"]["message"] == message
    wait_until(lambda: child_started.value >= 1, timeout=5, message="child never started")
