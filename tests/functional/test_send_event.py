"""step.send_event sends once (memoized) and starts runs; ``client.send`` does too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import wayline
from compat.harness import Tally, step_named

from .support import Dev, Flavor, Framework, Functions, flavors, key_of, serve, trigger

FANNED = "fn/fanned"
tally = Tally()


def fan_out(key: str) -> list[wayline.Event]:
    return [wayline.Event(name=FANNED, data={"key": key, "n": n}) for n in (1, 2)]


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="sender-async", trigger=trigger("sender", "async"), retries=0)
    async def sender_async(ctx: wayline.Context) -> list[str]:
        key = key_of(ctx)
        tally.incr(f"{key}:calls")
        ids = await ctx.step.send_event("fan-out", fan_out(key))
        await ctx.step.run("after", tally.incr, f"{key}:after")
        return ids

    @client.function(id="sender-sync", trigger=trigger("sender", "sync"), retries=0)
    def sender_sync(ctx: wayline.SyncContext) -> list[str]:
        key = key_of(ctx)
        tally.incr(f"{key}:calls")
        ids = ctx.step.send_event("fan-out", fan_out(key))
        ctx.step.run("after", tally.incr, f"{key}:after")
        return ids

    @client.function(id="fanned", trigger=wayline.TriggerEvent(event=FANNED), retries=0)
    def fanned(ctx: wayline.SyncContext) -> int:
        return int(ctx.event.data["n"]) * 10

    return [sender_async, sender_sync, fanned]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(framework, build, tmp_path_factory, app_id="send") as running:
        yield running


def _fanned_outputs(dev: Dev, event_ids: list[str]) -> list[int]:
    return sorted(dev.compat.wait_run(i, "fanned")["output"] for i in event_ids)


@flavors
def test_send_event_starts_runs_once(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("sender", flavor)
    run = dev.wait(started)

    ids = run["output"]
    assert isinstance(ids, list) and len(ids) == 2
    assert step_named(run, "fan-out")["output"] == ids
    assert _fanned_outputs(dev, ids) == [10, 20]
    # The send ran once; with checkpointing, the send, "after" and the return share one call.
    sent = [e for e in dev.compat.list_events(FANNED) if e["data"]["key"] == started.key]
    assert sorted(e["data"]["n"] for e in sent) == [1, 2]
    assert tally.count(f"{started.key}:calls") == 1


@flavors
def test_client_send(dev: Dev, flavor: Flavor) -> None:
    events = fan_out(f"client-{flavor}-{dev.framework}")
    if flavor == "async":
        ids = asyncio.run(dev.client.send_async(events))
    else:
        ids = dev.client.send(events)

    assert len(ids) == 2
    assert _fanned_outputs(dev, ids) == [10, 20]
