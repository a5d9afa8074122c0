"""What the ingest, dispatch and timers functions do with one record: Lambda-free logic the
handlers (``handlers/*.py``) only wire up, so it is testable without Lambda shapes.

Poison input (a message that is not a Wayline event or work item) is logged and dropped:
retrying cannot fix it, and it would only end in a DLQ. Everything else that fails raises,
so the record is reported in ``batchItemFailures`` and SQS delivers it again (after a
backoff of seconds: ``handlers/_shared.py``).

Dispatch (work items -> calls) is ``aws.dispatcher``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from functools import partial

from wayline.engine.model import JSON, Run, WorkItem, WorkKind
from wayline.engine.service import Service
from wayline.errors import ValidationError

from .backoff import Backoff
from .dispatcher import BLOCKED_RETRY_S, CLAIM_MARGIN_MS, Dispatcher, Outcome
from .eventbridge import parse_bus_message
from .s3 import BlobStore
from .scheduler import parse_cron_input

__all__ = [
    "BLOCKED_RETRY_S",
    "CLAIM_MARGIN_MS",
    "SWEEP_GRACE_MS",
    "Dispatcher",
    "Outcome",
    "SweepReport",
    "fire_cron",
    "handle_timer",
    "ingest_message",
    "sweep",
]

log = logging.getLogger("wayline.aws")

SWEEP_GRACE_MS = 15 * 60_000
"""A pending item this long overdue has lost its wake-up (see ``sweep``)."""
SWEEP_PAGE = 200
"""Live runs read per page by the sweep."""


def ingest_message(
    service: Service,
    body: str,
    payloads: BlobStore | None = None,
    *,
    seen: dict[str, str] | None = None,
) -> str | None:
    """Store and route the event in one ingest-queue message; its internal id, or None if
    the message is not a Wayline event (dropped). A redelivery routes nothing twice.
    ``payloads`` holds the events too large for the bus (claim checks); ``seen`` gets the
    event's name (and seed), for the failure log."""
    try:
        event = parse_bus_message(body, payloads)
    except ValidationError as exc:
        log.warning("bus message rejected: %s", exc, extra={"field": exc.field})
        return None
    if seen is not None:
        seen["event_name"] = event.input.name
        if event.seed:
            seen["event_seed"] = event.seed
    (event_id,) = service.send_events([event.input], seed=event.seed)
    return event_id


def fire_cron(service: Service, payload: JSON) -> bool:
    """Fire the cron tick a ``cron()`` schedule delivered; False if it is not one."""
    try:
        function_id, cron, tick = parse_cron_input(payload)
    except ValidationError as exc:
        log.warning("timer payload rejected: %s", exc)
        return False
    item = WorkItem(
        id=f"cron:{function_id}:{cron}:{tick}",
        run_id="",
        kind=WorkKind.CRON,
        at=tick,
        function_id=function_id,
        cron=cron,
    )
    service.fire(item)
    return True


@dataclass(frozen=True, slots=True)
class SweepReport:
    runs: int = 0
    """Runs looked at (live, or finished with an outbox left to apply)."""
    resent: int = 0
    """Overdue work items re-enqueued."""
    failed: int = 0
    """Runs whose repair failed (logged; the rest went on)."""
    complete: bool = True
    """False if a page could not be read even after retries (the sweep stopped there)."""


def sweep(
    service: Service,
    *,
    now: int,
    grace_ms: int = SWEEP_GRACE_MS,
    page_size: int | None = None,
    backoff: Backoff | None = None,
) -> SweepReport:
    """Apply the outboxes left behind, and re-enqueue the work items of live runs that are
    long overdue.

    A transition's effects are saved with the run (its outbox) and applied after the save;
    a function that dies in between leaves them there, and nothing else may touch the run
    again (its next item was among them): the sweep applies them. Every other pending item
    is in SQS or Scheduler, so only overdue ones are re-sent: a copy of an item that was
    not lost is a no-op when delivered.

    Every such run is visited, a page of ``page_size`` at a time (oldest first, from a
    cursor: no cap on how many). Reads and repairs that fail for a transient reason are
    retried with jittered backoff; a run or page whose repair still fails is logged and
    skipped, and the sweep goes on with the rest. Only a page that cannot be *read* stops
    it (its cursor is unknown): the report says so, and the next sweep starts over.
    """
    backoff = backoff or Backoff()
    page_size = page_size or SWEEP_PAGE
    cursor: str | None = None
    report = SweepReport()
    while True:
        try:
            page = backoff.call(
                partial(service.store.runs.list_live_runs, limit=page_size, after=cursor)
            )
        except Exception:
            log.exception("sweep stopped: cannot read live runs", extra={"after": cursor})
            return replace(report, complete=False)
        report = _sweep_page(service, page, report, now=now, grace_ms=grace_ms, backoff=backoff)
        if len(page) < page_size:
            return report
        cursor = page[-1].id


def _sweep_page(
    service: Service,
    page: list[Run],
    report: SweepReport,
    *,
    now: int,
    grace_ms: int,
    backoff: Backoff,
) -> SweepReport:
    failed, overdue = report.failed, []
    for listed in page:
        try:
            run = backoff.call(partial(service.flush_outbox, listed))
        except Exception:
            failed += 1
            log.exception(
                "sweep: could not apply the outbox of run %s",
                listed.id,
                extra={"run_id": listed.id, "function_id": listed.function_id},
            )
            continue
        overdue += [i for i in run.pending.values() if i.at < now - grace_ms]
    resent = report.resent
    if overdue:
        try:
            backoff.call(partial(service.store.queue.enqueue, overdue))
        except Exception:
            failed += 1
            log.exception(
                "sweep: could not re-enqueue %d overdue items",
                len(overdue),
                extra={"run_ids": sorted({i.run_id for i in overdue})},
            )
        else:
            resent += len(overdue)
            log.warning("re-enqueued %d overdue work items", len(overdue))
    return SweepReport(report.runs + len(page), resent, failed)


def handle_timer(
    service: Service, payload: JSON, *, now: int, backoff: Backoff | None = None
) -> str:
    """What the timers function was invoked for: ``cron`` (a tick of a cron schedule),
    ``sweep`` (the periodic repair schedule; ``sweep_incomplete`` if part of it failed:
    logged, and the next sweep repairs it) or ``rejected``."""
    if isinstance(payload, dict) and payload.get("kind") == "sweep":
        report = sweep(service, now=now, backoff=backoff)
        log.info(
            "sweep done",
            extra={
                "runs": report.runs,
                "resent": report.resent,
                "failed": report.failed,
                "complete": report.complete,
            },
        )
        return "sweep" if report.complete and not report.failed else "sweep_incomplete"
    return "cron" if fire_cron(service, payload) else "rejected"
