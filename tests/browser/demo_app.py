"""The app the browser suite drives: official ``inngest`` SDK functions covering every state
a run page draws (completed steps, a failed step with a stack, a long sleep, a wait)."""

from __future__ import annotations

import datetime
from typing import Any

import inngest

APP_ID = "demo"
SLEEP = datetime.timedelta(days=3)
WAIT_TIMEOUT = datetime.timedelta(hours=1)


class CardDeclinedError(Exception):
    """What the failing step raises: its name and message must show on the run page."""


def functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    @client.create_function(
        fn_id="greet",
        name="Greet user",
        retries=0,
        trigger=inngest.TriggerEvent(event="demo/greet"),
    )
    def greet(ctx: inngest.ContextSync) -> dict[str, Any]:
        user = ctx.step.run(
            "load-user", lambda: {"id": ctx.event.data.get("user_id"), "plan": "pro"}
        )
        text = ctx.step.run("say-hello", lambda: f"hello {user['id']}")
        return {"greeting": text}

    def charge_card() -> None:
        raise CardDeclinedError("card declined: insufficient funds")

    @client.create_function(
        fn_id="charge",
        name="Charge card",
        retries=0,
        trigger=inngest.TriggerEvent(event="demo/charge"),
    )
    def charge(ctx: inngest.ContextSync) -> str:
        ctx.step.run("load-order", lambda: {"order_id": "o-17", "amount": 12.5})
        ctx.step.run("charge-card", charge_card)
        return "charged"

    @client.create_function(
        fn_id="onboard",
        name="Onboard user",
        retries=0,
        trigger=inngest.TriggerEvent(event="demo/onboard"),
    )
    def onboard(ctx: inngest.ContextSync) -> str:
        ctx.step.run("send-welcome", lambda: "sent")
        ctx.step.sleep("wait-3-days", SLEEP)
        ctx.step.run("send-nudge", lambda: "nudged")
        return "done"

    @client.create_function(
        fn_id="approve",
        name="Wait for approval",
        retries=0,
        trigger=inngest.TriggerEvent(event="demo/approve"),
    )
    def approve(ctx: inngest.ContextSync) -> str:
        ctx.step.run("request-approval", lambda: "requested")
        ctx.step.wait_for_event("wait-approval", event="demo/approved", timeout=WAIT_TIMEOUT)
        return "approved"

    @client.create_function(
        fn_id="flaky",
        name="Flaky API call",
        retries=2,
        trigger=inngest.TriggerEvent(event="demo/flaky"),
    )
    def flaky(ctx: inngest.ContextSync) -> str:
        def call_api() -> str:
            if ctx.attempt < 2:  # the first two tries fail, the third succeeds
                raise UpstreamError(f"upstream returned 503 (try {ctx.attempt + 1})")
            return "ok"

        return ctx.step.run("call-api", call_api)

    return [greet, charge, onboard, approve, flaky]


class UpstreamError(Exception):
    """What the flaky step raises on its first two tries."""
