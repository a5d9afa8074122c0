"""Typed events: registered event types validate at ``client.send`` and ``step.send_event``
(nothing is sent when one is wrong), triggers and waits are typed by them, and ``Cancel``
takes ``match=`` as ``wait_for_event`` does."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pydantic
import pytest

import wayline
import wayline.testing


class SignedUp(pydantic.BaseModel):
    email: str


class Deleted(pydantic.BaseModel):
    user_id: int


SIGNED_UP = wayline.EventType("user/signed-up", SignedUp)
DELETED = wayline.EventType("user/deleted", Deleted)


class Sent:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        self.events.extend(events)
        return [str(i) for i, _ in enumerate(events)]

    async def send_async(self, events: Sequence[dict[str, Any]]) -> list[str]:
        return self.send(events)


def _client(sent: Sent) -> wayline.Wayline:
    return wayline.Wayline(
        app_id="shop", is_dev=True, environ={}, sender=sent, events=[SIGNED_UP, DELETED]
    )


def test_send_validates_registered_events_at_the_call_and_sends_nothing_on_error() -> None:
    sent = Sent()
    client = _client(sent)
    client.send(SIGNED_UP(SignedUp(email="a@b.c")))
    # An untyped Event of a registered name is validated too (a dict becomes the model).
    client.send(wayline.Event(name="user/deleted", data={"user_id": "7"}))
    assert [e["data"] for e in sent.events] == [{"email": "a@b.c"}, {"user_id": 7}]
    bad: list[wayline.Event[Any]] = [
        SIGNED_UP(SignedUp(email="x@y.z")),
        wayline.Event(name="user/deleted", data={}),
    ]
    with pytest.raises(wayline.ValidationError, match=r'(?s)event "user/deleted".*user_id') as info:
        client.send(bad)
    assert info.value.field == "data"
    with pytest.raises(wayline.ValidationError):
        asyncio.run(client.send_async(bad))
    assert len(sent.events) == 2, "nothing of a batch with a bad event is sent"
    client.send(wayline.Event(name="not/registered", data={"anything": 1}))
    assert sent.events[-1]["data"] == {"anything": 1}


def test_step_send_event_validates_before_the_step_runs() -> None:
    client = _client(Sent())

    @client.function(id="f", trigger=SIGNED_UP.trigger(), retries=0)
    async def fn(ctx: wayline.Context[SignedUp]) -> str:
        await ctx.step.send_event("bad", wayline.Event(name="user/deleted", data={"id": 1}))
        return ctx.event.data.email

    result = wayline.testing.run(fn, SIGNED_UP(SignedUp(email="a@b.c")))
    assert result.status == "failed"
    assert result.error is not None and "user_id" in result.error["message"]
    assert result.step_calls == [], "the step body never ran"


def test_a_trigger_and_a_wait_are_typed_by_the_event_type() -> None:
    client = _client(Sent())

    @client.function(id="f", trigger=SIGNED_UP.trigger(expression="event.data.email != ''"))
    def fn(ctx: wayline.SyncContext[SignedUp]) -> int:
        gone = ctx.step.wait_for_event("gone", event=DELETED, timeout="1h")
        assert gone is not None
        return gone.data.user_id  # a Deleted, not a dict

    assert fn.configs("http://app/")[0]["triggers"] == [
        {"event": "user/signed-up", "expression": "event.data.email != ''"}
    ]
    result = wayline.testing.run(
        fn,
        SIGNED_UP(SignedUp(email="a@b.c")),
        events={"gone": wayline.Event(name="user/deleted", data={"user_id": 9})},
    )
    assert result.output == 9


def test_event_types_are_checked_when_registered() -> None:
    with pytest.raises(wayline.ConfigError, match="registered twice"):
        wayline.Wayline(app_id="a", is_dev=True, environ={}, events=[SIGNED_UP, SIGNED_UP])
    with pytest.raises(wayline.ConfigError, match="without wildcards"):
        wayline.EventType("user/*", SignedUp)


def test_cancel_match_is_the_wait_shorthand() -> None:
    cancel = wayline.Cancel(event="user/deleted", match="data.user_id", timeout="7d")
    assert cancel.to_config() == {
        "event": "user/deleted",
        "if": "event.data.user_id == async.data.user_id",
        "timeout": "1w",
    }
    with pytest.raises(wayline.ConfigError, match="if_ or match"):
        wayline.Cancel(event="user/deleted", match="data.id", if_="true")
    with pytest.raises(wayline.ConfigError, match=r"cancel\.match"):
        wayline.Cancel(event="user/deleted", match=" ")
