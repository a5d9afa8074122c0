"""Run start and finish: the run's first work item and the internal finish events.

Finish events are what onFailure handlers and ``step.invoke`` depend on, so their shapes
follow the Inngest executor exactly (research note §1.10 item 8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from . import expr
from .decision import Decision, add_item
from .flow.config import CancelOn, flow_config
from .model import (
    JSON,
    FunctionDef,
    InvokeParent,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
    Wait,
    WaitKind,
    WorkKind,
)

FUNCTION_FINISHED = "inngest/function.finished"
FUNCTION_FAILED = "inngest/function.failed"
FUNCTION_CANCELLED = "inngest/function.cancelled"
FUNCTION_INVOKED = "inngest/function.invoked"
SCHEDULED_TIMER = "inngest/scheduled.timer"

TIMEOUT_START = "start"
TIMEOUT_FINISH = "finish"
MAX_CANCEL_WAIT_MS = 366 * 24 * 3600 * 1000
"""A ``cancelOn`` without a timeout listens for the longest a run may sleep."""

_NO_FINISH_EVENTS = frozenset({FUNCTION_FINISHED, FUNCTION_FAILED})
"""Runs triggered by these emit no finish events, so failure handlers cannot loop."""


def start_run(
    *,
    run_id: str,
    fn: FunctionDef,
    events: Sequence[Mapping[str, JSON]],
    event_ids: Sequence[str],
    now: int,
    cron: str | None = None,
    parent: InvokeParent | None = None,
    first_call_at: int | None = None,
) -> Decision:
    """A new, queued run with its discovery call due at ``first_call_at`` (default now:
    throttle and priority move it), its ``cancelOn`` listeners and its ``timeouts.start``
    timer."""
    flow = flow_config(fn)
    run = Run(
        id=run_id,
        function_id=fn.id,
        app_id=fn.app_id,
        status=RunStatus.QUEUED,
        events=tuple(dict(e) for e in events),
        event_ids=tuple(event_ids),
        created_at=now,
        version=1,
        cron=cron,
        parent=parent,
    )
    run = replace(run, cancel_waits=cancel_waits(run, flow.cancel, now=now))
    run, item = add_item(run, WorkKind.CALL, at=now if first_call_at is None else first_call_at)
    enqueue = [item]
    if flow.start_timeout_ms is not None:
        run, timer = add_item(
            run, WorkKind.TIMEOUT, at=now + flow.start_timeout_ms, step_id=TIMEOUT_START
        )
        enqueue.append(timer)
    return Decision(run=run, enqueue=tuple(enqueue), waits=run.cancel_waits)


def skipped_run(
    *,
    run_id: str,
    fn: FunctionDef,
    events: Sequence[Mapping[str, JSON]],
    event_ids: Sequence[str],
    now: int,
    reason: str,
) -> Run:
    """The record of a run flow control did not start: visible, terminal, no effects."""
    return Run(
        id=run_id,
        function_id=fn.id,
        app_id=fn.app_id,
        status=RunStatus.SKIPPED,
        events=tuple(dict(e) for e in events),
        event_ids=tuple(event_ids),
        created_at=now,
        version=1,
        ended_at=now,
        cancel_reason=reason,
    )


def cancel_waits(run: Run, cancels: Sequence[CancelOn], *, now: int) -> tuple[Wait, ...]:
    """One pause per ``cancelOn`` entry, with ``event.*`` replaced by the trigger's values.

    An entry whose interpolated condition is the literal ``false`` can never match, so no
    pause is created for it (as the Inngest executor does).
    """
    trigger = run.events[0] if run.events else {}
    waits = []
    for index, cancel in enumerate(cancels):
        condition = expr.interpolate(cancel.condition, event=trigger) if cancel.condition else None
        if condition and expr.is_literal_false(condition):
            continue
        waits.append(
            Wait(
                id=f"{run.id}/cancel/{index}",
                run_id=run.id,
                step_id=f"cancel:{index}",
                kind=WaitKind.CANCEL,
                event=cancel.event,
                expression=condition,
                expires_at=now + (cancel.timeout_ms or MAX_CANCEL_WAIT_MS),
                created_at=now,
            )
        )
    return tuple(waits)


def standard_error(output: JSON) -> dict[str, JSON]:
    """The server's "standard error" built from a failed run's output."""
    source = output if isinstance(output, Mapping) else {}
    error: dict[str, JSON] = {
        "error": "invalid status code: 500",
        "name": str(source.get("name") or "Error"),
        "message": str(source.get("message") or source.get("error") or "function failed"),
    }
    if source.get("stack"):
        error["stack"] = source["stack"]
    return error


def finish(
    run: Run, status: RunStatus, output: JSON, *, now: int, reason: str | None = None
) -> Decision:
    """Move ``run`` to a terminal status, dropping every pending wake-up and wait."""
    done = replace(
        run,
        status=status,
        output=output,
        steps=_close_open_steps(run.steps, status, now=now),
        ended_at=now,
        pending={},
        waiting={},
        cancel_waits=(),
        planned=frozenset(),
        cancel_reason=reason,
    )
    return Decision(
        run=done,
        drop_waits=tuple(w.id for w in (*run.waiting.values(), *run.cancel_waits)),
        publish=finish_events(done),
    )


_OPEN = frozenset({StepStatus.RUNNING, StepStatus.SLEEPING, StepStatus.WAITING})


def _close_open_steps(
    steps: tuple[StepRecord, ...], status: RunStatus, *, now: int
) -> tuple[StepRecord, ...]:
    """Steps still open when a run is cancelled or fails end with it: one whose last try
    failed shows Failed, the others (sleeping, waiting, not yet tried) Cancelled. A
    completed run leaves them as they are (a race's losing branches never ran)."""
    if status not in (RunStatus.CANCELLED, RunStatus.FAILED):
        return steps
    closed = []
    for step in steps:
        if step.status in _OPEN:
            failed = status is RunStatus.FAILED and step.error is not None
            ended = StepStatus.FAILED if failed else StepStatus.CANCELLED
            step = replace(step, status=ended, ended_at=now)
        closed.append(step)
    return tuple(closed)


def finish_events(run: Run) -> tuple[dict[str, JSON], ...]:
    trigger = run.events[0] if run.events else {}
    if trigger.get("name") in _NO_FINISH_EVENTS:
        return ()
    base: dict[str, JSON] = {
        "function_id": run.function_id,
        "run_id": run.id,
        "event": dict(trigger),
        "events": [dict(e) for e in run.events],
    }
    finished = {**base, "_inngest": {"status": run.status.value.lower()}}
    if run.parent is not None:
        finished["correlation_id"] = run.parent.correlation_id
    events: list[dict[str, JSON]] = []
    if run.status is RunStatus.COMPLETED:
        finished["result"] = run.output
    elif run.status is RunStatus.FAILED:
        error = standard_error(run.output)
        finished["error"] = error
        events.append({"name": FUNCTION_FAILED, "id": run.id, "data": {**base, "error": error}})
    else:
        cancelled = {
            "error": "function cancelled",
            "name": "Error",
            "message": "function cancelled",
        }
        finished["error"] = cancelled
        events.append({"name": FUNCTION_CANCELLED, "data": {**base, "error": cancelled}})
    events.insert(0, {"name": FUNCTION_FINISHED, "data": finished})
    return tuple(events)
