"""Function-level errors: raised outside steps, unserializable output, replaced StepError."""

from __future__ import annotations

import inngest
import pytest

from .harness import FAILED, Compat, Counter, Flavor, Framework, Recorder, step_named, variants

pytestmark = pytest.mark.compat


class BodyError(Exception):
    pass


class MyError(Exception):
    pass


class Unserializable:
    pass


@variants
def test_error_outside_steps_fails_the_run(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    attempts = Recorder()
    step_calls = Counter()
    trigger = inngest.TriggerEvent(event="compat/error.body")

    def ok() -> str:
        step_calls.incr()
        return "ok"

    @client.create_function(fn_id="body-error", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> None:
        attempts.append(ctx.attempt)
        ctx.step.run("ok", ok)
        raise BodyError("boom outside any step")

    @client.create_function(fn_id="body-error", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> None:
        attempts.append(ctx.attempt)

        async def ok_async() -> str:
            return ok()

        await ctx.step.run("ok", ok_async)
        raise BodyError("boom outside any step")

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(compat.send("compat/error.body"), "body-error", status=FAILED)

    output = run["output"]
    assert set(output) == {"code", "message", "name", "stack"}, output
    assert output["code"] == "unknown"
    assert output["message"] == "boom outside any step"
    assert output["name"] == "BodyError"
    assert isinstance(output["stack"], str)
    assert "BodyError" in output["stack"]
    assert step_named(run, "ok")["output"] == "ok"
    assert step_calls.value == 1
    # The step's call, then the replay that raised; no retry of the function.
    assert attempts.items == [0, 0]


@variants
def test_unserializable_step_output_fails_the_run(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    step_calls = Counter()
    trigger = inngest.TriggerEvent(event="compat/error.unserializable")

    @client.create_function(fn_id="unserializable", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> None:
        def step_1() -> Unserializable:
            step_calls.incr()
            return Unserializable()

        ctx.step.run("step_1", step_1)

    @client.create_function(fn_id="unserializable", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> None:
        async def step_1() -> Unserializable:
            step_calls.incr()
            return Unserializable()

        await ctx.step.run("step_1", step_1)

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(
        compat.send("compat/error.unserializable"), "unserializable", status=FAILED
    )

    assert run["output"] == {
        "code": "output_unserializable",
        "message": '"step_1" returned unserializable data',
        "name": "OutputUnserializableError",
    }
    assert step_calls.value == 1


@variants
def test_step_error_replaced_by_user_error(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    caught = Recorder()
    trigger = inngest.TriggerEvent(event="compat/error.change")

    def foo() -> None:
        raise ValueError("foo")

    @client.create_function(fn_id="change-step-error", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> None:
        try:
            ctx.step.run("foo", foo)
        except inngest.StepError as err:
            caught.append((err.name, err.message))
            raise MyError("I am new") from None

    @client.create_function(fn_id="change-step-error", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> None:
        async def foo_async() -> None:
            foo()

        try:
            await ctx.step.run("foo", foo_async)
        except inngest.StepError as err:
            caught.append((err.name, err.message))
            raise MyError("I am new") from None

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(compat.send("compat/error.change"), "change-step-error", status=FAILED)

    output = run["output"]
    assert set(output) == {"code", "message", "name", "stack"}, output
    assert output["code"] == "unknown"
    assert output["message"] == "I am new"
    assert output["name"] == "MyError"
    # The user code saw the step's own error, as memoized by the server.
    assert caught.items == [("ValueError", "foo")]
    foo_step = step_named(run, "foo")
    assert foo_step["status"] == "Failed"
    assert foo_step["error"]["name"] == "ValueError"
    assert foo_step["error"]["message"] == "foo"
