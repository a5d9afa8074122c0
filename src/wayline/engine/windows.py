"""Debounce and batch windows: events buffered in a versioned counter, closed by a timer.

Both are written so that a crash or a failed write at any point neither loses a window
nor starts it twice::

    event arrives        enqueue timer item (id names the window)   <- idempotent
                         compare-and-set the buffer                  <- the commit point
    timer fires          buffer still names this window? -> start the run, keyed by the
                         window id (idempotent), then delete the buffer (compare-and-set)

The timer is enqueued *before* the buffer is written: if the write then fails or loses a
race, the orphan timer finds a buffer that does not name it and does nothing; if the
process dies after the write, the timer is already there. Starting the run before
deleting the buffer means a crash in between only repeats a start the idempotency key
refuses. (Inngest lost batches exactly here: a failed write on the first event left a
batch with no timer - user-asks §17.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import StoreError
from . import expr
from .flow.config import Batch, Debounce
from .flow.keys import fn_key
from .model import JSON, Event, FunctionDef, WorkItem, WorkKind
from .ports import Store, Versioned

DAY_MS = 24 * 3600 * 1000
MAX_CAS_ATTEMPTS = 50

StartRun = Callable[[FunctionDef, Sequence[Event], str], object]
"""``(fn, events, idempotency key) -> run id or None``: the service's start."""


@dataclass(frozen=True, slots=True)
class Buffer:
    window: str
    events: tuple[str, ...]
    first_at: int
    due_at: int


def _buffer(found: Versioned | None) -> Buffer | None:
    value = found.value if found else None
    if not isinstance(value, dict):
        return None
    return Buffer(
        window=str(value["window"]),
        events=tuple(value["events"]),
        first_at=int(value["first_at"]),
        due_at=int(value["due_at"]),
    )


def _value(buffer: Buffer) -> JSON:
    return {
        "window": buffer.window,
        "events": list(buffer.events),
        "first_at": buffer.first_at,
        "due_at": buffer.due_at,
    }


