"""What the ingest, dispatch and timers functions do with one record: Lambda-free logic the
handlers (``handlers/*.py``) only wire up, so it is testable without Lambda shapes.

Poison input (a message that is not a Wayline event or work item) is logged and dropped:
retrying cannot fix it, and it would only end in a DLQ. Everything else that fails raises,
so the record is reported in ``batchItemFailures`` and SQS delivers it again (after a
backoff of seconds: ``handlers/_shared.py``).

A call item is *claimed* before the app is called: a lease ``claim:<item id>`` held by this
delivery (message id and receive count) until the call's result is saved (then left to
expire: the item is done), or released at once if the call failed. SQS is
at-least-once, and two containers can hold the same item at once (a duplicate message, or
a redelivery while the first is still calling); the second finds the claim taken and
calls nothing (``Outcome.BUSY``): it comes back once the claim must have lapsed, so a
holder that died delays the item by one claim lifetime (call timeout + 60 s) at most, and
one that finished has made the item stale by then.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from wayline.engine.gate import SLOT_TTL_MS
from wayline.engine.model import JSON, Run, WorkItem, WorkKind
from wayline.engine.ports import Clock
from wayline.engine.protocol import CallResponse
from wayline.engine.service import Blocked, PreparedCall, Service
from wayline.errors import ValidationError

from .backoff import Backoff
from .eventbridge import parse_bus_message
from .s3 import BlobStore
from .scheduler import parse_cron_input
from .sqs import WorkSender, decode_item
from .work_queue import AwsWorkQueue

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

BLOCKED_RETRY_S = 2
"""How soon an item held back by a full concurrency limit is delivered again."""
CLAIM_MARGIN_MS = 60_000
"""A claim outlives the app call by this much (time to save the result)."""
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


class Outcome(enum.StrEnum):
    EARLY = "early"
    """Not due yet (a Scheduler wake-up lands up to a minute early): re-delayed."""
    FIRED = "fired"
    """A sleep, wait timeout, run timeout, debounce or batch timer was applied."""
    CALLED = "called"
    """The SDK was called and its response applied."""
    STALE = "stale"
    """The run moved on (a duplicate delivery, or the run finished): nothing to do."""
    BLOCKED = "blocked"
    """A concurrency limit is full: parked (a release of its slot wakes it) and re-sent
    with the long fallback delay (``Blocked.retry_ms``)."""
    BUSY = "busy"
    """Another delivery of the same item holds its claim: handed back to SQS for later."""
    REJECTED = "rejected"
    """Not a work item: dropped."""


@dataclass(frozen=True, slots=True)
class Dispatched:
    outcome: Outcome
    item: WorkItem | None = None
    function_id: str | None = None
    status: int | None = None
    """The SDK's HTTP status (0: unreachable), for calls."""

    def metric_names(self) -> list[str]:
        """The CloudWatch (EMF) counters this outcome adds to (see infra/dashboard.json)."""
        names = [_METRICS.get(self.outcome, "ItemsSkipped")]
        if self.status is not None and self.status not in (200, 206):
            names.append("SdkCallsFailed")
        return names


_METRICS = {
    Outcome.CALLED: "SdkCalls",
    Outcome.BLOCKED: "ItemsBlocked",
    Outcome.FIRED: "WakeupsFired",
    Outcome.EARLY: "WakeupsRedelayed",
    Outcome.BUSY: "ItemsClaimedElsewhere",
}


