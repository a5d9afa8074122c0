"""RetryAfterError: the next attempt happens at the time the SDK asked for."""

from __future__ import annotations

import time

import inngest
import pytest

from .harness import COMPLETED, Compat, Flavor, Framework, Recorder, step_named, variants

pytestmark = pytest.mark.compat

RETRY_AFTER_MS = 1000


@variants
def test_retry_after_error_is_honoured(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    attempts = Recorder()  # (ctx.attempt, monotonic time) per step-body execution
    trigger = inngest.TriggerEvent(event="compat/retry-after")

    def body(attempt: int) -> str:
        attempts.append((attempt, time.monotonic()))
        if len(attempts) == 1:
            raise inngest.RetryAfterError("not yet", retry_after=RETRY_AFTER_MS, quiet=True)
        return "ok"

    @client.create_function(fn_id="retry-after", retries=2, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> str:
        return ctx.step.run("flaky", body, ctx.attempt)

    @client.create_function(fn_id="retry-after", retries=2, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> str:
        async def body_async(attempt: int) -> str:
            return body(attempt)

        return await ctx.step.run("flaky", body_async, ctx.attempt)

    # A long generic retry interval: only the Retry-After the SDK sends can make
    # the second attempt come within 2 s.
    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async], retry_interval=10)
    run = compat.wait_run(compat.send("compat/retry-after"), "retry-after", status=COMPLETED)

    assert run["output"] == "ok"
    assert step_named(run, "flaky")["output"] == "ok"
    got = attempts.items
    assert [a for a, _ in got] == [0, 1]
    gap = got[1][1] - got[0][1]
    assert gap < 2.0, f"second attempt came {gap:.2f}s after RetryAfterError(1000 ms)"
    assert gap >= 0.8, f"second attempt came {gap:.2f}s after RetryAfterError(1000 ms): too early"
