"""Operations on existing runs and events: rerun, redrive from the failed step, replay.

Sequenced over the service the same way ``gate`` and ``windows`` are: the decisions are
pure (``engine.redrive``), the writes go through the service's ports. A rerun starts
through ``Service.start`` like any run, so flow control (concurrency, throttle, rate
limit, singleton, a paused function) applies to it exactly as to a new event.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import ConflictError, NotFoundError
from . import redrive
from .events import RESERVED_PREFIX
from .model import Event, Run

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger("wayline.engine")


class RunOps:
    def __init__(self, service: Service) -> None:
        self._service = service

    def rerun(
        self, run_id: str, *, mode: str = redrive.FROM_START, new_id: str | None = None
    ) -> Run:
        """Start a new run of ``run_id``'s function with the same events (a batch keeps all
        of them); ``mode`` ``failed_step`` seeds it with the old run's completed steps.

        Raises ``NotFoundError`` for an unknown run and ``ConflictError`` when the run
        cannot be rerun (a redrive of a run that did not fail, a function since removed).
        Returns the new run as stored (it may be Skipped if flow control refused it).
        With ``new_id`` (a bulk job's derived id) a repeated call returns the run made
        the first time.
        """
        store = self._service.store
        old = store.runs.get_run(run_id)
        if old is None:
            raise NotFoundError(f"run {run_id!r} not found")
        refusal = redrive.refusal(old, mode)
        if refusal:
            raise ConflictError(refusal)
        fn = store.apps.get_function(old.function_id)
        if fn is None:
            raise ConflictError(
                f"function {old.function_id!r} of run {run_id} is no longer registered"
            )
        if not old.events:
            raise ConflictError(f"run {run_id} has no triggering event to rerun with")
        made = store.runs.get_run(new_id) if new_id else None
        if made is not None:
            self._service.update_run(old.id, lambda run, env: redrive.with_rerun(run, made.id))
            return made
        new_id = new_id or self._service.new_id()
        started = self._service.start(
            fn,
            _events_of(old),
            cron_expr=old.cron,
            key=f"rerun:{new_id}",
            run_id=new_id,
            shape=lambda run: redrive.as_rerun(run, old, mode),
        )
        new = store.runs.get_run(new_id)
        if new is None:  # a bulk tick delivered twice at once: the other copy starts it
            raise ConflictError(f"run {run_id} could not be rerun (a concurrent rerun)")
        self._service.update_run(old.id, lambda run, env: redrive.with_rerun(run, new_id))
        log.info(
            "run rerun",
            extra={
                "run_id": new_id,
                "rerun_of": old.id,
                "mode": mode,
                "seeded": len(new.seeds),
                "started": started is not None,
            },
        )
        return new

    def replay_event(self, internal_id: str) -> Event:
        """Store a new event with the same name and data as ``internal_id`` and route it.

        It gets a fresh id (the old one would be deduplicated by every function it
        started) and ``replay_of`` pointing at the original.
        """
        old = self._service.store.events.get_event(internal_id)
        if old is None:
            raise NotFoundError(f"event {internal_id!r} not found")
        if old.name.lower().startswith(RESERVED_PREFIX):
            # Wayline's own events say a run started, finished or was cancelled: sent
            # again, they would resume invokers and failure handlers a second time.
            raise ConflictError(
                f"event {internal_id!r} is {old.name!r}, which Wayline emits itself; "
                f"events named {RESERVED_PREFIX}* cannot be replayed"
            )
        new_id, now = self._service.new_id(), self._service.now()
        event = replace(
            old, internal_id=new_id, id=new_id, ts=now, received_at=now, replay_of=old.internal_id
        )
        self._service.ingest(event)
        log.info("event replayed", extra={"event_id": new_id, "replay_of": internal_id})
        return event

    def set_paused(self, function_id: str, *, paused: bool) -> bool:
        """Pause or resume a function (see ``engine.pause``); True if that changed it."""
        if self._service.store.apps.get_function(function_id) is None:
            raise NotFoundError(f"function {function_id!r} not found")
        changed = self._service.pauses.set(function_id, paused=paused, now=self._service.now())
        log.info(
            "function %s", "paused" if paused else "resumed", extra={"function_id": function_id}
        )
        return changed


def _events_of(run: Run) -> list[Event]:
    """The run's triggering events rebuilt from the copies the run holds (the event log
    may have expired them): the same ids, so the SDK sees the very same events."""
    events = []
    for internal_id, wire in zip(run.event_ids, run.events, strict=False):
        events.append(
            Event(
                internal_id=internal_id,
                name=str(wire.get("name", "")),
                data=dict(wire.get("data") or {}),
                user=dict(wire.get("user") or {}),
                id=str(wire.get("id", internal_id)),
                ts=int(wire.get("ts", 0)),
                v=wire.get("v"),
            )
        )
    return events
