"""on_failure: once a function has failed for good, its handler runs (as its own run) with
the ``inngest/function.failed`` event."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import wayline
from compat.harness import COMPLETED, FAILED, Tally, wait_until

from .support import Dev, Flavor, Framework, Functions, flavors, key_of, serve, trigger

tally = Tally()


class IntentionalError(Exception):
    pass


def record(ctx: wayline.Context | wayline.SyncContext) -> None:
    original = ctx.event.data["event"]
    tally.note(
        f"{original['data']['key']}:failures",
        {
            "run_id": ctx.run_id,
            "attempt": ctx.attempt,
            "event_name": ctx.event.name,
            "data": dict(ctx.event.data),
        },
    )


async def on_failure_async(ctx: wayline.Context) -> None:
    record(ctx)


def on_failure_sync(ctx: wayline.SyncContext) -> None:
    record(ctx)


def build(client: wayline.Wayline) -> Functions:
    @client.function(
        id="fails-async", trigger=trigger("fails", "async"), retries=0, on_failure=on_failure_async
    )
    async def fails_async(ctx: wayline.Context) -> None:
        tally.note(f"{key_of(ctx)}:runs", ctx.run_id)
        await ctx.step.run("ok", lambda: "fine")
        raise IntentionalError("intentional failure")

    @client.function(
        id="fails-sync", trigger=trigger("fails", "sync"), retries=1, on_failure=on_failure_sync
    )
    def fails_sync(ctx: wayline.SyncContext) -> None:
        tally.note(f"{key_of(ctx)}:runs", ctx.run_id)
        ctx.step.run("ok", lambda: "fine")
        raise IntentionalError("intentional failure")

    return [fails_async, fails_sync]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(framework, build, tmp_path_factory, app_id="onfail", retry_interval=0.2) as running:
        yield running


@flavors
def test_on_failure_handler_gets_the_failure_event(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("fails", flavor, foo=1)
    run = dev.wait(started, status=FAILED)

    assert run["output"]["name"] == "IntentionalError"
    assert run["output"]["message"] == "intentional failure"

    failures = f"{started.key}:failures"
    wait_until(lambda: len(tally.notes(failures)) >= 1, message="on_failure never ran")
    seen: dict[str, Any] = tally.notes(failures)[0]
    assert seen["event_name"] == "inngest/function.failed"
    assert seen["attempt"] == 0
    data = seen["data"]
    assert data["function_id"] == dev.compat.function_id(started.fn_id)
    assert data["run_id"] == run["run_id"]
    assert set(tally.notes(f"{started.key}:runs")) == {run["run_id"]}
    assert data["error"]["name"] == "IntentionalError"
    assert data["error"]["message"] == "intentional failure"
    assert data["event"]["name"] == f"fn/fails.{flavor}"
    assert data["event"]["data"] == {"key": started.key, "foo": 1}

    # The handler is a run of its own (of the "-failure" function), and it completes.
    assert seen["run_id"] != run["run_id"]
    failure_run = dev.compat.wait_run_by_id(seen["run_id"], status=COMPLETED)
    assert failure_run["function_id"] == dev.compat.function_id(f"{started.fn_id}-failure")
    assert len(tally.notes(failures)) == 1
