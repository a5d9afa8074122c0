"""step.send_event from one function triggers another."""

from __future__ import annotations

import inngest
import pytest

from .harness import COMPLETED, Compat, Flavor, Framework, Recorder, step_named, variants

pytestmark = pytest.mark.compat


@variants
def test_send_event_triggers_second_function(
    compat: Compat, framework: Framework, flavor: Flavor
) -> None:
    client = compat.client()
    received = Recorder()
    first_trigger = inngest.TriggerEvent(event="compat/send.first")
    second_trigger = inngest.TriggerEvent(event="compat/send.second")
    outgoing = inngest.Event(name="compat/send.second", data={"hello": "world"})

    @client.create_function(fn_id="sender", retries=0, trigger=first_trigger)
    def sender_sync(ctx: inngest.ContextSync) -> list[str]:
        return ctx.step.send_event("emit", outgoing)

    @client.create_function(fn_id="receiver", retries=0, trigger=second_trigger)
    def receiver_sync(ctx: inngest.ContextSync) -> str:
        received.append(dict(ctx.event.data))
        return "received"

    @client.create_function(fn_id="sender", retries=0, trigger=first_trigger)
    async def sender_async(ctx: inngest.Context) -> list[str]:
        return await ctx.step.send_event("emit", outgoing)

    @client.create_function(fn_id="receiver", retries=0, trigger=second_trigger)
    async def receiver_async(ctx: inngest.Context) -> str:
        received.append(dict(ctx.event.data))
        return "received"

    if flavor == "sync":
        compat.serve(framework, client, [sender_sync, receiver_sync])
    else:
        compat.serve(framework, client, [sender_async, receiver_async])

    sender_run = compat.wait_run(compat.send("compat/send.first"), "sender", status=COMPLETED)
    sent_ids = sender_run["output"]
    assert isinstance(sent_ids, list) and len(sent_ids) == 1
    assert step_named(sender_run, "emit")["output"] == sent_ids

    # The id the server returned to the SDK identifies the event that started
    # the second function.
    receiver_run = compat.wait_run(str(sent_ids[0]), "receiver", status=COMPLETED)
    assert receiver_run["output"] == "received"
    assert received.items == [{"hello": "world"}]
