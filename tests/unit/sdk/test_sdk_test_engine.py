"""``TestEngine``: an app's functions on the real engine, in-process, in virtual time —
retries on the declared backoff, sleeps, waits, events sent by steps, and ``on_failure``
handlers (which ``wayline.testing.run`` does not run)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import wayline
from wayline.engine.model import RunStatus
from wayline.testing_engine import FetchCall, TestEngine

START = datetime(2030, 1, 1, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)


def test_a_flow_with_retries_sleeps_waits_and_sent_events_runs_as_on_the_server() -> None:
    # Production mode and no environment: the engine needs no signing key.
    client = wayline.Wayline(app_id="shop", environ={})
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise RuntimeError("down")
        return "ok"

    @client.function(
        id="order",
        trigger=wayline.TriggerEvent(event="shop/order"),
        backoff=wayline.Backoff(initial="1m", factor=1, max="1m"),
    )
    async def order(ctx: wayline.Context) -> dict[str, Any]:
        charged = await ctx.step.run("charge", flaky)
        await ctx.step.sleep("cool-off", "2d")
        await ctx.step.send_event("shipped", wayline.Event(name="shop/shipped", data={"id": 1}))
        paid = await ctx.step.wait_for_event(
            "paid", event="shop/paid", match="data.id", timeout="1h"
        )
        return {"charged": charged, "paid": paid is not None}

    @client.function(id="shipping", trigger=wayline.TriggerEvent(event="shop/shipped"))
    def shipping(ctx: wayline.SyncContext) -> int:
        return int(ctx.event.data["id"])

    engine = TestEngine(client, [order, shipping], now=START)
    [event_id] = engine.send(wayline.Event(name="shop/order", data={"id": 1}))
    engine.run_until_idle()
    run = engine.run_for(event_id, order)
    assert run.status is RunStatus.COMPLETED
    assert run.output == {"charged": "ok", "paid": False}  # the wait timed out
    assert attempts == [0, 1]
    # Virtual time: the retry after 1 min (the declared backoff), 2 days asleep, 1 h wait.
    assert engine.clock.ms - START_MS >= 60_000 + 2 * 86_400_000 + 3_600_000
    [shipped] = engine.runs_of(shipping.id)
    assert shipped.status is RunStatus.COMPLETED and shipped.output == 1


def test_on_failure_handlers_run_on_the_real_engine() -> None:
    client = wayline.Wayline(app_id="shop", environ={})
    told: list[str] = []

    def on_failure(ctx: wayline.SyncContext) -> None:
        told.append(str(ctx.event.data["error"]["message"]))

    @client.function(
        id="doomed", trigger=wayline.TriggerEvent(event="x"), retries=1, on_failure=on_failure
    )
    def doomed(ctx: wayline.SyncContext) -> None:
        ctx.step.run("boom", _boom)

    engine = TestEngine(client, [doomed], now=START)
    [event_id] = engine.send(wayline.Event(name="x"))
    engine.run_until_idle()
    assert engine.run_for(event_id, doomed).status is RunStatus.FAILED
    assert told == ["no luck"]
    assert doomed.on_failure_id is not None
    assert [r.status for r in engine.runs_of(doomed.on_failure_id)] == [RunStatus.COMPLETED]


def test_a_wait_is_resolved_by_an_event_sent_while_the_run_waits() -> None:
    client = wayline.Wayline(app_id="shop", environ={})

    @client.function(id="w", trigger=wayline.TriggerEvent(event="x"))
    async def waits(ctx: wayline.Context) -> str:
        got = await ctx.step.wait_for_event("go", event="go", match="data.k", timeout="1d")
        return "matched" if got else "timed out"

    engine = TestEngine(client, [waits], now=START)
    [event_id] = engine.send(wayline.Event(name="x", data={"k": 1}))
    engine.advance(1_000)
    engine.send(wayline.Event(name="go", data={"k": 1}))
    engine.run_until_idle()
    assert engine.run_for(event_id, waits).output == "matched"


def _boom() -> None:
    raise ValueError("no luck")


def test_ctx_publish_is_recorded_once_per_execution_not_per_replay() -> None:
    client = wayline.Wayline(app_id="shop", environ={})

    @client.function(id="p", trigger=wayline.TriggerEvent(event="x"))
    def progress(ctx: wayline.SyncContext) -> None:
        for n in range(3):
            ctx.step.run(f"s{n}", int, n)
            ctx.publish("run:1", "progress", {"n": n})

    engine = TestEngine(client, [progress], now=START)
    engine.send(wayline.Event(name="x"))
    engine.run_until_idle()
    assert engine.published == [("run:1", "progress", {"n": n}) for n in range(3)]


def test_step_fetch_is_answered_by_the_fetch_handler_with_the_engines_retry_rules() -> None:
    client = wayline.Wayline(app_id="shop", environ={})
    seen: list[FetchCall] = []

    def target(call: FetchCall) -> wayline.FetchResponse:
        seen.append(call)
        status = 503 if len(seen) == 1 else 200
        return wayline.FetchResponse(status=status, headers={}, body='{"rate": 2}')

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"), retries=1)
    async def rates(ctx: wayline.Context) -> int:
        res = await ctx.step.fetch("rates", "https://api.example.com/r", method="POST", json={})
        return int(res.json()["rate"])

    engine = TestEngine(client, [rates], now=START, fetch=target)
    [event_id] = engine.send(wayline.Event(name="x"))
    engine.run_until_idle()
    assert engine.run_for(event_id, rates).output == 2
    sent = [(c.method, c.url, c.body) for c in seen]
    assert sent == [("POST", "https://api.example.com/r", "{}")] * 2  # the 503 was retried


def test_the_tours_rates_flow_fetches_publishes_and_invokes_with_sealed_data() -> None:
    import examples.sdk_tour as tour

    def rates_api(call: FetchCall) -> wayline.FetchResponse:
        return wayline.FetchResponse(status=200, body='{"base": "EUR", "rates": {"USD": 1.1}}')

    engine = TestEngine(tour.client, [tour.sync_rates, tour.vault_card], now=START, fetch=rates_api)
    [event_id] = engine.send(wayline.Event(name="rates/sync", data={"account": "a1"}))
    engine.run_until_idle()
    run = engine.run_for(event_id, tour.sync_rates)
    assert run.status is RunStatus.COMPLETED
    assert tour.encryption.decrypt(run.output) == {
        "base": "EUR",
        "currencies": ["USD"],
        "vault": "vaulted 4242",
    }
    stages = [data["stage"] for _, _, data in engine.published]
    assert stages == ["fetching", "fetched", "done"]
    [invoked] = engine.runs_of(tour.vault_card.id)
    sealed = invoked.events[0]["data"]["encrypted"]  # what the engine holds: ciphertext
    assert isinstance(sealed, dict) and sealed["__ENCRYPTED__"] is True


def test_step_publish_is_sent_once_even_when_a_later_step_retries() -> None:
    client = wayline.Wayline(app_id="shop", environ={})
    tries: list[int] = []

    def flaky() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("first try fails")
        return 1

    @client.function(id="p", trigger=wayline.TriggerEvent(event="x"), retries=1)
    async def durable(ctx: wayline.Context) -> None:
        await ctx.step.publish("started", "run:1", "status", {"started": True})
        await ctx.step.run("flaky", flaky)
        await ctx.publish("run:1", "status", {"done": True})

    engine = TestEngine(client, [durable], now=START)
    engine.send(wayline.Event(name="x"))
    engine.run_until_idle()
    assert len(tries) == 2
    assert engine.published == [
        ("run:1", "status", {"started": True}),
        ("run:1", "status", {"done": True}),
    ]
