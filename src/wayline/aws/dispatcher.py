"""The Lambda driver of the call cycle (``wayline.calls.cycle``): one work item from the
work queue is waited for, fired, or called, and then the run is driven on.

**Claims.** A call item is *claimed* before the app is called: a lease ``claim:<item id>``
held by this delivery (message id and receive count) until the call's result is saved
(then left to expire: the item is done), or released at once if the call failed. SQS is
at-least-once, and two containers can hold the same item at once (a duplicate message, or
a redelivery while the first is still calling); the second finds the claim taken and
calls nothing (``Outcome.BUSY``): it comes back once the claim must have lapsed, so a
holder that died delays the item by one claim lifetime (call timeout + 60 s) at most, and
one that finished has made the item stale by then.

**Driving on.** When a call's result makes the run's next call due now (a sequential
step, the discovery call after it), that item is not sent to SQS: the work queue hands it
to this dispatcher (``AwsWorkQueue.taking``), which claims and calls it in the same
invocation, and so on while the invocation has time for another whole call. A 10-step run
costs one SQS message and one invocation instead of eleven. What keeps it safe:

* the item is in the run's ``pending`` set (saved with the run) like any other; only its
  message is missing;
* the record that started the drive stays in flight (held, and its hold extended while
  the drive goes on) until the invocation ends: if the container dies mid-drive, that
  record comes back, finds its own item done (stale) and, being a redelivery, re-sends
  the run's due call items (``_resend_due``): the next one runs again within one hold;
* a drive stops (and sends the item) when time runs short; an item that is blocked,
  stale or claimed elsewhere ends it the ordinary way.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace

from wayline.calls.cycle import CallCycle, Policy, Transport, drive_sync
from wayline.engine.model import Run, WorkItem, WorkKind
from wayline.engine.ports import Clock
from wayline.engine.service import Service
from wayline.errors import ValidationError

from .invoker import lambda_policy
from .sqs import WorkSender, decode_item
from .work_queue import AwsWorkQueue, Taken

__all__ = [
    "BLOCKED_RETRY_S",
    "CLAIM_MARGIN_MS",
    "Budget",
    "Dispatched",
    "Dispatcher",
    "Outcome",
]

log = logging.getLogger("wayline.aws")

BLOCKED_RETRY_S = 2
"""How soon a blocked item is delivered again at the earliest (``Blocked.retry_ms`` is
longer for an item parked on a full concurrency limit: its wake comes first)."""
CLAIM_MARGIN_MS = 60_000
"""A claim outlives the app call by this much (time to save the result)."""


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
    """The SDK's HTTP status (0: unreachable) of the last call made, for calls."""
    driven: int = 0
    """Calls made after the first, driving the same run on (see the module docstring)."""
    next: WorkItem | None = None
    """The run's next call, taken from the work queue for this dispatcher to make."""

    def metric_names(self) -> list[str]:
        """The CloudWatch (EMF) counters this outcome adds to (see infra/dashboard.json),
        one entry per count."""
        names = [_METRICS.get(self.outcome, "ItemsSkipped")] + ["SdkCalls"] * self.driven
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


