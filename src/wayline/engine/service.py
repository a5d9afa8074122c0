"""The one impure module of the engine: load -> decide -> conditional save -> effects.

It talks to the world only through ports (``Store``, ``Clock``, ``IdSource``), so the same
service runs the dev server (SQLite) and the AWS handlers (DynamoDB). The SDK call itself
is made by the caller (an async worker in the dev server, a Lambda handler on AWS) between
``prepare_call`` and ``complete_call``.

Effects are part of the save (``engine.outbox``): a transition's effects are saved in the
run's ``outbox``, applied, then acknowledged. Whoever loads the run next (``_load``: the
redelivered item, the next transition, a duplicate ingest, ``repair`` and the AWS sweep)
first applies an outbox it finds there, so a crash or a failed write between the save and
the effects delays them, never loses them. A work item no longer in ``run.pending`` is a
no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace

from ..errors import StoreError
from . import checkpoint_append, cron, expr, lifecycle, machine, outbox, search
from .bulk import BulkReruns
from .canonical import EncodedValues
from .decision import Decision
from .events import EventInput, dedupe_key, internal_event
from .evolve import evolve
from .flow.config import flow_config
from .functions import DEFAULT_CHECK_EVERY_MS, FunctionCache
from .gate import FlowGate, Slots
from .ids import next_ulid, seeded_event_id
from .machine import Env
from .model import (
    JSON,
    App,
    Event,
    FunctionDef,
    InvokeParent,
    Outbox,
    Run,
    Wait,
    WaitKind,
    WorkItem,
    WorkKind,
)
from .pause import PAUSED_RETRY_MS, Pauses
from .ports import Clock, IdSource, MemoAppends, RunHead, RunQuery, Store
from .protocol import CallResponse, build_request, call_url, encode_request
from .signal_board import SignalBoard
from .triggers import functions_for_event
from .windows import Windows

log = logging.getLogger("wayline.engine")

DAY_MS = 24 * 3600 * 1000
EVENT_DEDUPE_TTL_MS = DAY_MS
MAX_SAVE_ATTEMPTS = 50


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """An SDK call ready to be sent: the caller signs and POSTs ``body`` to ``url``."""

    url: str
    body: dict[str, JSON]
    run: Run
    fn: FunctionDef
    slots: Slots = ()
    """Concurrency slots held for this call: release them when it returns."""
    payload: bytes = b""
    """``body`` as the JCS bytes to sign and send (made once, when the call is prepared)."""


BLOCKED_RECHECK_MS = 60_000
"""An item blocked by a full concurrency key is parked, and woken when a slot of that key
is released; this re-check is only the fallback for a wake that was lost (a crash
between release and wake, a dropped message)."""


@dataclass(frozen=True, slots=True)
class Blocked:
    """A concurrency limit is full (or the function is paused): the item waits and is
    tried again shortly, or after ``retry_ms`` when that is set."""

    retry_ms: int | None = None


class Service:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdSource,
        *,
        retry_interval_ms: int | None = None,
        on_enqueue: Callable[[], None] | None = None,
        on_run_ended: Callable[[Run], None] | None = None,
        sync_check_ms: int = DEFAULT_CHECK_EVERY_MS,
        observer: Callable[[Run | None, Run], None] | None = None,
        checkpointing: bool = True,
        batch: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        """``sync_check_ms``: how stale this process's view of the synced functions may get
        when another process syncs (see ``engine.functions``). ``observer(before, after)``
        sees every saved run change (``before`` None for a new run), after the save: for
        metrics and traces (``wayline.aws.observability``); it must not raise.
        ``checkpointing``: SDKs may report steps while a call is open (``engine.checkpoint``);
        off, calls leave out ``ctx.fn_id`` / ``ctx.qi_id`` and each step takes its own call.
        ``batch``: a store's way to commit several writes at once (SQLite: one
        transaction, ``Database.batch``); a transition's save and its effects use it."""
        self._store = store
        self._checkpointing = checkpointing
        self._batch = batch or nullcontext
        self._encoded = EncodedValues()
        self._observer = observer or (lambda before, after: None)
        # Observes finished runs (trace export): called once, after the terminal save.
        self._on_run_ended = on_run_ended or (lambda run: None)
        self._clock = clock
        self._ids = ids
        self._retry_interval_ms = retry_interval_ms
        self._on_enqueue = on_enqueue or (lambda: None)
        self._functions = FunctionCache(store, clock, check_every_ms=sync_check_ms)
        self._last_id: str | None = None
        self._gate = FlowGate(store, is_live=self._is_live)
        self.signals = SignalBoard(store, self._transition)
        self._windows = Windows(
            store,
            new_id=self.new_id,
            enqueue=self._enqueue,
            start=lambda fn, events, key: self.start(fn, events, key=key),
        )

    @property
    def store(self) -> Store:
        return self._store

    @property
    def pauses(self) -> Pauses:
        """Paused functions, shared with admission so a pause is seen at once."""
        return self._gate.pauses

    def now(self) -> int:
        return self._clock.now_ms()

    def new_id(self) -> str:
        # Monotonic: runs started in one millisecond keep their order in the queue.
        made = next_ulid(self._last_id, self.now(), self._ids.entropy(10))
        self._last_id = made
        return made

    # ------------------------------------------------------------------ apps

    def sync_app(self, app: App, functions: Sequence[FunctionDef]) -> bool:
        """Store the app's functions (replacing the old set) and schedule their crons."""
        changed = self._store.apps.put_app(app, functions)
        self._functions.bump()
        self._schedule_crons(functions, after=self.now())
        log.info(
            "app synced", extra={"app_id": app.id, "functions": len(functions), "changed": changed}
        )
        return changed

    def function(self, function_id: str) -> FunctionDef | None:
        """A synced function, from this process's cache (see ``engine.functions``)."""
        return self._functions.get(function_id)

    def _schedule_crons(self, functions: Sequence[FunctionDef], *, after: int) -> None:
        items = [
            WorkItem(
                id=f"cron:{fn.id}:{trigger.cron}:{fire}",
                run_id="",
                kind=WorkKind.CRON,
                at=fire,
                function_id=fn.id,
                cron=trigger.cron,
            )
            for fn in functions
            for trigger in fn.triggers
            if trigger.cron
            for fire in [cron.next_fire(trigger.cron, after_ms=after)]
        ]
        self._enqueue(items)

    # ------------------------------------------------------------------ events

    def send_events(self, inputs: Sequence[EventInput], *, seed: str | None = None) -> list[str]:
        """Store validated events and route them; returns their internal ids in order."""
        now = self.now()
        events = [
            inp.identify(self._event_id(seed, index), received_at=now)
            for index, inp in enumerate(inputs, start=1)
        ]
        self._store.events.put_events(events)
        for event in events:
            self._route(event)
        return [e.internal_id for e in events]

    def _event_id(self, seed: str | None, index: int) -> str:
        seeded = seeded_event_id(seed, index) if seed else None
        return seeded or self.new_id()

    def ingest(self, event: Event) -> None:
        """Store and route an event that is already identified (a replay)."""
        self._publish(event)

    def emit(self, raw: Mapping[str, JSON]) -> Event:
        """Store and route an internal event (``inngest/...``) the engine produced."""
        event = internal_event(raw).identify(
            self.new_id(), received_at=self.now(), keep_internal=True
        )
        self._publish(event)
        return event

    def _publish(self, event: Event) -> None:
        """Store and route an identified event; repeating it stores and starts nothing new
        (the event is keyed by its internal id, and routing is safe to repeat)."""
        self._store.events.put_events([event])
        self._route(event)

    def _route(self, event: Event) -> None:
        """Start, resume or cancel what ``event`` concerns. Safe to repeat: a redelivered
        event (a client retry with the same seed, a crashed consumer) routes again, and
        every effect is idempotent - run starts are keyed by event, waits and cancels are
        state-checked, windows skip an event they hold - so nothing is lost to a crash
        between claiming and routing."""
        now = self.now()
        wire = event.to_wire()
        if event.name == lifecycle.FUNCTION_INVOKED:
            self._start_invoked(event)
        for fn in functions_for_event(self._functions.all(), wire, now_ms=now):
            self._admit_event(fn, event, now)
        self._resume_waits(event, wire)

    def _admit_event(self, fn: FunctionDef, event: Event, now: int) -> None:
        """A matching event starts a run now, or joins a debounce or batch window."""
        flow = flow_config(fn)
        if flow.debounce:
            self._windows.debounce(fn, event, flow.debounce, now=now)
        elif not (flow.batch and self._windows.batch(fn, event, flow.batch, now=now)):
            self.start(fn, [event])

    def _resume_waits(self, event: Event, wire: Mapping[str, JSON]) -> None:
        now = self.now()
        for wait in self._store.waits.waits_for(event.name):
            if wait.expires_at < now or not expr.matches(wait.expression, async_=wire, now_ms=now):
                continue
            if wait.kind is WaitKind.CANCEL:
                self._cancel_on(wait, event)
                continue
            step_id = wait.step_id

            def resolve(run: Run, env: Env, step_id: str = step_id) -> Decision:
                return machine.apply_wait_resolved(run, step_id=step_id, event=wire, env=env)

            self._transition(wait.run_id, resolve)

    def _cancel_on(self, wait: Wait, event: Event) -> None:
        # Only events received after the run started count: ULIDs order by time, so an
        # event id below the run id was received before the run existed.
        if event.internal_id <= wait.run_id:
            return
        self.cancel(wait.run_id, reason=f"cancelOn: event {event.name} ({event.internal_id})")

    # ------------------------------------------------------------------ runs

    def start(
        self,
        fn: FunctionDef,
        events: Sequence[Event],
        *,
        cron_expr: str | None = None,
        parent: InvokeParent | None = None,
        key: str | None = None,
        run_id: str | None = None,
        shape: Callable[[Run], Run] | None = None,
    ) -> str | None:
        """Start a run of ``fn``: event-id dedupe (24 h), then flow-control admission.

        ``run_id`` and ``shape`` (applied to the new run before it is stored, started or
        skipped) serve reruns: see ``engine.runops``."""
        now = self.now()
        shape = shape or (lambda run: run)
        key = key or dedupe_key(fn.id, events[0])
        run_id = self._claim_start(fn, key, now=now, proposed=run_id)
        if run_id is None:
            return None
        trigger = events[0].to_wire()
        wire = [e.to_wire() for e in events]
        event_ids = [e.internal_id for e in events]
        admission = self._gate.admit(fn, trigger, run_id=run_id, now=now)
        if admission.skip_reason:
            self._store.runs.create_run(
                shape(
                    lifecycle.skipped_run(
                        run_id=run_id,
                        fn=fn,
                        events=wire,
                        event_ids=event_ids,
                        now=now,
                        reason=admission.skip_reason,
                    )
                )
            )
            log.info(
                "run skipped: %s",
                admission.skip_reason,
                extra={"run_id": run_id, "function_id": fn.id},
            )
            return None
        for old in admission.replaces:
            self.cancel(old, reason=f"singleton: replaced by run {run_id}")
        if admission.replaces:
            self._gate.take_singleton(fn, trigger, run_id=run_id, now=now)
        decision = lifecycle.start_run(
            run_id=run_id,
            fn=fn,
            events=wire,
            event_ids=event_ids,
            now=now,
            cron=cron_expr,
            parent=parent,
            first_call_at=admission.first_call_at,
        )
        run = replace(shape(decision.run), outbox=self._outbox(decision))
        self._register_waits(decision.waits)
        if not self._store.runs.create_run(run):
            return None
        log.info("run started", extra={"run_id": run.id, "function_id": fn.id})
        self._observer(None, run)
        self._flush(run)
        return run.id

    def _claim_start(
        self, fn: FunctionDef, key: str, *, now: int, proposed: str | None = None
    ) -> str | None:
        """Claim the start's 24 h idempotency key for a new run id; the id to create, or
        None for a duplicate.

        The claim records the run id, so a start that claimed the key and then failed
        before creating the run (a crash, a failed write) is finished by the retry under
        the same id, and one that did create it is found - and its outbox flushed.
        """
        run_id = proposed or self.new_id()
        if self._store.idempotency.claim(key, now=now, ttl_ms=EVENT_DEDUPE_TTL_MS, owner=run_id):
            return run_id
        holder = self._store.idempotency.holder(key, now=now)
        if holder and self._load(holder) is None:
            log.warning(
                "finishing an interrupted run start",
                extra={"run_id": holder, "function_id": fn.id, "key": key},
            )
            return holder
        log.info("run skipped: duplicate", extra={"function_id": fn.id, "key": key})
        return None

    def update_run(self, run_id: str, decide: Callable[[Run, Env], Decision]) -> Decision | None:
        """Apply a pure decision to a stored run (conditional save, then its effects)."""
        return self._transition(run_id, decide)

    def _is_live(self, run_id: str) -> bool:
        run = self._store.runs.get_run(run_id)
        return run is not None and not run.status.is_terminal

    def _start_invoked(self, event: Event) -> None:
        meta = event.data.get("_inngest")
        meta = meta if isinstance(meta, Mapping) else {}
        correlation_id = str(meta.get("correlation_id") or "")
        fn = self._functions.get(str(meta.get("fn_id") or ""))
        if fn is None:
            self.emit(
                {
                    "name": lifecycle.FUNCTION_FINISHED,
                    "data": {
                        "correlation_id": correlation_id,
                        "error": {
                            "name": "Error",
                            "message": f"function {meta.get('fn_id')!r} is not registered",
                        },
                    },
                }
            )
            return
        parent = InvokeParent(
            correlation_id=correlation_id,
            run_id=correlation_id.partition(".")[0],
            fn_id=str(meta.get("source_fn_id") or ""),
        )
        self.start(fn, [event], parent=parent, key=f"invoke:{correlation_id}")

    def cancel(self, run_id: str, *, reason: str) -> Run | None:
        """Cancel a run; cancelling a finished run changes nothing and is not an error."""
        decision = self._transition(
            run_id, lambda run, env: machine.apply_cancel(run, env, reason=reason)
        )
        return decision.run if decision else None

    def cancel_matching(
        self,
        *,
        function_id: str,
        started_before: int,
        started_after: int | None = None,
        condition: str | None = None,
        limit: int = 10_000,
    ) -> list[str]:
        """Bulk cancel: live runs of one function created in a time range whose trigger
        event matches ``condition``. Returns the ids it cancelled."""
        cancelled = []
        for run in self._store.runs.list_runs(function_id=function_id, limit=limit):
            in_range = run.created_at < started_before and (
                started_after is None or run.created_at > started_after
            )
            trigger = run.events[0] if run.events else {}
            if (
                run.status.is_terminal
                or not in_range
                or not expr.matches(condition, event=trigger, now_ms=self.now())
            ):
                continue
            if self.cancel(run.id, reason="bulk cancellation") is not None:
                cancelled.append(run.id)
        return cancelled

    def search_runs(
        self,
        query: RunQuery,
        condition: str | None = None,
        scan_budget: int = search.DEFAULT_SCAN_BUDGET,
    ) -> search.SearchResult:
        """Runs matching ``query`` and, if given, the CEL ``condition`` over each run's
        triggering event, reading at most ``scan_budget`` runs (see ``engine.search``)."""
        return search.search_runs(
            self._store.runs, query, condition=condition, scan_budget=scan_budget, now_ms=self.now()
        )

    # ------------------------------------------------------------------ work items

    def prepare_call(self, item: WorkItem) -> PreparedCall | Blocked | None:
        """The SDK call ``item`` stands for; ``Blocked`` when a concurrency limit is full
        (retry the item later); None if the item is stale."""
        run = self._load(item.run_id)
        if run is None or run.status.is_terminal or item.id not in run.pending:
            return None
        fn = self._function_for(run)
        if self._gate.pauses.is_paused(fn.id, now=self.now()):
            return Blocked(retry_ms=PAUSED_RETRY_MS)
        slots = self._gate.acquire_or_park(fn, run, item, now=self.now())
        if slots is None:
            return Blocked(retry_ms=BLOCKED_RECHECK_MS)
        if run.started_at is None:
            started = self._transition(run.id, machine.apply_started, known=run)
            run = started.run if started else run
            if run.status.is_terminal:
                self._gate.release_slots(slots, item.id)
                return None
        # A redrive plans every step while it holds seeds: a seeded step must not run.
        plan_only = run.force_step_plan or bool(run.seeds)
        body = build_request(
            run,
            fn,
            item,
            disable_immediate_execution=plan_only,
            checkpointing=self._checkpointing,
        )
        try:
            payload = encode_request(body, run, self._encoded)
        except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
            self._gate.release_slots(slots, item.id)
            reason = f"{type(exc).__name__}: {exc}"
            self._transition(
                run.id, lambda r, env: machine.apply_call_unbuildable(r, item, env, reason=reason)
            )
            return None
        return PreparedCall(
            url=call_url(fn, item), body=body, run=run, fn=fn, slots=slots, payload=payload
        )

    def renew_call(self, call: PreparedCall, item: WorkItem) -> None:
        """Keep a long call's concurrency slots alive (a dead worker's slots lapse)."""
        self._gate.renew_slots(call.slots, item.id, now=self.now())

    def release_call(self, call: PreparedCall, item: WorkItem) -> None:
        """Give the call's slots back and wake the item parked longest for each."""
        woken = self._gate.release_and_wake(call.slots, item)
        if woken:
            self._store.queue.wake(woken)
            self._on_enqueue()

    def complete_call(
        self,
        item: WorkItem,
        response: CallResponse,
        *,
        started_at: int,
        run: Run | None = None,
    ) -> Run | None:
        """Apply an SDK call's response; the run as saved (None if it is gone). ``run``:
        the run as ``prepare_call`` loaded it (``PreparedCall.run``); the save is
        conditional on its version, so a run changed meanwhile costs one reload, never a
        decision on stale state."""
        if self._store.appends is not None and checkpoint_append.may_append(item):
            run = None  # memos may have been appended to it since, without a new version
        decision = self._transition(
            item.run_id,
            lambda run, env: machine.apply_call(run, item, response, env, started_at=started_at),
            known=run,
        )
        return decision.run if decision else None

    def checkpoint(self, checkpoint: machine.Checkpoint) -> machine.Verdict:
        """Save the step results an open call reports (``POST /v1/checkpoint/{run}/async``).

        Durable before ack: the verdict is 200 only once the run is saved. It enqueues
        nothing (the open call owns the run's progress); a refusal writes nothing."""
        if self._store.appends is not None:
            appended = self._append_checkpoint(self._store.appends, checkpoint)
            if appended is not None:
                return appended
        verdicts: list[machine.Verdict] = []

        def decide(run: Run, env: Env) -> Decision:
            verdicts.append(machine.apply_checkpoint(run, checkpoint, env))
            return verdicts[-1].decision or Decision.unchanged(run)

        if self._transition(checkpoint.run_id, decide) is None:
            return machine.Verdict(409, f"run {checkpoint.run_id!r} not found")
        return verdicts[-1]

    def _append_checkpoint(
        self, appends: MemoAppends, checkpoint: machine.Checkpoint
    ) -> machine.Verdict | None:
        """A checkpoint saved as its memos alone (``engine.checkpoint_append``), or None
        when it needs a transition. The head is read eventually consistently; a refusal
        is only given on a strongly consistent read."""
        head = appends.run_head(checkpoint.run_id, consistent=False)
        planned = self._plan_append(head, checkpoint)
        if isinstance(planned, machine.Verdict) and not planned.accepted:
            head = appends.run_head(checkpoint.run_id, consistent=True)
            planned = self._plan_append(head, checkpoint)
        if not isinstance(planned, checkpoint_append.Append):
            return planned
        if head is None:  # never: a plan is made from a head
            return None
        stored = appends.append_memos(head, planned.memos, now=self.now())
        for memo, kept in zip(planned.memos, stored, strict=True):
            if kept != memo.memo:
                message = (
                    f"step {memo.record.name!r} ({memo.step_id}) already has a different"
                    " saved result: another call of this run reported it first"
                )
                return machine.Verdict(409, message)
        if not any(kept is memo.memo for memo, kept in zip(planned.memos, stored, strict=True)):
            return machine.Verdict(200, "already saved")  # a re-send: nothing written
        self._observer(head.run, planned.after)
        return machine.Verdict(200, "saved")

    def _plan_append(
        self, head: RunHead | None, checkpoint: machine.Checkpoint
    ) -> machine.Verdict | checkpoint_append.Append | None:
        if head is None:
            return None
        return checkpoint_append.plan(head, checkpoint, self._env(head.run))

    def batch(self) -> AbstractContextManager[object]:
        """Commit the store writes made inside together (where the store can)."""
        return self._batch()

    def fire(self, item: WorkItem) -> None:
        """Handle a due non-call item: a sleep wake-up, a wait timeout or a cron tick."""
        if item.kind is WorkKind.SLEEP:
            self._transition(
                item.run_id, lambda run, env: machine.apply_sleep_elapsed(run, item, env)
            )
        elif item.kind is WorkKind.WAIT_TIMEOUT:
            self._transition(
                item.run_id, lambda run, env: machine.apply_wait_timeout(run, item, env)
            )
        elif item.kind is WorkKind.TIMEOUT:
            self._transition(item.run_id, lambda run, env: machine.apply_timeout(run, item, env))
        elif item.kind is WorkKind.CRON:
            self._cron_tick(item)
        elif item.kind in (WorkKind.DEBOUNCE, WorkKind.BATCH):
            self._windows.fire(item, now=self.now())
        elif item.kind is WorkKind.RERUNS:
            BulkReruns(self).advance(item)

    def _cron_tick(self, item: WorkItem) -> None:
        fn = self._functions.get(item.function_id or "")
        if fn is None or not any(t.cron == item.cron for t in fn.triggers):
            return  # the trigger was removed or changed at a later sync
        event = internal_event(
            {
                "name": lifecycle.SCHEDULED_TIMER,
                "data": {"cron": item.cron, "scheduledAt": item.at, "fireAt": item.at},
            }
        ).identify(self.new_id(), received_at=self.now())
        self._store.events.put_events([event])
        self.start(fn, [event], cron_expr=item.cron, key=f"cron:{fn.id}:{item.at}")
        # Missed ticks during downtime are not replayed: the next tick is after now.
        self._schedule_crons([fn], after=max(item.at, self.now()))

    # ------------------------------------------------------------------ plumbing

    def _function_for(self, run: Run) -> FunctionDef:
        fn = self._functions.get(run.function_id)
        if fn is not None:
            return fn
        # The function was removed at a later sync: finish what we can with no retries.
        return FunctionDef(
            id=run.function_id,
            app_id=run.app_id,
            name=run.function_id,
            url="http://invalid.invalid/",
            triggers=(),
            retries=0,
        )

    def _env(self, run: Run) -> Env:
        jitter = int.from_bytes(self._ids.entropy(2), "big") % 30_000
        return Env(
            now=self.now(),
            fn=self._function_for(run),
            jitter_ms=jitter,
            retry_interval_ms=self._retry_interval_ms,
        )

    def _transition(
        self, run_id: str, decide: Callable[[Run, Env], Decision], *, known: Run | None = None
    ) -> Decision | None:
        """Load, decide and save with a version check; on a lost race, do it again.

        ``known``: the run as the caller last loaded it, tried first instead of a load. It
        may be stale: a save then loses and the run is loaded; a decision to change
        nothing is not trusted to it either (the stored run may call for a change)."""
        if known is not None and (known.id != run_id or known.outbox):
            known = None  # an outbox is applied by a load first (``_load``)
        for _ in range(MAX_SAVE_ATTEMPTS):
            run = known or self._load(run_id)
            if run is None:
                return None
            decision = decide(run, self._env(run))
            if not decision.changed and known is None:
                return decision
            if decision.changed:
                # The save and its effects commit together where the store can batch.
                with self._batch():
                    saved = self._save(run, decision)
                    if saved is not None:
                        return evolve(decision, run=self._flush(saved))
            known = None
        raise StoreError(f"run {run_id}: gave up after {MAX_SAVE_ATTEMPTS} conflicting writes")

    def _save(self, run: Run, decision: Decision) -> Run | None:
        """Save ``decision`` over ``run`` (its waits first); None if the run changed."""
        # ``run.outbox`` is empty unless an outer frame is flushing it (see ``_flush``).
        effects = outbox.merge(run.outbox, self._outbox(decision))
        saved = evolve(decision.run, version=run.version + 1, outbox=effects)
        self._register_waits(decision.waits)
        if not self._store.runs.save_run(saved, expected_version=run.version):
            return None
        self._after_transition(run, saved)
        return saved

    def _after_transition(self, before: Run, after: Run) -> None:
        self._observer(before, after)
        if after.status.is_terminal and not before.status.is_terminal:
            self._gate.release_singleton(self._function_for(after), after, now=self.now())
            self._on_run_ended(after)
        if after.status is not before.status:
            log.info(
                "run %s",
                after.status.value.lower(),
                extra={"run_id": after.id, "function_id": after.function_id},
            )

    def _outbox(self, decision: Decision) -> Outbox:
        return outbox.effects_of(decision, now=self.now(), new_id=self.new_id)

    def _register_waits(self, waits: Sequence[Wait]) -> None:
        """Store a transition's new waits BEFORE the save that makes the run wait.

        Applied only from the outbox, a wait would be missing between the save and the
        outbox's application - for as long as a crashed worker's item takes to come back -
        and an event arriving then would be missed for good, although the run already
        shows it waiting. Written first, the wait exists whenever the run says it waits. A
        save that then loses its race leaves a wait the run does not hold: an event that
        matches it finds the run not waiting and changes nothing (``run.waiting`` is the
        arbiter), and it lapses at its expiry. A failure here fails the transition before
        its save, so nothing is left to re-apply: the outbox carries waits only for their
        signal claims.
        """
        for wait in waits:
            self._store.waits.add_wait(wait)

    def _load(self, run_id: str) -> Run | None:
        """The run, with any outbox a previous transition left behind applied first."""
        run = self._store.runs.get_run(run_id)
        return self._flush(run) if run is not None and run.outbox else run

    def _flush(self, run: Run) -> Run:
        """Apply ``run``'s outbox and acknowledge it (``engine.outbox.flush``)."""
        return outbox.flush(run, self._store.runs, self._apply)

    def _apply(self, effects: Outbox) -> None:
        self._enqueue(effects.enqueue)
        # The waits themselves were stored before the save (``_register_waits``); what
        # follows the save is a signal wait's claim on its signal.
        for wait in effects.waits:
            self._claim_signal(wait)
        for wait_id in effects.drop_waits:
            self._store.waits.take_wait(wait_id)
        for event in effects.publish:
            self._publish(event)

    def _claim_signal(self, wait: Wait) -> None:
        if wait.kind is WaitKind.SIGNAL:
            self.signals.claim(wait, now=self.now())

    def flush_outbox(self, run: Run) -> Run:
        """Apply what a saved transition of ``run`` left unapplied (the sweep's repair)."""
        return self._flush(run)

    def enqueue(self, items: Sequence[WorkItem]) -> None:
        """Queue work items that belong to no run's state (bulk rerun ticks)."""
        self._enqueue(items)

    def _enqueue(self, items: Sequence[WorkItem]) -> None:
        if items:
            self._store.queue.enqueue(items)
            self._on_enqueue()

    def repair(self, runs: Sequence[Run]) -> int:
        """Flush the outboxes of ``runs``, and re-create the queue items and waits that the
        live ones say they have; how many live runs were repaired."""
        repaired = 0
        for listed in runs:
            run = self._flush(listed)
            if run.status.is_terminal:
                continue
            self._enqueue(list(run.pending.values()))
            for wait in (*run.waiting.values(), *run.cancel_waits):
                self._store.waits.add_wait(wait)
                self._claim_signal(wait)
            repaired += 1
        return repaired