class Windows:
    def __init__(
        self,
        store: Store,
        *,
        new_id: Callable[[], str],
        enqueue: Callable[[Sequence[WorkItem]], None],
        start: StartRun,
    ) -> None:
        self._store = store
        self._new_id = new_id
        self._enqueue = enqueue
        self._start = start

    # ------------------------------------------------------------------ arrivals

    def debounce(self, fn: FunctionDef, event: Event, config: Debounce, *, now: int) -> None:
        """The latest event wins; the run starts ``period`` after the last one, or at
        ``timeout`` after the first."""
        key = fn_key("debounce", fn.id, config.key, event.to_wire(), now_ms=now)

        def update(old: Buffer | None) -> Buffer:
            first = old.first_at if old else now
            due = now + config.period_ms
            if config.timeout_ms is not None:
                due = min(due, first + config.timeout_ms)
            return Buffer(
                window=f"{key}#{self._new_id()}",
                events=(event.internal_id,),
                first_at=first,
                due_at=due,
            )

        self._write(fn, key, WorkKind.DEBOUNCE, update, now=now)

    def batch(self, fn: FunctionDef, event: Event, config: Batch, *, now: int) -> bool:
        """Add ``event`` to its batch; returns False when ``if`` excludes it (run it alone)."""
        wire = event.to_wire()
        if config.condition and not expr.matches(config.condition, event=wire, now_ms=now):
            return False
        key = fn_key("batch", fn.id, config.key, wire, now_ms=now)

        def update(old: Buffer | None) -> Buffer:
            if old is not None and event.internal_id in old.events:
                return old  # a redelivered event is already in its batch
            if old is None:
                return Buffer(
                    window=f"{key}#{self._new_id()}",
                    events=(event.internal_id,),
                    first_at=now,
                    due_at=now + config.timeout_ms,
                )
            return Buffer(
                window=old.window,
                events=(*old.events, event.internal_id),
                first_at=old.first_at,
                due_at=old.due_at,
            )

        written = self._write(fn, key, WorkKind.BATCH, update, now=now)
        if len(written.events) >= config.max_size:
            self._close(fn, key, written.window, now=now)
        return True

    def _write(
        self,
        fn: FunctionDef,
        key: str,
        kind: WorkKind,
        update: Callable[[Buffer | None], Buffer],
        *,
        now: int,
    ) -> Buffer:
        counters = self._store.counters
        for _ in range(MAX_CAS_ATTEMPTS):
            found = counters.get(key, now=now)
            new = update(_buffer(found))
            self._enqueue([self._timer(fn, key, kind, new)])
            if counters.put(
                key,
                _value(new),
                expected_version=found.version if found else 0,
                now=now,
                ttl_ms=max(new.due_at - now, 0) + DAY_MS,
            ):
                return new
        raise StoreError(f"window {key}: gave up after {MAX_CAS_ATTEMPTS} conflicting writes")

    # ------------------------------------------------------------------ timers

    def fire(self, item: WorkItem, *, now: int) -> None:
        """A window's timer: close it if the buffer still names this window and is due."""
        found = self._store.counters.get(item.step_id or "", now=now)
        buffer = _buffer(found)
        if buffer is None or buffer.window != item.ref or buffer.due_at > now:
            return  # superseded (a later debounce event) or already closed
        fn = self._store.apps.get_function(item.function_id or "")
        if fn is None:
            return
        self._close(fn, item.step_id or "", buffer.window, now=now)

    def _close(self, fn: FunctionDef, key: str, window: str, *, now: int) -> None:
        """Start the window's run, then take its events out of the buffer.

        Events appended while the run was starting stay buffered under a fresh window
        (with its own timer); after a crash between start and removal, the run already
        started for this window says which events it took.
        """
        counters = self._store.counters
        started: set[str] | None = None
        for _ in range(MAX_CAS_ATTEMPTS):
            found = counters.get(key, now=now)
            buffer = _buffer(found)
            if found is None or buffer is None or buffer.window != window:
                return
            if started is None:
                started = self._start_window(fn, buffer)
            rest = tuple(e for e in buffer.events if e not in started)
            if not rest:
                if counters.delete(key, expected_version=found.version):
                    return
                continue
            moved = Buffer(
                window=f"{key}#{self._new_id()}",
                events=rest,
                first_at=now,
                due_at=now + max(buffer.due_at - buffer.first_at, 0),
            )
            self._enqueue([self._timer(fn, key, WorkKind.BATCH, moved)])
            if counters.put(
                key,
                _value(moved),
                expected_version=found.version,
                now=now,
                ttl_ms=max(moved.due_at - now, 0) + DAY_MS,
            ):
                return
        raise StoreError(f"window {key}: gave up after {MAX_CAS_ATTEMPTS} conflicting writes")

    def _start_window(self, fn: FunctionDef, buffer: Buffer) -> set[str]:
        """Start the run for ``buffer`` (idempotent per window); the event ids it took."""
        events = [e for e in (self._store.events.get_event(i) for i in buffer.events) if e]
        if events and self._start(fn, events, f"window:{buffer.window}") is not None:
            return set(buffer.events)
        if not buffer.events:
            return set()
        # Started before (a crash or a redelivery): find the run this window made.
        runs = self._store.runs.list_runs(event_id=buffer.events[0], limit=20)
        taken = [r for r in runs if r.function_id == fn.id]
        return set(taken[0].event_ids) if taken else set(buffer.events)

    @staticmethod
    def _timer(fn: FunctionDef, key: str, kind: WorkKind, buffer: Buffer) -> WorkItem:
        return WorkItem(
            id=f"{kind.value}:{buffer.window}",
            run_id="",
            kind=kind,
            at=buffer.due_at,
            step_id=key,
            function_id=fn.id,
            ref=buffer.window,
        )
