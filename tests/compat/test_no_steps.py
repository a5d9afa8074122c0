"""A function without steps: one call, its return value is the run output."""

from __future__ import annotations

from typing import Any

import inngest
import pytest

from .harness import COMPLETED, Compat, Counter, Flavor, Framework, variants

pytestmark = pytest.mark.compat


@variants
def test_no_steps(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    calls = Counter()
    trigger = inngest.TriggerEvent(event="compat/no-steps")

    @client.create_function(fn_id="no-steps", retries=0, trigger=trigger)
    def fn_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
        calls.incr()
        return {"foo": {"bar": 1}}

    @client.create_function(fn_id="no-steps", retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> dict[str, Any]:
        calls.incr()
        return {"foo": {"bar": 1}}

    compat.serve(framework, client, [fn_sync if flavor == "sync" else fn_async])
    event_id = compat.send("compat/no-steps", {"n": 1})
    run = compat.wait_run(event_id, "no-steps", status=COMPLETED)

    assert run["output"] == {"foo": {"bar": 1}}
    assert run["event_id"] == event_id
    assert run["function_id"] == compat.function_id("no-steps")
    assert run["steps"] == []
    assert run["run_started_at"]
    assert run["ended_at"]
    assert calls.value == 1
