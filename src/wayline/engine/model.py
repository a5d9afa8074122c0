"""Frozen domain model of the engine: events, functions, runs, work items, waits.

Everything here is plain data. JSON-shaped values (event data, step outputs) are kept as
the JSON the wire carries, so a run can be persisted and replayed byte for byte.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

JSON = Any
"""A JSON value as decoded by the stdlib: dict, list, str, int, float, bool or None."""

Memo = JSON
"""A memoized step result as the SDK receives it in ``steps``.

step.run / invoke: ``{"data": X}`` or ``{"error": {...}}``; sleep: ``None``;
waitForEvent: the matched event map, or ``None`` on timeout.
"""


@dataclass(frozen=True, slots=True)
class Event:
    """An event as stored: normalized exactly as the Inngest server hands it to SDKs."""

    internal_id: str
    name: str
    data: Mapping[str, JSON]
    user: Mapping[str, JSON]
    id: str
    ts: int
    v: str | None = None
    received_at: int = 0
    replay_of: str | None = None
    """The internal id of the event this one replays (``POST /v1/events/{id}/replay``)."""

    def to_wire(self) -> dict[str, JSON]:
        """The event map sent to SDKs and matched by expressions."""
        wire: dict[str, JSON] = {
            "name": self.name,
            "data": dict(self.data),
            "user": dict(self.user),
            "id": self.id,
            "ts": self.ts,
        }
        if self.v is not None:
            wire["v"] = self.v
        return wire


@dataclass(frozen=True, slots=True)
class Trigger:
    """One function trigger: an event name (with optional CEL ``expression``) or a cron."""

    event: str | None = None
    expression: str | None = None
    cron: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionDef:
    """A synced function. ``config`` keeps the registered FunctionConfig verbatim."""

    id: str
    app_id: str
    name: str
    url: str
    triggers: tuple[Trigger, ...]
    retries: int
    config: Mapping[str, JSON] = field(default_factory=dict)

    @property
    def max_attempts(self) -> int:
        return self.retries + 1


@dataclass(frozen=True, slots=True)
class App:
    """A synced app: its id (``appName``), serve URL and SDK description."""

    id: str
    url: str
    sdk: str = ""
    framework: str = ""
    synced_at: int = 0


class RunStatus(enum.StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SKIPPED = "Skipped"
    """Never started: a rate limit, idempotency key or singleton skipped it."""

    @property
    def is_terminal(self) -> bool:
        return self in (
            RunStatus.COMPLETED,
            RunStatus.FAILED,
            RunStatus.CANCELLED,
            RunStatus.SKIPPED,
        )


class WorkKind(enum.StrEnum):
    CALL = "call"
    """Call the SDK: discovery (``step_id`` None) or a planned step (``step_id`` = hash)."""
    SLEEP = "sleep"
    """Wake a sleeping step at ``at``: its memo becomes ``null``."""
    WAIT_TIMEOUT = "wait_timeout"
    """A waitForEvent / invoke pause expires at ``at`` unless it was resolved first."""
    CRON = "cron"
    """A cron tick of ``function_id`` for expression ``cron``, due at ``at``; not a run's."""
    TIMEOUT = "timeout"
    """``timeouts.start`` / ``timeouts.finish`` (``step_id`` says which) expire at ``at``."""
    DEBOUNCE = "debounce"
    """A debounce window of ``function_id`` may close at ``at``; ``ref`` is its key#gen."""
    BATCH = "batch"
    """A batch of ``function_id`` times out at ``at``; ``ref`` is its key#batch id."""
    RERUNS = "reruns"
    """A bulk rerun job ``ref`` reruns its next runs at ``at`` (``attempt`` = tick number)."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One pending wake-up of a run. Its id is unique per run (a per-run sequence)."""

    id: str
    run_id: str
    kind: WorkKind
    at: int
    step_id: str | None = None
    attempt: int = 0
    function_id: str | None = None
    cron: str | None = None
    ref: str | None = None
    """What a flow-control timer refers to (debounce generation, batch id)."""


class StepStatus(enum.StrEnum):
    RUNNING = "Running"
    SLEEPING = "Sleeping"
    WAITING = "Waiting"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    """The run ended (cancelled, or failed elsewhere) while this step was still open."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of a step, or one failed call to the app outside any step.

    ``error`` is the error as the SDK reported it (``name``, ``message``, ``stack``), or
    the server's description of a call that got no SDK answer (connection refused,
    timeout, a 5xx or a body that is not the protocol's).
    """

    number: int
    """1 for the first try."""
    started_at: int
    ended_at: int
    status: StepStatus
    """``COMPLETED`` or ``FAILED``."""
    error: JSON = None
    retry_at: int | None = None
    """When the next try is due; None when no retry follows this one."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What the run timeline shows for one step (the memo itself lives in ``Run.memos``)."""

    id: str
    name: str
    op: str
    status: StepStatus
    attempts: int = 0
    started_at: int = 0
    ended_at: int | None = None
    output: JSON = None
    error: JSON = None
    seeded: bool = False
    """Its result was copied from the run this one redrives: the step did not execute."""
    history: tuple[Attempt, ...] = ()
    """The step's tries, oldest first, when there was more than one or one failed; read
    ``tries`` for every try (a step that succeeded at once keeps no history)."""

    @property
    def tries(self) -> tuple[Attempt, ...]:
        """Every try of the step, oldest first; none for a sleep or a wait."""
        if self.history or self.op != "StepRun" or self.ended_at is None:
            return self.history
        if self.status is not StepStatus.COMPLETED or self.attempts < 1:
            return self.history
        return (Attempt(self.attempts, self.started_at, self.ended_at, StepStatus.COMPLETED),)


