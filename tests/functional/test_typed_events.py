"""Typed events through a real ``wayline dev``: events built from ``EventType``s trigger typed
functions, a registered event with bad data is refused at ``client.send`` (the server never
sees it), and ``Cancel(match=...)`` cancels only the run whose field matches."""

from __future__ import annotations

import uuid

import pydantic
import pytest

import wayline
from compat.harness import CANCELLED, COMPLETED, Compat

from .support import build_web_app, wait_for_step


class Ordered(pydantic.BaseModel):
    order_id: str


class Refunded(pydantic.BaseModel):
    order_id: str
    cents: int


ORDERED = wayline.EventType("shop/ordered", Ordered)
REFUNDED = wayline.EventType("shop/refunded", Refunded)


def test_typed_send_trigger_and_cancel_match(compat: Compat) -> None:
    client = wayline.Wayline(
        app_id="typed", is_dev=True, base_url=compat.server_url, events=[ORDERED, REFUNDED]
    )

    @client.function(
        id="fulfil",
        trigger=ORDERED.trigger(),
        cancel=wayline.Cancel(event=REFUNDED.name, match="data.order_id"),
    )
    async def fulfil(ctx: wayline.Context[Ordered]) -> str:
        await ctx.step.sleep("ship-later", "1h")
        return ctx.event.data.order_id

    web_app, ids = build_web_app("fastapi", client, [fulfil])
    compat.serve_app(web_app, app_id="typed", function_ids=ids, retry_interval=0.2)
    kept, refunded = uuid.uuid4().hex, uuid.uuid4().hex
    [kept_event] = client.send(ORDERED(Ordered(order_id=kept)))
    [refunded_event] = client.send(ORDERED(Ordered(order_id=refunded)))
    wait_for_step(compat, kept_event, "typed-fulfil", "ship-later")
    wait_for_step(compat, refunded_event, "typed-fulfil", "ship-later")

    with pytest.raises(wayline.ValidationError, match="cents"):
        client.send(wayline.Event(name=REFUNDED.name, data={"order_id": kept}))
    assert compat.list_events(REFUNDED.name) == []

    client.send(REFUNDED(Refunded(order_id=refunded, cents=500)))
    compat.wait_run(refunded_event, "typed-fulfil", status=CANCELLED)
    compat.advance_clock(3_600_000)
    run = compat.wait_run(kept_event, "typed-fulfil", status=COMPLETED)
    assert run["output"] == kept