class Dispatcher:
    """One work item from the work queue: wait, fire, or call the app and apply the result.

    ``checkpoint(name)`` is called at the named points of a call (``before_call``: the item
    is claimed; ``after_answer``: the app answered, nothing is saved yet; ``completed``: the
    result and its effects are saved), a seam that lets tests stop a dispatch there the way
    a dying container would.
    """

    def __init__(
        self,
        *,
        service: Service,
        queue: AwsWorkQueue,
        sender: WorkSender,
        invoke: Callable[[PreparedCall], CallResponse],
        clock: Clock,
        renew_every_s: float = SLOT_TTL_MS / 3000,
        claim_ttl_ms: int = 300_000 + CLAIM_MARGIN_MS,
        checkpoint: Callable[[str], None] | None = None,
    ) -> None:
        self._service = service
        self._queue = queue
        self._sender = sender
        self._invoke = invoke
        self._clock = clock
        self._renew_every_s = renew_every_s
        self._claim_ttl_ms = claim_ttl_ms
        self.busy_retry_s = -(-claim_ttl_ms // 1000)
        """How soon a delivery that found its item claimed comes back: by then the claim
        has been released or has lapsed (its holder died), whichever happened."""
        self.checkpoint: Callable[[str], None] = checkpoint or (lambda _name: None)

    def process_body(
        self, body: str, *, delivery: str = "", seen: dict[str, str] | None = None
    ) -> Dispatched:
        """Decode and process one message. ``delivery`` names this receipt of it (the
        claim's holder); ``seen`` is filled with run, item and function ids as they become
        known, for the failure log if something raises."""
        try:
            item = decode_item(body)
        except ValidationError as exc:
            log.warning("work message rejected: %s", exc)
            return Dispatched(Outcome.REJECTED)
        if seen is not None:
            seen.update(run_id=item.run_id, item_id=item.id)
            if item.function_id:
                seen["function_id"] = item.function_id
        return self.process(item, delivery=delivery, seen=seen)

    def process(
        self, item: WorkItem, *, delivery: str = "", seen: dict[str, str] | None = None
    ) -> Dispatched:
        if item.at > self._clock.now_ms():
            self._queue.enqueue([item])
            return Dispatched(Outcome.EARLY, item)
        if item.kind is not WorkKind.CALL:
            self._service.fire(item)
            return Dispatched(Outcome.FIRED, item, item.function_id)
        claim = _claim_key(item)
        holder = delivery or f"anonymous:{self._service.new_id()}"
        leases = self._service.store.leases
        if not leases.acquire(
            claim, holder, limit=1, now=self._clock.now_ms(), ttl_ms=self._claim_ttl_ms
        ):
            log.info("work item claimed by another delivery", extra={"item_id": item.id})
            return Dispatched(Outcome.BUSY, item)
        try:
            done = self._call_claimed(item, seen)
        except Exception:
            leases.release(claim, holder)  # let the redelivery in without waiting the TTL
            raise
        if done.outcome is not Outcome.CALLED:
            leases.release(claim, holder)  # the item is tried again (blocked) or stale
        # A called item's result is saved: the item is no longer pending, and ids are never
        # reused, so its claim is left to expire (DynamoDB's TTL deletes it for free)
        # rather than released (a read and a write per call).
        return done

    def _call_claimed(self, item: WorkItem, seen: dict[str, str] | None) -> Dispatched:
        prepared = self._service.prepare_call(item)
        if prepared is None:
            return Dispatched(Outcome.STALE, item)
        if isinstance(prepared, Blocked):
            delay_s = max(BLOCKED_RETRY_S, (prepared.retry_ms or 0) // 1000)
            self._sender.send([item], delay_s=delay_s)
            return Dispatched(Outcome.BLOCKED, item)
        if seen is not None:
            seen["function_id"] = prepared.fn.id
        started_at = self._clock.now_ms()
        self.checkpoint("before_call")
        try:
            response = self._call(prepared, item)
        finally:
            self._service.release_call(prepared, item)
        self.checkpoint("after_answer")
        self._service.complete_call(item, response, started_at=started_at)
        self.checkpoint("completed")
        return Dispatched(Outcome.CALLED, item, prepared.fn.id, response.status)

    def _call(self, prepared: PreparedCall, item: WorkItem) -> CallResponse:
        """The SDK call; concurrency slots are renewed while it runs, so they lapse only
        if this container dies."""
        if not prepared.slots:
            return self._invoke(prepared)
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self._renew_every_s):
                self._service.renew_call(prepared, item)

        renewer = threading.Thread(target=renew, name=f"renew-{item.id}", daemon=True)
        renewer.start()
        try:
            return self._invoke(prepared)
        finally:
            done.set()
            renewer.join()


def _claim_key(item: WorkItem) -> str:
    return f"claim:{item.id}"
