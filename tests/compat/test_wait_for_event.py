"""step.wait_for_event: fulfilled, timed out, expression not matching."""

from __future__ import annotations

import datetime
import time
from typing import Any

import inngest
import pytest

from .harness import COMPLETED, Compat, Counter, Flavor, Framework, Recorder, variants, wait_until

pytestmark = pytest.mark.compat

IF_EXP = "event.data.id == async.data.id"


def _register_waiter(
    client: inngest.Inngest,
    flavor: Flavor,
    *,
    fn_id: str,
    trigger_name: str,
    wait_name: str,
    timeout: datetime.timedelta,
    calls: Counter,
    results: Recorder,
) -> inngest.Function[Any]:
    trigger = inngest.TriggerEvent(event=trigger_name)

    def summarize(ev: inngest.Event | None) -> dict[str, Any]:
        results.append(ev)
        if ev is None:
            return {"event": None}
        return {"event": {"id": ev.id, "name": ev.name, "data": dict(ev.data), "ts": ev.ts}}

    if flavor == "sync":

        @client.create_function(fn_id=fn_id, retries=0, trigger=trigger)
        def fn_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
            calls.incr()
            ev = ctx.step.wait_for_event("wait", event=wait_name, if_exp=IF_EXP, timeout=timeout)
            return summarize(ev)

        return fn_sync

    @client.create_function(fn_id=fn_id, retries=0, trigger=trigger)
    async def fn_async(ctx: inngest.Context) -> dict[str, Any]:
        calls.incr()
        ev = await ctx.step.wait_for_event("wait", event=wait_name, if_exp=IF_EXP, timeout=timeout)
        return summarize(ev)

    return fn_async


def _wait_for_waiter(compat: Compat, calls: Counter) -> None:
    """Wait until the handler has run (and reported the wait), plus a grace period."""
    wait_until(
        lambda: calls.value >= 1,
        message="handler never called",
    )
    time.sleep(0.5)


@variants
def test_wait_for_event_fulfilled(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    calls, results = Counter(), Recorder()
    fn = _register_waiter(
        client,
        flavor,
        fn_id="waiter",
        trigger_name="compat/wfe.start",
        wait_name="compat/wfe.fulfill",
        timeout=datetime.timedelta(seconds=30),
        calls=calls,
        results=results,
    )
    compat.serve(framework, client, [fn])

    start_id = compat.send("compat/wfe.start", {"id": 123, "who": "trigger"})
    _wait_for_waiter(compat, calls)
    # A matching event for a different id must not fulfil the wait.
    compat.send("compat/wfe.fulfill", {"id": 999, "who": "other"})
    # Should the wait not be registered yet, a later copy of the event fulfils it.
    for _ in range(5):
        compat.send("compat/wfe.fulfill", {"id": 123, "who": "fulfiller"})
        if compat.poll_until_terminal(start_id, "waiter", within=2.0) is not None:
            break

    run = compat.wait_run(start_id, "waiter", status=COMPLETED)
    out = run["output"]["event"]
    assert out is not None, f"wait_for_event returned None: {run}"
    assert out["name"] == "compat/wfe.fulfill"
    assert out["data"] == {"id": 123, "who": "fulfiller"}
    assert out["id"]
    assert out["ts"] > 0
    assert len(results) == 1


@variants
def test_wait_for_event_times_out(compat: Compat, framework: Framework, flavor: Flavor) -> None:
    client = compat.client()
    calls, results = Counter(), Recorder()
    fn = _register_waiter(
        client,
        flavor,
        fn_id="waiter",
        trigger_name="compat/wfe-timeout.start",
        wait_name="compat/wfe-timeout.never",
        timeout=datetime.timedelta(seconds=1),
        calls=calls,
        results=results,
    )
    compat.serve(framework, client, [fn])

    run = compat.wait_run(
        compat.send("compat/wfe-timeout.start", {"id": 1}), "waiter", status=COMPLETED
    )
    assert run["output"] == {"event": None}
    assert results.items == [None]
    # Wait reported, then the timeout resumed the function once.
    assert calls.value == 2


@variants
def test_wait_for_event_expression_not_matching(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    calls, results = Counter(), Recorder()
    fn = _register_waiter(
        client,
        flavor,
        fn_id="waiter",
        trigger_name="compat/wfe-nomatch.start",
        wait_name="compat/wfe-nomatch.fulfill",
        timeout=datetime.timedelta(seconds=3),
        calls=calls,
        results=results,
    )
    compat.serve(framework, client, [fn])

    start_id = compat.send("compat/wfe-nomatch.start", {"id": 1})
    _wait_for_waiter(compat, calls)
    compat.send("compat/wfe-nomatch.fulfill", {"id": 2})

    run = compat.wait_run(start_id, "waiter", status=COMPLETED)
    assert run["output"] == {"event": None}
    assert results.items == [None]
