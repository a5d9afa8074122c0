"""Ports owned by the engine: the narrow interfaces every store and transport implements.

Every method that changes state is a conditional write and says so: it returns ``False``
(or ``None``) when the condition did not hold, and never raises for a lost race. Times
are integer milliseconds since the epoch, always passed in by the caller (the clock is a
port too), so adapters never read the wall clock themselves.

The SQLite store (``wayline.store.sqlite``) implements all of them; the contract suite in
``tests/contract`` pins their behaviour for every adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .model import JSON, App, Event, FunctionDef, Run, RunStatus, StepRecord, Wait, WorkItem


class Clock(Protocol):
    def now_ms(self) -> int: ...


class IdSource(Protocol):
    """Randomness for ids: injected so that the engine stays deterministic in tests."""

    def entropy(self, n: int) -> bytes: ...


class EventStore(Protocol):
    def put_events(self, events: Sequence[Event]) -> None:
        """Store events; an event whose ``internal_id`` already exists is left unchanged."""

    def get_event(self, internal_id: str) -> Event | None: ...

    def list_events(
        self,
        *,
        name: str | None = None,
        limit: int = 100,
        before_id: str | None = None,
        received_after: int | None = None,
        received_before: int | None = None,
    ) -> list[Event]:
        """Newest first; ``before_id`` is the cursor (an ``internal_id``, exclusive)."""


class AppStore(Protocol):
    def put_app(self, app: App, functions: Sequence[FunctionDef]) -> bool:
        """Replace the app and its whole function list. Returns True if anything changed."""

    def get_app(self, app_id: str) -> App | None: ...

    def list_apps(self) -> list[App]: ...

    def get_function(self, function_id: str) -> FunctionDef | None: ...

    def list_functions(self, app_id: str | None = None) -> list[FunctionDef]: ...


@dataclass(frozen=True)
class RunQuery:
    """A run search: every filter that is set must hold (AND); newest first.

    ``since`` is inclusive and ``until`` exclusive (epoch ms of ``created_at``);
    ``statuses`` matches any of them; ``cursor`` is a ``RunPage.cursor`` from the same
    query (``wayline.engine.search.run_cursor``), and the page starts right after it.
    """

    function_id: str | None = None
    statuses: tuple[RunStatus, ...] = ()
    since: int | None = None
    until: int | None = None
    event_id: str | None = None
    limit: int = 50
    cursor: str | None = None


@dataclass(frozen=True)
class RunPage:
    """One page of a run search; ``cursor`` is None when there is nothing after it."""

    runs: list[Run]
    cursor: str | None


class RunStore(Protocol):
    def create_run(self, run: Run) -> bool:
        """Insert a new run; False if a run with that id exists (nothing written)."""

    def get_run(self, run_id: str) -> Run | None: ...

    def save_run(self, run: Run, *, expected_version: int) -> bool:
        """Write ``run`` iff the stored version is ``expected_version``.

        ``run.version`` must be ``expected_version + 1``. Memos are write-once: a memo
        already stored for a step id is never replaced.
        """

    def list_runs(
        self,
        *,
        function_id: str | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        """Newest first."""

    def ack_outbox(self, run: Run) -> bool:
        """Record that ``run``'s outbox was applied: write ``run`` (whose outbox is empty)
        iff the stored version is still ``run.version``. The version does not change: the
        run's state is the same, only its pending effects are gone. False if the run has
        moved on (the later save carried and applied the outbox first)."""

    def list_live_runs(self, *, limit: int = 10_000, after: str | None = None) -> list[Run]:
        """Runs the sweeper must look at, oldest first: those not yet finished (it repairs
        their wake-ups) and finished ones whose outbox is not yet applied.

        ``after`` is the paging cursor (a run id, exclusive): pass the last id of a page to
        get the next one; a page shorter than ``limit`` is the last."""

    def search_runs(self, query: RunQuery) -> RunPage:
        """Runs matching ``query``, newest first by ``created_at`` then id, at most
        ``query.limit`` of them (a page may hold fewer and still have a cursor: an
        index may list a run whose status has just changed, and it is left out)."""


@dataclass(frozen=True, slots=True)
class RunHead:
    """What one cheap read of a run says: its status, version, pending work, waits and
    flow state as of its last save. ``run.memos`` and ``run.steps`` are NOT the run's:
    they may miss any memo and record (``get_run`` has them all)."""

    run: Run
    state_bytes: int
    """The run's ``protocol.state_size`` at that save (memos appended since not counted)."""
    records: int
    """How many step records the run had at that save."""


@dataclass(frozen=True, slots=True)
class AppendedMemo:
    """A step result appended to a run without a transition (an SDK checkpoint)."""

    step_id: str
    memo: JSON
    record: StepRecord
    """The step's timeline record, built by the engine from the memo."""


class MemoAppends(Protocol):
    """Checkpointed step results written without a version bump of the run: a store
    that offers it (``Store.appends``) saves a checkpoint as the memo alone, fenced by
    ``run_head``'s read instead of a conditional write of the whole run
    (``engine.checkpoint_append``).

    The rules every implementation keeps (``tests/contract/test_memo_appends.py``):

    * Write-once: a step that has a memo keeps it; ``append_memos`` reports it.
    * Seen by every later ``get_run``: the memo, at the end of the stack in append
      order, and its record at the end of the timeline, both after what the run held
      at the head's save and before anything a later save adds.
    * Kept by every later save made from a ``get_run`` view (which holds it).
    * No promise about ``run.version``: a store may leave it (DynamoDB) or bump it.
    """

    def run_head(self, run_id: str, *, consistent: bool = True) -> RunHead | None:
        """The run's head (None: no such run, or one this store cannot append to; the
        caller then takes the transition path). ``consistent=False`` may read a
        slightly older save (cheaper on DynamoDB)."""

    def append_memos(self, head: RunHead, memos: Sequence[AppendedMemo], *, now: int) -> list[JSON]:
        """Write each memo whose step has none; per memo, the memo its step holds after
        the call: the very object passed in when it was written, the earlier one when
        not."""


