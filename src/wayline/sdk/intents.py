"""Step arguments as the planner and the wire want them: intents, durations, events.

Shared by the async and sync step shells, so the two never disagree on a step's opcode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from wayline.engine.durations import format_duration, parse_duration, parse_time

from . import planner, serialize
from .events import Event, from_wire, to_wire
from .execution import StepCore, iso_utc
from .planner import Intent, Replay


def duration_ms(value: str | timedelta, field: str) -> int:
    if isinstance(value, timedelta):
        ms = round(value.total_seconds() * 1000)
        if ms < 0:
            raise ValueError(f"{field} must not be negative, got {value}")
        return ms
    return parse_duration(value, field=field)


def sleep_until(step_id: str, until: datetime | str) -> Intent:
    if isinstance(until, str):
        until = datetime.fromtimestamp(parse_time(until, field="sleep_until") / 1000, UTC)
    elif until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    # The official SDK puts the wake-up time in the op's name, as ISO-8601 UTC.
    return Intent(step_id, planner.SLEEP, name=iso_utc(until))


def sleep(step_id: str, duration: str | timedelta) -> Intent:
    """A relative sleep, as the TypeScript SDK sends it: the server adds the duration to
    its own clock, so app<->server clock skew and test-clock moves do not shift the wake-up
    (an absolute ``app_now + duration`` did both; issue 12, item 7)."""
    text = format_duration(duration_ms(duration, "sleep duration"))
    return Intent(step_id, planner.SLEEP, name=text, opts={"duration": text})


def wait_for_event(
    step_id: str, event: str, timeout: str | timedelta, if_: str | None, match: str | None
) -> Intent:
    if if_ is not None and match is not None:
        raise ValueError("wait_for_event takes if_ or match, not both")
    if match is not None:
        if_ = f"event.{match} == async.{match}"
    timeout_text = format_duration(duration_ms(timeout, "wait_for_event timeout"))
    return Intent(
        step_id, planner.WAIT_FOR_EVENT, name=event, opts={"if": if_, "timeout": timeout_text}
    )


def wait_for_signal(step_id: str, signal: str, timeout: str | timedelta) -> Intent:
    if not signal:
        raise ValueError("wait_for_signal needs a non-empty signal name")
    timeout_text = format_duration(duration_ms(timeout, "wait_for_signal timeout"))
    # The JS SDK's wire shape (the Python SDK has no signals): the name is the signal.
    opts = {"signal": signal, "timeout": timeout_text}
    return Intent(step_id, planner.WAIT_FOR_SIGNAL, name=signal, opts=opts)


def invoke(
    core: StepCore,
    step_id: str,
    function_id: str,
    data: object,
    timeout: str | timedelta | None,
    v: str | None,
) -> Intent:
    payload = serialize.to_json(data or {}, what=f'the data of invoke step "{step_id}"')
    if core.middleware:  # e.g. the encryption middleware seals it
        payload = core.middleware.transform_invoke(function_id, payload)
    timeout_text = (
        None if timeout is None else format_duration(duration_ms(timeout, "invoke timeout"))
    )
    opts = {
        "function_id": function_id,
        "payload": {"data": payload, "v": v},
        "timeout": timeout_text,
    }
    return Intent(step_id, planner.INVOKE, opts=opts)


def waited_event(core: StepCore, decided: Replay, model: object | None) -> Event[Any] | None:
    raw = core.replay(decided, None)
    if raw is None:
        return None  # timed out
    return from_wire(raw if isinstance(raw, Mapping) else {}, model)


def batch(events: Event[Any] | Sequence[Event[Any]]) -> list[Event[Any]]:
    return [events] if isinstance(events, Event) else list(events)


def wire_events(core: StepCore, batch: list[Event[Any]]) -> list[dict[str, Any]]:
    # Serialized when the step body runs, so "now" is when the events are really sent.
    now_ms = int(core.hooks.now().timestamp() * 1000)
    return [to_wire(e, now_ms=now_ms) for e in batch]
