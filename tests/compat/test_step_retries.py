"""A generic exception in a step is retried (retries=1 -> 2 attempts), then fails."""

from __future__ import annotations

import inngest
import pytest

from .harness import FAILED, Compat, Flavor, Framework, Recorder, variants

pytestmark = pytest.mark.compat


class BoomError(Exception):
    pass


@variants
def test_step_error_is_retried_then_fails(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    step_attempts = Recorder()  # ctx.attempt seen by each step-body execution
    trigger = inngest.TriggerEvent(event="compat/step-retries")

    def body(attempt: int) -> None:
        step_attempts.append(attempt)
        raise BoomError("boom")

    @client.create_function(fn_id="step-retries", retries=1, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> None:
        ctx.step.run("unlucky", body, ctx.attempt)

    @client.create_function(fn_id="step-retries", retries=1, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> None:
        async def body_async(attempt: int) -> None:
            body(attempt)

        await ctx.step.run("unlucky", body_async, ctx.attempt)

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(compat.send("compat/step-retries"), "step-retries", status=FAILED)

    assert step_attempts.items == [0, 1]
    assert run["output"]["message"] == "boom"
    assert run["output"]["name"] == "BoomError"
