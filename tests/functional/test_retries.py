"""Retries: NonRetriableError stops at once, RetryAfterError sets the next attempt's time,
a generic error is retried (``retries=1``: two attempts) and then fails the run.

The server retries failed calls after a fixed 2.5 s here, so only the ``Retry-After`` the SDK
sends can bring the second attempt within 2 s of the first.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

import wayline
from compat.harness import COMPLETED, FAILED, Tally, step_named

from .support import Dev, Flavor, Framework, Functions, flavors, key_of, serve, trigger

RETRY_INTERVAL = 2.5
tally = Tally()


class BoomError(Exception):
    pass


def give_up(key: str, attempt: int) -> str:
    tally.note(f"{key}:attempts", attempt)
    raise wayline.NonRetriableError("the card was declined for good")


def busy_once(key: str, attempt: int) -> str:
    tally.note(f"{key}:attempts", attempt)
    tally.note(f"{key}:times", time.monotonic())
    if attempt == 0:
        raise wayline.RetryAfterError("rate limited", timedelta(seconds=1))
    return "ok"


def boom(key: str, attempt: int) -> str:
    tally.note(f"{key}:attempts", attempt)
    raise BoomError("boom")


BODIES = {"non-retriable": give_up, "retry-after": busy_once, "boom": boom}


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="flaky-async", trigger=trigger("flaky", "async"), retries=1)
    async def flaky_async(ctx: wayline.Context) -> str:
        body = BODIES[ctx.event.data["body"]]
        return await ctx.step.run("call-api", body, key_of(ctx), ctx.attempt)

    @client.function(id="flaky-sync", trigger=trigger("flaky", "sync"), retries=1)
    def flaky_sync(ctx: wayline.SyncContext) -> str:
        body = BODIES[ctx.event.data["body"]]
        return ctx.step.run("call-api", body, key_of(ctx), ctx.attempt)

    return [flaky_async, flaky_sync]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(
        framework, build, tmp_path_factory, app_id="retries", retry_interval=RETRY_INTERVAL
    ) as running:
        yield running


@flavors
def test_non_retriable_error_fails_at_once(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("flaky", flavor, body="non-retriable")
    run = dev.wait(started, status=FAILED)

    assert run["output"]["code"] == "non_retriable_error"
    assert run["output"]["name"] == "NonRetriableError"
    assert run["output"]["message"] == "the card was declined for good"
    assert tally.notes(f"{started.key}:attempts") == [0]


@flavors
def test_retry_after_error_is_honoured(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("flaky", flavor, body="retry-after")
    run = dev.wait(started, status=COMPLETED)

    assert run["output"] == "ok"
    assert step_named(run, "call-api")["output"] == "ok"
    assert tally.notes(f"{started.key}:attempts") == [0, 1]
    first, second = tally.notes(f"{started.key}:times")
    assert 0.8 <= second - first < 2.0, f"retried {second - first:.2f}s after RetryAfterError(1s)"


@flavors
def test_generic_error_is_retried_then_fails(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("flaky", flavor, body="boom")
    run = dev.wait(started, status=FAILED)

    assert tally.notes(f"{started.key}:attempts") == [0, 1]
    assert run["output"]["name"] == "BoomError"
    assert run["output"]["message"] == "boom"
    step = step_named(run, "call-api")
    assert (step["status"], step["attempts"]) == ("Failed", 2)
    assert step["error"]["name"] == "BoomError"
