"""NonRetriableError in a step fails the run after one attempt, despite retries."""

from __future__ import annotations

import inngest
import pytest

from .harness import FAILED, Compat, Counter, Flavor, Framework, Recorder, variants

pytestmark = pytest.mark.compat


@variants
def test_non_retriable_error_fails_after_one_attempt(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    step_attempts, handler_attempts = Counter(), Recorder()
    trigger = inngest.TriggerEvent(event="compat/non-retriable")

    def body() -> None:
        step_attempts.incr()
        raise inngest.NonRetriableError("nope", quiet=True)

    @client.create_function(fn_id="non-retriable", retries=3, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> None:
        handler_attempts.append(ctx.attempt)
        ctx.step.run("doomed", body)

    @client.create_function(fn_id="non-retriable", retries=3, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> None:
        handler_attempts.append(ctx.attempt)

        async def body_async() -> None:
            body()

        await ctx.step.run("doomed", body_async)

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    run = compat.wait_run(compat.send("compat/non-retriable"), "non-retriable", status=FAILED)

    output = run["output"]
    assert output["code"] == "non_retriable_error"
    assert output["message"] == "nope"
    assert output["name"] == "NonRetriableError"
    assert step_attempts.value == 1
    assert handler_attempts.items == [0]
