"""Events: what triggers functions, what ``wait_for_event`` returns, what ``send`` sends.

``Event`` is generic in its ``data`` so typed events give editor completion: a trigger with
``model=SignedUp`` hands the function an ``Event[SignedUp]`` whose ``data`` was validated
on the way in. Untyped events carry ``dict[str, Any]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic

from typing_extensions import TypeVar

from . import serialize

EventData = TypeVar("EventData", default=dict[str, Any])


def _empty_data() -> Any:
    return {}


@dataclass(frozen=True, kw_only=True)
class Event(Generic[EventData]):
    """An event: a name, a JSON (or typed) payload, and server-assigned metadata.

    Attributes:
        name: The event name, e.g. ``"user/signed-up"``.
        data: The payload: a dict, or an instance of the trigger's ``model``.
        id: An idempotency id (set it when sending to dedupe for 24 h); the server fills it.
        ts: Milliseconds since the epoch; filled with "now" when sent as 0.
        user: Deprecated user object, kept for wire compatibility.
        v: An optional schema version string.

    Example::

        client.send(wayline.Event(name="user/signed-up", data={"email": "ada@example.com"}))
    """

    name: str
    data: EventData = field(default_factory=_empty_data)
    id: str = ""
    ts: int = 0
    user: Mapping[str, Any] | None = None
    v: str | None = None


def to_wire(event: Event[Any], *, now_ms: int) -> dict[str, Any]:
    """The JSON object the event API takes (empty ``id`` left out, ``ts`` defaulted)."""
    if not isinstance(event, Event):
        raise TypeError(f"expected a wayline.Event, got {serialize.type_name(event)}")
    if not event.name:
        raise ValueError("an event needs a non-empty name")
    body: dict[str, Any] = {
        "name": event.name,
        "data": serialize.to_json(event.data, what=f'the data of event "{event.name}"'),
        "ts": event.ts or now_ms,
    }
    if event.id:
        body["id"] = event.id
    if event.user:
        body["user"] = serialize.to_json(event.user, what=f'the user of event "{event.name}"')
    if event.v:
        body["v"] = event.v
    return body


def from_wire(raw: Mapping[str, Any], model: object | None = None) -> Event[Any]:
    """An ``Event`` from its JSON; ``data`` is validated into ``model`` when one is given.

    Raises:
        ValueError: the data does not match ``model``.
    """
    name = str(raw.get("name") or "")
    data: Any = raw.get("data") or {}
    if model is not None:
        data = serialize.validate(data, model, what=f'the data of event "{name}"')
    elif not isinstance(data, Mapping):
        data = {}
    user = raw.get("user")
    version = raw.get("v")
    ts = raw.get("ts")
    return Event(
        name=name,
        data=dict(data) if isinstance(data, Mapping) and model is None else data,
        id=str(raw.get("id") or ""),
        ts=ts if isinstance(ts, int) and not isinstance(ts, bool) else 0,
        user=dict(user) if isinstance(user, Mapping) else None,
        v=str(version) if version else None,
    )
