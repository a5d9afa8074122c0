"""The engine's ``WorkQueue`` port on AWS: SQS for wake-ups up to 15 minutes away,
EventBridge Scheduler one-time schedules (delivering to the same queue) beyond.

Which port methods do what here::

    enqueue    due within 900 s -> SQS SendMessageBatch, DelaySeconds = ceil(at - now)
               later            -> Scheduler at(at - lead) -> the work queue, then the
                                   dispatcher re-delays it by the remaining seconds (so a
                                   long sleep still ends to the second, not the minute)
               CRON items whose trigger AWS cron can express -> nothing: per-trigger
                                   cron() schedules (made at app sync) own those ticks
    claim      [] : Lambda's SQS event source mapping receives (and leases) messages
    ack        no-op: the mapping deletes a message when its record succeeds
    defer      no-op: the dispatcher re-sends a blocked item with a delay itself
    wake       SQS SendMessageBatch, no delay: a parked item whose concurrency slot was
               released gets a fresh message now (its fallback re-check message, sent
               when it was blocked, then finds it stale or blocked: a harmless duplicate)
    next_due   None: nothing here polls

A send or a schedule that fails for a transient reason (throttling, 5xx) is retried a few
times with jittered backoff inside the call (``WorkSender``, ``Backoff``): a run whose save
succeeded should not wait for a redelivery to get its next item queued.

While the dispatcher drives a run (``taking``), the run's next call item, due now, is not
sent at all: the dispatcher takes it and calls it in the same invocation
(``aws.dispatcher``), so a sequential step costs no SQS message.

``enqueue`` is idempotent the way the engine needs: a Scheduler wake-up is named after its
item (a second create is refused), and a duplicate SQS message is harmless, because the
service ignores an item that is no longer in its run's ``pending`` set and every state
change is a conditional write.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial

from wayline.engine.model import WorkItem, WorkKind
from wayline.engine.ports import Clock

from .backoff import Backoff
from .scheduler import Schedules, is_aws_cron
from .sqs import MAX_DELAY_S, WorkSender

__all__ = ["SCHEDULER_LEAD_MS", "AwsWorkQueue", "Taken"]

SCHEDULER_LEAD_MS = 60_000
"""Scheduler fires within a minute of its time: aim a minute early, then re-delay."""


@dataclass
class Taken:
    """The call item of ``run_id`` the dispatcher took instead of sending (at most one)."""

    run_id: str
    items: list[WorkItem] = field(default_factory=list)

    def wants(self, item: WorkItem, now: int) -> bool:
        return (
            not self.items
            and item.run_id == self.run_id
            and item.kind is WorkKind.CALL
            and item.at <= now
        )


_TAKING: ContextVar[Taken | None] = ContextVar("wayline_taking", default=None)
"""The run this thread drives (``AwsWorkQueue.taking``): per thread, so the records a
container handles concurrently never take each other's items."""


class AwsWorkQueue:
    def __init__(
        self,
        *,
        sender: WorkSender,
        schedules: Schedules,
        queue_arn: str,
        clock: Clock,
        lead_ms: int = SCHEDULER_LEAD_MS,
        backoff: Backoff | None = None,
    ) -> None:
        self._sender = sender
        self._schedules = schedules
        self._queue_arn = queue_arn
        self._clock = clock
        self._lead_ms = lead_ms
        self._backoff = backoff or Backoff()

    @contextmanager
    def taking(self, run_id: str) -> Iterator[Taken]:
        """While open, the first call item of ``run_id`` due now that this thread enqueues
        is put in the ``Taken`` instead of SQS: the caller must call it or ``enqueue`` it
        (if it dies first, the record that started the drive comes back and re-sends it:
        ``Dispatcher``)."""
        taken = Taken(run_id)
        token = _TAKING.set(taken)
        try:
            yield taken
        finally:
            _TAKING.reset(token)

    def enqueue(self, items: Sequence[WorkItem]) -> None:
        now = self._clock.now_ms()
        taker = _TAKING.get()
        soon: list[tuple[WorkItem, int]] = []
        for item in items:
            if taker is not None and taker.wants(item, now):
                taker.items.append(item)
                continue
            if item.kind is WorkKind.CRON and item.cron and is_aws_cron(item.cron):
                continue
            delay_ms = item.at - now
            if delay_ms <= MAX_DELAY_S * 1000:
                soon.append((item, max(0, -(-delay_ms // 1000))))  # ceil: never early
            else:
                self._backoff.call(partial(self._wake_up, item))
        if soon:
            self._sender.send_delayed(soon)

    def _wake_up(self, item: WorkItem) -> bool:
        return self._schedules.wake_up(
            item, fire_at_ms=item.at - self._lead_ms, queue_arn=self._queue_arn
        )

    def claim(self, *, now: int, lease_ms: int, limit: int) -> list[WorkItem]:
        return []

    def ack(self, item_id: str) -> None:
        return None

    def defer(self, item_id: str, *, until: int) -> None:
        return None

    def wake(self, items: Sequence[WorkItem]) -> None:
        if items:
            self._sender.send(items)

    def next_due(self) -> int | None:
        return None