class WaitKind(enum.StrEnum):
    EVENT = "event"
    INVOKE = "invoke"
    CANCEL = "cancel"
    """A ``cancelOn`` listener: a matching event cancels the run."""
    SIGNAL = "signal"
    """A ``waitForSignal`` step: ``POST /v1/signals`` resolves it (``engine.signals``)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """A paused step waiting for an event (waitForEvent, or an invoke's finish event).

    ``expression`` only references ``async``: ``event.*`` was interpolated at creation.
    """

    id: str
    run_id: str
    step_id: str
    kind: WaitKind
    event: str
    expression: str | None
    expires_at: int
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class InvokeParent:
    """Set on a run started by ``step.invoke``: where its finish event must be routed."""

    correlation_id: str
    run_id: str
    fn_id: str


@dataclass(frozen=True, slots=True)
class Outbox:
    """The effects of a run's last saved transition, saved with it (an outbox).

    A transition's effects go to other records (queue items, waits, events) that no store
    can write in the run's own conditional write. So the run is saved WITH them, then they
    are applied (each idempotent by its id), then the outbox is acknowledged (emptied). A
    crash or an error anywhere in between leaves them here, and whoever touches the run
    next - the redelivered item, the next transition, the sweep - applies them again.
    Events are stored fully identified (their internal id fixed at the save), so
    publishing one twice stores and routes it once.
    """

    enqueue: tuple[WorkItem, ...] = ()
    waits: tuple[Wait, ...] = ()
    drop_waits: tuple[str, ...] = ()
    publish: tuple[Event, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.enqueue or self.waits or self.drop_waits or self.publish)


@dataclass(frozen=True, slots=True)
class SeededStep:
    """A completed step of a failed run, offered to its redrive instead of executing it."""

    name: str
    op: str
    memo: Memo


@dataclass(frozen=True, slots=True)
class Run:
    """The durable state of one function run. Every change bumps ``version``."""

    id: str
    function_id: str
    app_id: str
    status: RunStatus
    events: tuple[Mapping[str, JSON], ...]
    event_ids: tuple[str, ...]
    created_at: int
    version: int = 0
    memos: Mapping[str, Memo] = field(default_factory=dict)
    stack: tuple[str, ...] = ()
    steps: tuple[StepRecord, ...] = ()
    pending: Mapping[str, WorkItem] = field(default_factory=dict)
    """Outstanding work items by item id: every live run has at least one, or a wait."""
    waiting: Mapping[str, Wait] = field(default_factory=dict)
    """Open pauses by step hash; kept whole so a lost wait record can be re-created."""
    cancel_waits: tuple[Wait, ...] = ()
    """``cancelOn`` listeners created at run start (``event.*`` already interpolated)."""
    planned: frozenset[str] = frozenset()
    """Planned steps of the current parallel batch that have not reported yet."""
    race: bool = False
    force_step_plan: bool = False
    request_version: int = -1
    seq: int = 0
    started_at: int | None = None
    ended_at: int | None = None
    output: JSON = None
    cron: str | None = None
    parent: InvokeParent | None = None
    cancel_reason: str | None = None
    outbox: Outbox = Outbox()
    """Effects saved with the last transition and not yet acknowledged as applied."""
    call_failures: tuple[Attempt, ...] = ()
    """Calls to the app that failed outside any step (a discovery call refused, timed
    out, answered 5xx or not in the protocol), oldest first, with their next retry."""
    rerun_of: str | None = None
    """The run this one reruns or redrives (``POST /v1/runs/{id}/rerun``)."""
    reruns: tuple[str, ...] = ()
    """Runs that rerun or redrive this one, oldest first."""
    seeds: Mapping[str, SeededStep] = field(default_factory=dict)
    """A redrive's not-yet-used results of the old run, by hashed step id. One is used
    when the SDK reports that step; those left when the run ends were not in the code."""

    def with_step(self, record: StepRecord) -> Run:
        """Return a copy whose timeline has ``record`` (replacing the same step id)."""
        return replace(self, steps=timeline_with(self.steps, record))

    def step(self, step_id: str) -> StepRecord | None:
        return timeline_step(self.steps, step_id)


def timeline_with(steps: tuple[StepRecord, ...], record: StepRecord) -> tuple[StepRecord, ...]:
    """``steps`` with ``record`` in place of its step's entry, or appended: a run's timeline
    after ``Run.with_step`` (also for a timeline built up before the run is copied)."""
    if any(s.id == record.id for s in steps):
        return tuple(record if s.id == record.id else s for s in steps)
    return (*steps, record)


def timeline_step(steps: tuple[StepRecord, ...], step_id: str) -> StepRecord | None:
    """The entry of ``step_id`` in ``steps`` (``Run.step``), or None."""
    for record in steps:
        if record.id == step_id:
            return record
    return None
