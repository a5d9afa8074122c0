"""Typed events end to end: one ``EventType`` per event name, shared by senders and triggers.

An ``EventType`` names an event and the model of its data. Build events with it
(``SIGNED_UP(SignedUp(email=...))`` is an ``Event[SignedUp]``: a wrong payload is a mypy
error), trigger functions with it (``SIGNED_UP.trigger()`` types ``ctx.event.data``), wait
for it (``wait_for_event(..., event=SIGNED_UP)``) and register it on the client
(``Wayline(events=[SIGNED_UP])``): every event of a registered name that the app sends with
``client.send`` or ``step.send_event``, typed or not, is validated at the call, so a bad
payload fails where it is made, not in a run later.

Example::

    class SignedUp(pydantic.BaseModel):
        email: str

    SIGNED_UP = wayline.EventType("user/signed-up", SignedUp)
    client = wayline.Wayline(app_id="shop", events=[SIGNED_UP])
    client.send(SIGNED_UP(SignedUp(email="ada@example.com")))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic, TypeVar

from wayline.errors import ConfigError, SerializationError, ValidationError

from . import serialize
from .events import Event
from .triggers import TriggerEvent

D = TypeVar("D")


class EventType(Generic[D]):
    """An event name and the type of its ``data`` (a pydantic model, dataclass, TypedDict).

    Example::

        ORDER_PLACED = wayline.EventType("order/placed", OrderPlaced)
        await ctx.step.send_event("placed", ORDER_PLACED(OrderPlaced(order_id=7)))
    """

    __slots__ = ("model", "name")

    def __init__(self, name: str, model: type[D]) -> None:
        if not _plain_name(name):
            raise ConfigError("an EventType needs a non-empty event name without wildcards")
        self.name = name
        self.model = model

    def __call__(self, data: D, *, id: str = "", ts: int = 0, v: str | None = None) -> Event[D]:
        """An event of this type carrying ``data``."""
        return Event(name=self.name, data=data, id=id, ts=ts, v=v)

    def trigger(self, *, expression: str | None = None) -> TriggerEvent[D]:
        """A trigger on this event; the function's context is typed by the model."""
        return TriggerEvent(event=self.name, expression=expression, model=self.model)

    def validate(self, data: object) -> D:
        """``data`` as the model (a dict is validated into it).

        Raises:
            ValidationError: the data does not fit; the message names the event and field.
        """
        try:
            value: D = serialize.validate(data, self.model, what=f'the data of event "{self.name}"')
        except (ValueError, SerializationError) as exc:
            raise ValidationError(str(exc), field="data") from None
        return value

    def __repr__(self) -> str:
        return f"EventType({self.name!r}, {getattr(self.model, '__qualname__', self.model)})"


class EventRegistry:
    """The client's event types by name; checks events before they leave the app."""

    def __init__(self, types: Iterable[EventType[Any]] = ()) -> None:
        self._types: dict[str, EventType[Any]] = {}
        for event_type in types:
            if not isinstance(event_type, EventType):
                raise ConfigError(f"events= takes wayline.EventType, got {event_type!r}")
            if event_type.name in self._types:
                raise ConfigError(f"event {event_type.name!r} is registered twice")
            self._types[event_type.name] = event_type

    def __bool__(self) -> bool:
        return bool(self._types)

    def get(self, name: str) -> EventType[Any] | None:
        return self._types.get(name)

    @property
    def names(self) -> Mapping[str, EventType[Any]]:
        return dict(self._types)

    def check(self, events: Sequence[Event[Any]]) -> list[Event[Any]]:
        """``events`` with registered ones validated (a dict payload becomes the model).

        Raises:
            ValidationError: an event's data does not fit its registered type.
        """
        if not self._types:
            return list(events)
        checked: list[Event[Any]] = []
        for event in events:
            event_type = self._types.get(event.name)
            if event_type is not None:
                event = replace(event, data=event_type.validate(event.data))
            checked.append(event)
        return checked


def _plain_name(name: object) -> bool:
    """A non-blank event name without wildcards (checked at runtime: callers may be untyped)."""
    return isinstance(name, str) and bool(name.strip()) and "*" not in name
