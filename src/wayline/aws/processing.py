"""What the ingest, dispatch and timers functions do with one record: Lambda-free logic the
handlers (``handlers/*.py``) only wire up, so it is testable without Lambda shapes.

Poison input (a message that is not a Wayline event or work item) is logged and dropped:
retrying cannot fix it, and it would only end in a DLQ. Everything else that fails raises,
so the record is reported in ``batchItemFailures`` and SQS delivers it again.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from wayline.engine.gate import SLOT_TTL_MS
from wayline.engine.model import JSON, WorkItem, WorkKind
from wayline.engine.ports import Clock
from wayline.engine.protocol import CallResponse
from wayline.engine.service import Blocked, PreparedCall, Service
from wayline.errors import ValidationError

from .eventbridge import parse_bus_message
from .s3 import BlobStore
from .scheduler import parse_cron_input
from .sqs import WorkSender, decode_item
from .work_queue import AwsWorkQueue

__all__ = [
    "BLOCKED_RETRY_S",
    "SWEEP_GRACE_MS",
    "Dispatcher",
    "Outcome",
    "fire_cron",
    "handle_timer",
    "ingest_message",
    "sweep",
]

log = logging.getLogger("wayline.aws")

BLOCKED_RETRY_S = 2
"""How soon an item held back by a full concurrency limit is delivered again."""
SWEEP_GRACE_MS = 15 * 60_000
"""A pending item this long overdue has lost its wake-up (see ``sweep``)."""


def ingest_message(service: Service, body: str, payloads: BlobStore | None = None) -> str | None:
    """Store and route the event in one ingest-queue message; its internal id, or None if
    the message is not a Wayline event (dropped). A redelivery routes nothing twice.
    ``payloads`` holds the events too large for the bus (claim checks)."""
    try:
        event = parse_bus_message(body, payloads)
    except ValidationError as exc:
        log.warning("bus message rejected: %s", exc, extra={"field": exc.field})
        return None
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


def sweep(service: Service, *, now: int, grace_ms: int = SWEEP_GRACE_MS) -> int:
    """Apply the outboxes left behind, and re-enqueue the work items of live runs that
    are long overdue; how many items were re-enqueued.

    A transition's effects are saved with the run (its outbox) and applied after the save;
    a function that dies in between leaves them there, and nothing else may touch the run
    again (its next item was among them): the sweep applies them. Every other pending item
    is in SQS or Scheduler, so only overdue ones are re-sent: a copy of an item that was
    not lost is a no-op when delivered.
    """
    overdue = [
        item
        for listed in service.store.runs.list_live_runs()
        for item in service.flush_outbox(listed).pending.values()
        if item.at < now - grace_ms
    ]
    if overdue:
        log.warning("re-enqueueing %d overdue work items", len(overdue))
        service.store.queue.enqueue(overdue)
    return len(overdue)


def handle_timer(service: Service, payload: JSON, *, now: int) -> str:
    """What the timers function was invoked for: ``cron`` (a tick of a cron schedule),
    ``sweep`` (the periodic repair schedule) or ``rejected``."""
    if isinstance(payload, dict) and payload.get("kind") == "sweep":
        sweep(service, now=now)
        return "sweep"
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
    """A concurrency limit is full: re-sent with a short delay."""
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
}


class Dispatcher:
    """One work item from the work queue: wait, fire, or call the app and apply the result."""

    def __init__(
        self,
        *,
        service: Service,
        queue: AwsWorkQueue,
        sender: WorkSender,
        invoke: Callable[[PreparedCall], CallResponse],
        clock: Clock,
        renew_every_s: float = SLOT_TTL_MS / 3000,
    ) -> None:
        self._service = service
        self._queue = queue
        self._sender = sender
        self._invoke = invoke
        self._clock = clock
        self._renew_every_s = renew_every_s

    def process_body(self, body: str) -> Dispatched:
        try:
            item = decode_item(body)
        except ValidationError as exc:
            log.warning("work message rejected: %s", exc)
            return Dispatched(Outcome.REJECTED)
        return self.process(item)

    def process(self, item: WorkItem) -> Dispatched:
        if item.at > self._clock.now_ms():
            self._queue.enqueue([item])
            return Dispatched(Outcome.EARLY, item)
        if item.kind is not WorkKind.CALL:
            self._service.fire(item)
            return Dispatched(Outcome.FIRED, item, item.function_id)
        prepared = self._service.prepare_call(item)
        if prepared is None:
            return Dispatched(Outcome.STALE, item)
        if isinstance(prepared, Blocked):
            delay_s = max(BLOCKED_RETRY_S, (prepared.retry_ms or 0) // 1000)
            self._sender.send([item], delay_s=delay_s)
            return Dispatched(Outcome.BLOCKED, item)
        started_at = self._clock.now_ms()
        try:
            response = self._call(prepared, item)
        finally:
            self._service.release_call(prepared, item)
        self._service.complete_call(item, response, started_at=started_at)
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
