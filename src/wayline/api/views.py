"""JSON shapes of the REST API, following Inngest's v1 objects (``{"data": ...}``)."""

from __future__ import annotations

from ..engine.model import JSON, Event, FunctionDef, Run, StepRecord
from ..engine.redrive import unused_seeds


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    import datetime as _dt

    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC).isoformat().replace("+00:00", "Z")


def event_view(event: Event) -> dict[str, JSON]:
    return {
        "internal_id": event.internal_id,
        "id": event.id,
        "name": event.name,
        "data": dict(event.data),
        "user": dict(event.user),
        "ts": event.ts,
        "v": event.v,
        "received_at": _iso(event.received_at),
        "replay_of": event.replay_of,
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
        "started_at": _iso(step.started_at) if step.started_at else None,
        "ended_at": _iso(step.ended_at),
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
        "run_started_at": _iso(run.started_at or run.created_at),
        "ended_at": _iso(run.ended_at),
        "output": run.output,
        "rerun_of": run.rerun_of,
        "original_run_id": run.rerun_of,  # Inngest's name for the same link
    }


def run_view(run: Run) -> dict[str, JSON]:
    view = run_summary(run)
    view["event_ids"] = list(run.event_ids)
    view["cancel_reason"] = run.cancel_reason
    view["steps"] = [step_view(s) for s in run.steps]
    view["reruns"] = list(run.reruns)
    if run.seeds:
        # A redrive's results the code never asked for: on a finished run, steps that are
        # no longer in the code; while it runs, steps it has not reached yet.
        key = "seeded_steps_not_in_code" if run.status.is_terminal else "seeded_steps_pending"
        view[key] = unused_seeds(run)
    return view


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
        "paused_at": _iso(paused_since),
    }
