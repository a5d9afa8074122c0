"""on_failure: the `-failure` handler runs with the inngest/function.failed event."""

from __future__ import annotations

from typing import Any

import inngest
import pytest

from .harness import COMPLETED, FAILED, Compat, Flavor, Framework, Recorder, variants, wait_until

pytestmark = pytest.mark.compat


class IntentionalError(Exception):
    pass


@variants
def test_on_failure_handler_receives_failure_event(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    failures = Recorder()  # what the on_failure handler saw
    main_runs = Recorder()
    trigger = inngest.TriggerEvent(event="compat/on-failure")

    def record(ctx: inngest.Context | inngest.ContextSync) -> None:
        failures.append(
            {
                "run_id": ctx.run_id,
                "attempt": ctx.attempt,
                "event_name": ctx.event.name,
                "data": dict(ctx.event.data),
            }
        )

    def on_failure_sync(ctx: inngest.ContextSync) -> None:
        record(ctx)

    async def on_failure_async(ctx: inngest.Context) -> None:
        record(ctx)

    @client.create_function(fn_id="fails", retries=0, trigger=trigger, on_failure=on_failure_sync)
    def fn_sync(ctx: inngest.ContextSync) -> None:
        main_runs.append(ctx.run_id)
        raise IntentionalError("intentional failure")

    @client.create_function(fn_id="fails", retries=0, trigger=trigger, on_failure=on_failure_async)
    async def fn_async(ctx: inngest.Context) -> None:
        main_runs.append(ctx.run_id)
        raise IntentionalError("intentional failure")

    fn = fn_sync if flavor == "sync" else fn_async
    compat.serve(framework, client, [fn])
    event_id = compat.send("compat/on-failure", {"foo": 1})
    run = compat.wait_run(event_id, "fails", status=FAILED)

    assert run["output"]["message"] == "intentional failure"
    assert run["output"]["name"] == "IntentionalError"

    wait_until(
        lambda: len(failures) >= 1,
        message="on_failure handler never ran",
    )
    seen: dict[str, Any] = failures.items[0]
    data = seen["data"]
    assert seen["event_name"] == "inngest/function.failed"
    assert seen["attempt"] == 0
    assert data["function_id"] == fn.id == compat.function_id("fails")
    assert data["run_id"] == run["run_id"] == main_runs.items[0]
    assert data["error"]["message"] == "intentional failure"
    assert data["error"]["name"] == "IntentionalError"
    original = data["event"]
    assert original["name"] == "compat/on-failure"
    assert original["data"] == {"foo": 1}
    assert original["id"]
    assert original["ts"] > 0

    # The failure handler is its own run, and it completes.
    assert seen["run_id"] != run["run_id"]
    failure_run = compat.wait_run_by_id(seen["run_id"], status=COMPLETED)
    assert failure_run["function_id"] == fn.on_failure_fn_id
    assert len(failures) == 1
