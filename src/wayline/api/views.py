"""JSON shapes of the REST API, following Inngest's v1 objects (``{"data": ...}``).

Every time the API returns is one format: ISO 8601 in UTC with milliseconds
(``2026-11-29T05:21:32.120Z``), whatever the stored time or the server's zone.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from ..engine.model import JSON, Attempt, Event, FunctionDef, Run, StepRecord, WorkKind
from ..engine.redrive import unused_seeds

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (None stays None)."""
    if ms is None:
        return None
    return _iso_second(ms // 1000) + f"{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=1024)
def _iso_second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.`` of an epoch second. Cached: the run lists that clients poll
    show the same few seconds over and over, and ``strftime`` was most of their cost."""
    moment = _EPOCH + timedelta(seconds=seconds)  # exact: no float rounding
    return moment.strftime("%Y-%m-%dT%H:%M:%S.")


def event_view(event: Event, matched: list[str] | None = None) -> dict[str, JSON]:
    """``matched``: the ids of the functions the event's name and data match; an event
    that matched none shows ``"matched": 0`` (a typo in a name, a filter that is off)."""
    view: dict[str, JSON] = {
        "internal_id": event.internal_id,
        "id": event.id,
        "name": event.name,
        "data": dict(event.data),
        "user": dict(event.user),
        "ts": event.ts,
        "v": event.v,
        "received_at": iso_ms(event.received_at),
        "replay_of": event.replay_of,
    }
    if matched is not None:
        view["matched"] = len(matched)
        view["functions"] = matched
    return view


def attempt_view(attempt: Attempt) -> dict[str, JSON]:
    return {
        "attempt": attempt.number,
        "status": attempt.status.value,
        "started_at": iso_ms(attempt.started_at),
        "ended_at": iso_ms(attempt.ended_at),
        "duration_ms": attempt.ended_at - attempt.started_at,
        "error": attempt.error,
        "retry_at": iso_ms(attempt.retry_at),
    }


def step_view(step: StepRecord) -> dict[str, JSON]:
    return {
        "id": step.id,
        "name": step.name,
        "op": step.op,
        "status": step.status.value,
        "attempts": step.attempts,
        "output": step.output,
        "error": step.error,
        "started_at": iso_ms(step.started_at) if step.started_at else None,
        "ended_at": iso_ms(step.ended_at),
        "history": [attempt_view(a) for a in step.tries],
        "seeded": step.seeded,
    }


def run_summary(run: Run) -> dict[str, JSON]:
    return {
        "run_id": run.id,
        "function_id": run.function_id,
        "app_id": run.app_id,
        "status": run.status.value,
        "event_id": run.event_ids[0] if run.event_ids else None,
        "batch_id": None,
        "cron": run.cron,
        "created_at": iso_ms(run.created_at),
        "run_started_at": iso_ms(run.started_at or run.created_at),
        "ended_at": iso_ms(run.ended_at),
        "output": run.output,
        "rerun_of": run.rerun_of,
        "original_run_id": run.rerun_of,  # Inngest's name for the same link
    }


def run_view(run: Run) -> dict[str, JSON]:
    view = run_summary(run)
    view["event_ids"] = list(run.event_ids)
    view["cancel_reason"] = run.cancel_reason
    view["steps"] = [step_view(s) for s in run.steps]
    view["call_failures"] = [attempt_view(a) for a in run.call_failures]
    view["next_retry_at"] = iso_ms(next_retry_at(run))
    view["reruns"] = list(run.reruns)
    if run.seeds:
        # A redrive's results the code never asked for: on a finished run, steps that are
        # no longer in the code; while it runs, steps it has not reached yet.
        key = "seeded_steps_not_in_code" if run.status.is_terminal else "seeded_steps_pending"
        view[key] = unused_seeds(run)
    return view


def next_retry_at(run: Run) -> int | None:
    """When the run's next retried call to the app is due (None when none is waiting)."""
    retries = [p.at for p in run.pending.values() if p.kind is WorkKind.CALL and p.attempt > 0]
    return min(retries, default=None)


def function_view(fn: FunctionDef, *, paused_since: int | None = None) -> dict[str, JSON]:
    return {
        "id": fn.id,
        "app_id": fn.app_id,
        "name": fn.name,
        "url": fn.url,
        "retries": fn.retries,
        "triggers": [
            {
                k: v
                for k, v in (("event", t.event), ("expression", t.expression), ("cron", t.cron))
                if v is not None
            }
            for t in fn.triggers
        ],
        "config": dict(fn.config),
        "paused": paused_since is not None,
        "paused_at": iso_ms(paused_since),
    }
