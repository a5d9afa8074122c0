"""step.wait_for_event: fulfilled (``match=`` and ``if_=``), timed out, not matching.

The trigger event says how to wait (``how``: ``match`` or ``if``) and for how long; a
timed-out or unmatched wait returns None.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import wayline
from compat.harness import RUNNING, step_named

from .support import Dev, Flavor, Framework, Functions, flavors, serve, trigger

WAITED = "fn/wfe.verified"
IF_EXPRESSION = "async.data.key == event.data.key && async.data.amount > 10"


def wait_options(ctx: wayline.Context | wayline.SyncContext) -> dict[str, Any]:
    data = ctx.event.data
    if data["how"] == "match":
        return {"event": WAITED, "timeout": data["timeout"], "match": "data.key"}
    return {"event": WAITED, "timeout": data["timeout"], "if_": IF_EXPRESSION}


def summary(event: wayline.Event | None) -> dict[str, Any]:
    if event is None:
        return {"event": None}
    assert event.id and event.ts > 0, event
    return {"event": {"name": event.name, "data": event.data}}


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="waiter-async", trigger=trigger("waiter", "async"), retries=0)
    async def waiter_async(ctx: wayline.Context) -> dict[str, Any]:
        event = await ctx.step.wait_for_event("verified", **wait_options(ctx))
        return summary(event)

    @client.function(id="waiter-sync", trigger=trigger("waiter", "sync"), retries=0)
    def waiter_sync(ctx: wayline.SyncContext) -> dict[str, Any]:
        event = ctx.step.wait_for_event("verified", **wait_options(ctx))
        return summary(event)

    return [waiter_async, waiter_sync]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(framework, build, tmp_path_factory, app_id="wfe") as running:
        yield running


@flavors
def test_fulfilled_with_match(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("waiter", flavor, how="match", timeout="30s")
    dev.wait_for_step(started, "verified")
    dev.compat.send(WAITED, {"key": "someone-else", "amount": 50})
    dev.compat.send(WAITED, {"key": started.key, "amount": 1})
    run = dev.wait(started)

    expected = {"name": WAITED, "data": {"key": started.key, "amount": 1}}
    assert run["output"] == {"event": expected}
    step = step_named(run, "verified")
    assert (step["op"], step["status"]) == ("WaitForEvent", "Completed")


@flavors
def test_fulfilled_with_if(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("waiter", flavor, how="if", timeout="30s")
    dev.wait_for_step(started, "verified")
    dev.compat.send(WAITED, {"key": "someone-else", "amount": 50})
    dev.compat.send(WAITED, {"key": started.key, "amount": 5})  # too small
    dev.compat.send(WAITED, {"key": started.key, "amount": 20})
    run = dev.wait(started)

    assert run["output"] == {"event": {"name": WAITED, "data": {"key": started.key, "amount": 20}}}


@flavors
def test_timeout_returns_none(dev: Dev, flavor: Flavor) -> None:
    run = dev.wait(dev.start("waiter", flavor, how="match", timeout="1s"))

    assert run["output"] == {"event": None}
    step = step_named(run, "verified")
    assert (step["op"], step["status"], step["output"]) == ("WaitForEvent", "Completed", None)


@flavors
def test_not_matching_returns_none(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("waiter", flavor, how="if", timeout="2s")
    dev.wait_for_step(started, "verified")
    dev.compat.send(WAITED, {"key": started.key, "amount": 3})
    dev.compat.send(WAITED, {"key": "someone-else", "amount": 30})
    # The events came while the wait was open (so they were really tried against it).
    waiting = dev.compat.current_run(started.event_id, started.fn_id)
    assert waiting is not None and waiting["status"] == RUNNING, waiting
    assert step_named(waiting, "verified")["status"] == "Waiting"
    run = dev.wait(started)

    assert run["output"] == {"event": None}
