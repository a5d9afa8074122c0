"""A transition's effects, saved with the run and applied after it (``engine.service``).

Enqueued items, added or dropped waits and published events live in records the run's
conditional write cannot cover, so a transition saves them in the run's ``outbox``, then
applies them (each idempotent by its id), then acknowledges the outbox. Whoever loads the
run next applies an outbox it finds there first, so a crash between the save and the
effects delays them and never loses them. This module builds an outbox from a decision
and runs the apply-then-acknowledge loop; what applying means is the service's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import replace

from ..errors import ValidationError
from .decision import Decision
from .events import internal_event
from .model import Outbox, Run
from .ports import RunStore

log = logging.getLogger("wayline.engine")

_FLUSHING: ContextVar[frozenset[str]] = ContextVar("wayline_flushing", default=frozenset())
"""Runs whose outbox this thread or task is applying right now (see ``flush``)."""


_NOTHING = Outbox()


def effects_of(decision: Decision, *, now: int, new_id: Callable[[], str]) -> Outbox:
    """The decision's effects as saved with the run: events get their ids now, so a
    re-publish after a crash is the same event."""
    if not (decision.enqueue or decision.waits or decision.drop_waits or decision.publish):
        return _NOTHING  # most transitions of a checkpointed run (a step saved) have none
    publish = []
    for raw in decision.publish:
        try:
            event = internal_event(raw).identify(new_id(), received_at=now, keep_internal=True)
        except ValidationError:
            log.exception(
                "internal event rejected",
                extra={"run_id": decision.run.id, "function_id": decision.run.function_id},
            )
            continue
        publish.append(event)
    return Outbox(
        enqueue=decision.enqueue,
        waits=decision.waits,
        drop_waits=decision.drop_waits,
        publish=tuple(publish),
    )


def merge(first: Outbox, then: Outbox) -> Outbox:
    """``first``'s effects followed by ``then``'s (an outer frame's unapplied outbox and a
    new transition's)."""
    if not first:
        return then
    if not then:
        return first
    return Outbox(
        enqueue=first.enqueue + then.enqueue,
        waits=first.waits + then.waits,
        drop_waits=first.drop_waits + then.drop_waits,
        publish=first.publish + then.publish,
    )


def flush(run: Run, runs: RunStore, apply: Callable[[Outbox], None]) -> Run:
    """Apply ``run``'s outbox, then acknowledge it; the run as acknowledged.

    Every effect is idempotent, so two workers flushing one outbox, or a flush repeated
    after a crash, change nothing twice. An error propagates with the outbox still saved:
    the caller's item fails, is redelivered, and the next load flushes again.

    Applying an outbox can lead back to the same run (it publishes ``invoked``, the child's
    start finds the child finished and flushes the child's ``finished``, which resumes this
    run): the inner frame then leaves the outbox to this one, which sees its
    acknowledgement lose to the inner save and flushes the newer outbox too.
    """
    flushing = _FLUSHING.get()
    if not run.outbox or run.id in flushing:
        return run
    token = _FLUSHING.set(flushing | {run.id})
    try:
        while True:
            apply(run.outbox)
            acknowledged = replace(run, outbox=Outbox())
            if runs.ack_outbox(acknowledged):
                return acknowledged
            newer = runs.get_run(run.id)
            if newer is None or not newer.outbox:
                return newer or acknowledged
            run = newer
    finally:
        _FLUSHING.reset(token)