class Idempotency(Protocol):
    def claim(self, key: str, *, now: int, ttl_ms: int, owner: str = "") -> bool:
        """Claim ``key`` for ``owner`` until ``now + ttl_ms``. False if it is held and not
        yet expired."""

    def holder(self, key: str, *, now: int) -> str | None:
        """The owner recorded by the unexpired claim of ``key`` ("" if it named none), or
        None if the key is free."""


class WorkQueue(Protocol):
    """Durable queue of ``WorkItem``s; items with a future ``at`` are timers."""

    def enqueue(self, items: Sequence[WorkItem]) -> None:
        """Add items; an item id already queued is left unchanged (idempotent)."""

    def claim(self, *, now: int, lease_ms: int, limit: int) -> list[WorkItem]:
        """Lease up to ``limit`` due items (``at <= now``) whose lease is free or expired."""

    def ack(self, item_id: str) -> None:
        """Remove a claimed item for good."""

    def defer(self, item_id: str, *, until: int) -> None:
        """Keep a claimed item but hand it out again no sooner than ``until``."""

    def next_due(self) -> int | None:
        """The earliest time ``claim`` could return an item (None when the queue is empty).

        Never later than the true next claim time; a leased item counts at its lease end.
        """

    def wake(self, items: Sequence[WorkItem]) -> None:
        """Hand out these deferred (parked) items again now: a concurrency slot they wait
        for was released. An item no longer queued is left alone (SQLite) or sent again
        (AWS, where a duplicate delivery is harmless)."""


class WaitStore(Protocol):
    def add_wait(self, wait: Wait) -> None:
        """Store a pause; idempotent by ``wait.id``."""

    def waits_for(self, event_name: str) -> list[Wait]:
        """Open pauses listening for ``event_name``, oldest first."""

    def take_wait(self, wait_id: str) -> Wait | None:
        """Delete and return the pause: exactly one caller wins, the others get None."""


class Leases(Protocol):
    """Counting semaphores whose holders expire: concurrency slots and singleton locks.

    A holder that crashes never leaks its slot: it stops counting at ``expires_at``.
    """

    def acquire(self, key: str, holder: str, *, limit: int, now: int, ttl_ms: int) -> bool:
        """Take one of ``limit`` slots of ``key`` until ``now + ttl_ms``.

        Expired holders do not count. A holder that already holds a slot renews it and gets
        True. Atomic: concurrent callers never hold more than ``limit`` slots together.
        """

    def release(self, key: str, holder: str) -> None:
        """Give the slot back (a no-op if ``holder`` holds none)."""

    def holders(self, key: str, *, now: int) -> list[str]:
        """Unexpired holders of ``key``, in the order they acquired."""


class Parking(Protocol):
    """Work items blocked by a full concurrency key, oldest (``at``, id) first.

    A blocked item is parked under the key that was full and deferred for a long fallback
    re-check; the release of a slot of that key takes the oldest parked item and wakes it
    (``WorkQueue.wake``). So a long queue behind a limit costs a store write per item and
    a wake per release, not a retry of every blocked item every few seconds.
    """

    def park(self, key: str, item: WorkItem) -> None:
        """Add ``item`` under ``key``; idempotent (an item parked twice is listed once)."""

    def unpark(self, key: str, item: WorkItem) -> None:
        """Remove ``item``'s entry (a no-op if it has none)."""

    def take_oldest(self, key: str, *, dropping: WorkItem | None = None) -> WorkItem | None:
        """Remove and return the oldest entry of ``key``; each entry goes to exactly one
        caller. ``dropping``'s own entry, if any, is removed rather than returned (the
        releasing item may have been parked before it got its slot by its re-check)."""


@dataclass(frozen=True, slots=True)
class Versioned:
    value: JSON
    version: int


class Counters(Protocol):
    """Small versioned JSON values: GCRA state, debounce and batch buffers.

    Every write is a compare-and-set on ``version``; ``expected_version=0`` means "absent
    (or expired)". Values expire at ``now + ttl_ms`` so abandoned keys clean themselves up.
    """

    def get(self, key: str, *, now: int) -> Versioned | None: ...

    def put(self, key: str, value: JSON, *, expected_version: int, now: int, ttl_ms: int) -> bool:
        """Write ``value`` as version ``expected_version + 1`` iff the stored version is
        ``expected_version``; False (nothing written) otherwise."""

    def delete(self, key: str, *, expected_version: int) -> bool:
        """Remove the value iff its version is ``expected_version``."""


@dataclass(frozen=True, slots=True)
class Store:
    """The set of persistence ports one backend provides."""

    events: EventStore
    apps: AppStore
    runs: RunStore
    queue: WorkQueue
    waits: WaitStore
    idempotency: Idempotency
    leases: Leases
    counters: Counters
    parked: Parking
    appends: MemoAppends | None = None
    """Where checkpoints are saved as memos alone (see ``MemoAppends``); None: each is a
    run transition."""
