"""Run start and finish: the run's first work item and the internal finish events.

Finish events are what onFailure handlers and ``step.invoke`` depend on, so their shapes
follow the Inngest executor exactly (research note §1.10 item 8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from .decision import Decision, add_item
from .model import JSON, FunctionDef, InvokeParent, Run, RunStatus, WorkKind

FUNCTION_FINISHED = "inngest/function.finished"
FUNCTION_FAILED = "inngest/function.failed"
FUNCTION_CANCELLED = "inngest/function.cancelled"
FUNCTION_INVOKED = "inngest/function.invoked"
SCHEDULED_TIMER = "inngest/scheduled.timer"

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
) -> Decision:
    """A new run with its discovery call due now."""
    run = Run(
        id=run_id,
        function_id=fn.id,
        app_id=fn.app_id,
        status=RunStatus.RUNNING,
        events=tuple(dict(e) for e in events),
        event_ids=tuple(event_ids),
        created_at=now,
        started_at=now,
        version=1,
        cron=cron,
        parent=parent,
    )
    run, item = add_item(run, WorkKind.CALL, at=now)
    return Decision(run=run, enqueue=(item,))


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
        ended_at=now,
        pending={},
        waiting={},
        planned=frozenset(),
        cancel_reason=reason,
    )
    return Decision(
        run=done,
        drop_waits=tuple(w.id for w in run.waiting.values()),
        publish=finish_events(done),
    )


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
