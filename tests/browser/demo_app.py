"""The app the browser suite drives: official ``inngest`` SDK functions covering every state
a run page draws (completed steps, a failed step with a stack, a long sleep, a wait), and a
function that fails at its third step until the test fixes it (redrive)."""

from __future__ import annotations

import collections
import datetime
import threading
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

    @client.create_function(
        fn_id="fulfil",
        name="Fulfil order",
        retries=0,
        trigger=inngest.TriggerEvent(event="demo/fulfil"),
    )
    def fulfil(ctx: inngest.ContextSync) -> dict[str, Any]:
        def step(name: str, result: Any) -> Any:
            def body() -> Any:
                FULFIL.executed(name)
                if name == "ship-order" and not FULFIL.carrier_fixed:
                    raise CarrierError("carrier API rejected the label: unknown service code")
                return result

            return ctx.step.run(name, body)

        stock = step("reserve-stock", {"sku": "sku-1", "reserved": 1})
        payment = step("charge-payment", {"charge_id": "ch_42", "amount": 12.5})
        label = step("ship-order", {"tracking": "TRK-9"})
        return {"stock": stock, "payment": payment, "label": label}

    return [greet, charge, onboard, approve, flaky, fulfil]


class CarrierError(Exception):
    """What ``ship-order`` raises until the test "fixes the code" (``FULFIL.carrier_fixed``)."""


class FulfilState:
    """The fulfil app's own counters: how often each step's code really executed, and the
    flag standing in for a deploy that fixes ``ship-order`` (the app runs on a thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.carrier_fixed = False

    def executed(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1


FULFIL = FulfilState()


class UpstreamError(Exception):
    """What the flaky step raises on its first two tries."""