@dataclass
class Budget:
    """How long one record may go on driving its run, and how its SQS message is kept
    invisible meanwhile. Without one (tests, tools), a dispatcher makes one call."""

    deadline_ms: int
    """When the invocation ends (Lambda's remaining time, read when it started)."""
    per_call_ms: int
    """The longest one call may take, plus time to save its result."""
    hold_ms: int
    """How long the record must stay invisible from the start of a call: until the call's
    claim has lapsed, so a copy that comes back after a crash can claim the item."""
    held_until_ms: int
    """When the record becomes visible again in SQS if nothing extends its hold."""
    hold: Callable[[int], None] = lambda _seconds: None
    """Make the record invisible for that many more seconds (``ChangeMessageVisibility``)."""

    def allows(self, calls: int, *, now: int) -> bool:
        """Time is left for ``calls`` more whole calls."""
        return self.deadline_ms - now >= calls * self.per_call_ms

    def keep_held(self, *, now: int) -> None:
        """Before another call: the record must stay invisible until that call is over
        (and its claim lapsed), or a copy would come back while the drive is healthy.
        Extended two calls at a time, so a drive of quick steps asks SQS rarely."""
        if self.held_until_ms - now >= self.hold_ms:
            return
        seconds = -(-2 * self.hold_ms // 1000)
        try:
            self.hold(seconds)
        except Exception as exc:  # worst case a copy comes back: stale, or claimed
            log.warning("could not extend the record's hold: %s", exc)
            return
        self.held_until_ms = now + seconds * 1000


class Dispatcher:
    """Wait, fire or call one work item and apply the result; then drive the run on.

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
        transport: Transport,
        clock: Clock,
        signing_key: Callable[[], str | None] = lambda: None,
        call_timeout_s: float = 300.0,
        allow_private: bool = False,
        policy: Policy | None = None,
        checkpoint: Callable[[str], None] | None = None,
    ) -> None:
        self._service = service
        self._queue = queue
        self._sender = sender
        self.transport = transport
        self._clock = clock
        self.claim_ttl_ms = int(call_timeout_s * 1000) + CLAIM_MARGIN_MS
        self.busy_retry_s = -(-self.claim_ttl_ms // 1000)
        """How soon a delivery that found its item claimed comes back: by then the claim
        has been released or has lapsed (its holder died), whichever happened."""
        self.checkpoint: Callable[[str], None] = checkpoint or (lambda _name: None)
        self.cycle = CallCycle(
            service,
            clock,
            policy or lambda_policy(call_timeout_s=call_timeout_s, allow_private=allow_private),
            signing_key=signing_key,
            checkpoint=lambda name: self.checkpoint(name),
        )

    def process_body(
        self,
        body: str,
        *,
        delivery: str = "",
        seen: dict[str, str] | None = None,
        receives: int = 1,
        budget: Budget | None = None,
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
        return self.process(item, delivery=delivery, seen=seen, receives=receives, budget=budget)

    def process(
        self,
        item: WorkItem,
        *,
        delivery: str = "",
        seen: dict[str, str] | None = None,
        receives: int = 1,
        budget: Budget | None = None,
    ) -> Dispatched:
        if item.at > self._clock.now_ms():
            self._queue.enqueue([item])
            return Dispatched(Outcome.EARLY, item)
        if item.kind is not WorkKind.CALL:
            self._service.fire(item)
            return Dispatched(Outcome.FIRED, item, item.function_id)
        if receives > 1 and self._done_already(item):
            return Dispatched(Outcome.STALE, item)
        holder = delivery or f"anonymous:{self._service.new_id()}"
        first = done = self._call(item, holder, budget)
        if seen is not None and done.function_id:
            seen["function_id"] = done.function_id
        driven = 0
        while done.next is not None:
            now = self._clock.now_ms()
            if budget is None or not budget.allows(1, now=now):
                self._queue.enqueue([done.next])  # no time for it after all: SQS takes it
                break
            budget.keep_held(now=now)
            taken, done = done.next, self._call(done.next, holder, budget)
            driven += done.outcome is Outcome.CALLED
            if done.outcome is Outcome.BUSY:  # a copy is called elsewhere (a repair sent
                self._queue.enqueue([taken])  # one): SQS keeps this until that claim is gone
        return replace(first, status=done.status if driven else first.status, driven=driven)

    def _call(self, item: WorkItem, holder: str, budget: Budget | None) -> Dispatched:
        claim = f"claim:{item.id}"
        leases = self._service.store.leases
        if not leases.acquire(
            claim, holder, limit=1, now=self._clock.now_ms(), ttl_ms=self.claim_ttl_ms
        ):
            log.info("work item claimed by another delivery", extra={"item_id": item.id})
            return Dispatched(Outcome.BUSY, item)
        # Take the run's next call only if a whole call will still fit after this one.
        take = budget is not None and budget.allows(2, now=self._clock.now_ms())
        taken: Taken | None = None
        try:
            with self._queue.taking(item.run_id) if take else nullcontext() as taken:
                result = drive_sync(
                    self.cycle.flow(item),
                    self.transport,
                    renew_every_s=self.cycle.policy.renew_every_s,
                )
        except Exception:
            leases.release(claim, holder)  # let the redelivery in without waiting the TTL
            if taken is not None and taken.items:
                self._send_taken(taken)
            raise
        if result.response is None:
            leases.release(claim, holder)  # the item is tried again (blocked) or stale
            if result.blocked is not None:
                delay_s = max(BLOCKED_RETRY_S, (result.blocked.retry_ms or 0) // 1000)
                self._sender.send([item], delay_s=delay_s)
                return Dispatched(Outcome.BLOCKED, item)
            return Dispatched(Outcome.STALE, item)
        # The result is saved: the item is no longer pending, and ids are never reused, so
        # its claim is left to expire (DynamoDB's TTL deletes it for free) rather than
        # released (a read and a write per call).
        return Dispatched(
            Outcome.CALLED,
            item,
            result.function_id,
            result.response.status,
            next=taken.items[0] if taken is not None and taken.items else None,
        )

    def _send_taken(self, taken: Taken) -> None:
        try:
            self._queue.enqueue(taken.items)
        except Exception as exc:  # the record fails anyway: its redelivery re-sends them
            log.warning("could not send the run's next call: %s", exc)

    def _done_already(self, item: WorkItem) -> bool:
        """For a redelivered record: True if its item is done (or its run is gone), after
        re-sending the run's due call items (``_resend_due``). Checked before the claim:
        the claim of a done item is left to expire, and waiting for it would only delay
        the repair by a claim's life."""
        run = self._service.store.runs.get_run(item.run_id)
        if run is not None and run.outbox:
            run = self._service.flush_outbox(run)
        if run is None or run.status.is_terminal:
            return True
        if item.id in run.pending:
            return False
        self._resend_due(run)
        return True

    def _resend_due(self, run: Run) -> None:
        """A redelivered record whose item is done, of a live run: the run's due call items
        may have been taken by a drive whose container died (they have no message), so
        they are sent again. A copy of an item that did have one is a no-op (claimed, or
        stale, when it arrives)."""
        now = self._clock.now_ms()
        due = [i for i in run.pending.values() if i.kind is WorkKind.CALL and i.at <= now]
        if due:
            log.info(
                "re-sending %d due call items a drive may have left",
                len(due),
                extra={"run_id": run.id},
            )
            self._queue.enqueue(due)
