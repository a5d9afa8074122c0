"""Event validation and normalization for the event API. Every limit lives here.

Limits (documented in the README): at most ``MAX_EVENTS_PER_REQUEST`` events and
``MAX_REQUEST_BYTES`` per request, ``MAX_EVENT_BYTES`` per event, names up to
``MAX_NAME_LENGTH`` characters without control characters that do not start with
``inngest/`` (in any case), ``ts`` between 1980 and 2100, values as ``json_input``
admits them (finite numbers, valid Unicode, nesting within its limit). A request is
validated whole before anything is stored: one bad event rejects the request, and the
error names its index and field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ValidationError
from . import json_input
from .ids import seeded_event_id
from .model import JSON, Event

MAX_EVENTS_PER_REQUEST = 5000
"""Inngest's limit on events per request."""
MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""Ours: Inngest documents no cap on the request, only per event; 16 MiB bounds what one
request may make the server hold (the official SDKs send a batch of 8 x 1 MiB in one)."""
MAX_EVENT_BYTES = 3 * 1024 * 1024
"""Inngest's per-event limit (its event API's stream parser caps each event at 3 MiB)."""
MAX_NAME_LENGTH = 512
MAX_ID_LENGTH = 512
MIN_TS_MS = 315532800000  # 1980-01-01T00:00:00Z
MAX_TS_MS = 4102444800000  # 2100-01-01T00:00:00Z
RESERVED_PREFIX = "inngest/"
SEED_HEADER = "x-inngest-event-id-seed"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class EventInput:
    """A validated, not yet identified event."""

    name: str
    data: Mapping[str, JSON]
    user: Mapping[str, JSON]
    id: str | None
    ts: int | None
    v: str | None

    def identify(self, internal_id: str, *, received_at: int, keep_internal: bool = False) -> Event:
        """The stored event: ``id`` defaults to the internal id, ``ts`` to receipt time.

        ``data._inngest`` is removed from user events: only the engine may set it.
        """
        data = (
            dict(self.data)
            if keep_internal
            else {k: v for k, v in self.data.items() if k != "_inngest"}
        )
        return Event(
            internal_id=internal_id,
            name=self.name,
            data=data,
            user=self.user,
            id=self.id or internal_id,
            ts=self.ts or received_at,
            v=self.v,
            received_at=received_at,
        )


def parse_request(body: bytes) -> list[EventInput]:
    """Parse and validate a whole event API body (one event object or an array).

    The HTTP API streams bodies through ``event_stream.EventStream`` instead; this is the
    same parser fed once, for callers that already hold the bytes.
    """
    from .event_stream import parse_body  # event_stream builds on this module

    return parse_body(body)


def validate_event(
    raw: JSON, *, index: int = 0, internal: bool = False, size: int | None = None
) -> EventInput:
    """Validate one event map. ``internal`` allows the reserved ``inngest/`` names;
    ``size`` is the event's size as the client sent it (else its compact JSON's)."""
    where = f"events[{index}]"
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where} must be a JSON object", field=where)
    json_input.check(raw, path=where)
    if size is None:
        size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_EVENT_BYTES:
        raise ValidationError(
            f"{where} is {size} bytes; the limit is {MAX_EVENT_BYTES} bytes per event",
            field=where,
        )
    name = _name(raw.get("name"), where, internal=internal)
    return EventInput(
        name=name,
        data=_object(raw.get("data"), f"{where}.data"),
        user=_object(raw.get("user"), f"{where}.user"),
        id=_optional_str(raw.get("id"), f"{where}.id", MAX_ID_LENGTH),
        ts=_ts(raw.get("ts"), f"{where}.ts"),
        v=_optional_str(raw.get("v"), f"{where}.v", MAX_ID_LENGTH),
    )


def _name(value: JSON, where: str, *, internal: bool) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{where}.name is required and must be a non-empty string", field=f"{where}.name"
        )
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"{where}.name is {len(value)} characters; the limit is {MAX_NAME_LENGTH}",
            field=f"{where}.name",
        )
    check_name(value, f"{where}.name")
    if not internal and value.lower().startswith(RESERVED_PREFIX):
        raise ValidationError(
            f"{where}.name {value!r} uses the reserved prefix {RESERVED_PREFIX!r}",
            field=f"{where}.name",
        )
    return value


def check_name(name: str, field: str) -> None:
    """Event names (and trigger names) are printable: no control or line-separator
    characters, which would forge lines in logs and never match a typed name."""
    control = _CONTROL.search(name)
    if control is not None:
        raise ValidationError(
            f"{field} contains the control character {control.group()!r} at position "
            f"{control.start()}; event names must be printable",
            field=field,
        )


def _object(value: JSON, field: str) -> Mapping[str, JSON]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError(f"{field} must be a JSON object", field=field)
    return value


def _optional_str(value: JSON, field: str, limit: int) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", field=field)
    if len(value) > limit:
        raise ValidationError(
            f"{field} is {len(value)} characters; the limit is {limit}", field=field
        )
    return value


def _ts(value: JSON, field: str) -> int | None:
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(
            f"{field} must be a number of milliseconds since the epoch", field=field
        )
    if not MIN_TS_MS <= value <= MAX_TS_MS:
        raise ValidationError(
            f"{field} {value} is outside 1980-01-01..2100-01-01 (milliseconds since the epoch)",
            field=field,
        )
    return int(value)


def check_seed(header: str | None) -> str | None:
    """The ``x-inngest-event-id-seed`` header if well formed, None if absent; a malformed
    one is refused rather than silently ignored (a client relying on it for idempotent
    retries would otherwise get fresh ids on every retry)."""
    if header is None or not header.strip():
        return None
    if seeded_event_id(header, 1) is None:
        raise ValidationError(
            f"header {SEED_HEADER} must be '<unix milliseconds>,<base64 of 10 bytes>', "
            f"got {header[:80]!r}",
            field=SEED_HEADER,
        )
    return header


def internal_event(raw: Mapping[str, JSON]) -> EventInput:
    """An event the engine emits itself (``inngest/function.finished`` and friends)."""
    return validate_event(raw, internal=True)


def dedupe_key(function_id: str, event: Event) -> str:
    """The 24 h run-idempotency key of an event, per function: its user-supplied ``id``
    (Inngest's event-id dedupe), else its internal id (so a redelivered or re-routed event
    never starts a second run)."""
    if event.id == event.internal_id:
        return f"event:{function_id}:{event.internal_id}"
    return f"event-id:{function_id}:{event.id}"
