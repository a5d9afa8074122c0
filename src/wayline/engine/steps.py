"""Step bookkeeping shared by the machine and the opcode handlers: memos, the timeline,
and when to rediscover."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from .decision import Decision, Env, add_item
from .model import JSON, Attempt, Run, StepRecord, StepStatus, WorkKind
from .protocol import Op
from .wire import Opcode


def ensure_progress(decision: Decision, env: Env) -> Decision:
    """A live run must always wait for something: if nothing is pending, rediscover.

    This happens when a discovery call that was already in flight when a step completed
    (race mode) reports only steps that are done or outstanding: the completion skipped
    its own discovery because one was pending, and the stale one planned nothing new.
    Discovery is a replay, so an extra one is harmless; a stalled run is not.
    """
    run = decision.run
    if run.status.is_terminal or run.pending or run.waiting:
        return decision
    run, item = add_item(run, WorkKind.CALL, at=env.now)
    return replace(decision, run=run, enqueue=(*decision.enqueue, item))


def already_outstanding(run: Run, step_id: str) -> bool:
    return (
        step_id in run.memos
        or step_id in run.waiting
        or any(p.step_id == step_id for p in run.pending.values())
    )


def fail_step(run: Run, op: Op, env: Env, name: str, message: str) -> Decision:
    """Memoize an error for a step whose options were invalid; the SDK raises StepError."""
    memo = {"error": {"name": name, "message": message}}
    run = save_memo(run, op, memo, StepStatus.FAILED, 1, env.now, env.now)
    return maybe_discover(run, env)


MAX_HISTORY = 50
"""Tries kept per step (and call failures per run): the most recent ones. A step has at
most ``retries + 1`` (21) tries per work item, so this only bounds pathological runs."""
HISTORY_STACK_CHARS = 4096
"""Longest stack kept in an attempt of the history. The run body is rewritten on every
save, so 20 retries of a deep stack would make every later save costly; the step's own
``error`` keeps the last try's error whole, and a cut stack says how much was cut."""


def save_memo(
    run: Run,
    op: Op,
    memo: JSON,
    status: StepStatus,
    attempts: int,
    started_at: int,
    now: int,
    *,
    attempt: Attempt | None = None,
) -> Run:
    if op.id in run.memos:
        return replace(run, planned=run.planned - {op.id})
    output = memo.get("data") if isinstance(memo, Mapping) else None
    error = memo.get("error") if isinstance(memo, Mapping) else None
    run = replace(
        run,
        memos={**run.memos, op.id: memo},
        stack=(*run.stack, op.id),
        planned=run.planned - {op.id},
    )
    return record(
        run,
        op.id,
        name=op.label,
        op=Opcode.STEP_RUN,
        status=status,
        attempts=attempts,
        started_at=started_at,
        ended_at=now,
        output=output,
        error=error,
        attempt=attempt,
    )


def complete_deferred(run: Run, step_id: str, memo: JSON, env: Env, status: StepStatus) -> Decision:
    record = run.step(step_id)
    op = Op(
        op=record.op if record else Opcode.STEP,
        id=step_id,
        display_name=record.name if record else step_id,
    )
    started = record.started_at if record else env.now
    run = save_memo(run, op, memo, status, 1, started, env.now)
    updated = run.step(step_id)
    if record is not None and updated is not None and record.op != Opcode.STEP_RUN:
        # A waitForEvent memo is the bare event, not a {"data": ...} wrapper: show it whole.
        output = memo if record.op == Opcode.WAIT_FOR_EVENT else updated.output
        run = run.with_step(replace(updated, op=record.op, output=output))
    return maybe_discover(run, env)


def maybe_discover(run: Run, env: Env) -> Decision:
    """Enqueue discovery after a completion, coalesced per parallel batch."""
    if run.planned and not run.race:
        return Decision(run=run)
    if any(p.kind is WorkKind.CALL and p.step_id is None for p in run.pending.values()):
        return Decision(run=run)
    if not run.planned:
        run = replace(run, force_step_plan=False, race=False)
    run, item = add_item(run, WorkKind.CALL, at=env.now)
    return Decision(run=run, enqueue=(item,))


def record(
    run: Run,
    step_id: str,
    *,
    status: StepStatus,
    name: str | None = None,
    op: str | None = None,
    attempts: int | None = None,
    started_at: int | None = None,
    ended_at: int | None = None,
    output: JSON = None,
    error: JSON = None,
    attempt: Attempt | None = None,
) -> Run:
    """Upsert the timeline entry of a step, keeping fields that are not given; ``attempt``
    is added to the step's history."""
    return run.with_step(
        recorded(
            run.step(step_id),
            step_id,
            status=status,
            name=name,
            op=op,
            attempts=attempts,
            started_at=started_at,
            ended_at=ended_at,
            output=output,
            error=error,
            attempt=attempt,
        )
    )


def recorded(
    old: StepRecord | None,
    step_id: str,
    *,
    status: StepStatus,
    name: str | None = None,
    op: str | None = None,
    attempts: int | None = None,
    started_at: int | None = None,
    ended_at: int | None = None,
    output: JSON = None,
    error: JSON = None,
    attempt: Attempt | None = None,
) -> StepRecord:
    """``old`` (the step's timeline entry, None if it has none yet) as ``record`` updates it."""
    if old is None:  # made at once: no blank record to copy (a step saved per checkpoint)
        return StepRecord(
            id=step_id,
            name=name or step_id,
            op=op or Opcode.STEP_RUN,
            status=status,
            attempts=0 if attempts is None else attempts,
            started_at=0 if started_at is None else started_at,
            ended_at=ended_at,
            output=output,
            error=error,
            history=_history((), attempt),
        )
    return replace(
        old,
        name=name or old.name,
        op=op or old.op,
        status=status,
        attempts=old.attempts if attempts is None else attempts,
        started_at=old.started_at if started_at is None else started_at,
        ended_at=ended_at,
        output=old.output if output is None else output,
        error=error,
        history=_history(old.history, attempt),
    )


def _history(history: tuple[Attempt, ...], attempt: Attempt | None) -> tuple[Attempt, ...]:
    """A step's history after ``attempt``. A first try that succeeds is not written: the
    step record alone says all of it (``StepRecord.tries``), and the run body, rewritten
    on every save, stays as small as before for the common case."""
    if attempt is None:
        return history
    if not history and attempt.number == 1 and attempt.status is StepStatus.COMPLETED:
        return history
    return with_attempt(history, attempt)


def with_attempt(history: tuple[Attempt, ...], attempt: Attempt) -> tuple[Attempt, ...]:
    """``history`` plus ``attempt`` (its stack bounded), keeping the last ``MAX_HISTORY``."""
    kept = replace(attempt, error=_bounded_stack(attempt.error))
    return (*history, kept)[-MAX_HISTORY:]


def _bounded_stack(error: JSON) -> JSON:
    if not isinstance(error, Mapping):
        return error
    stack = error.get("stack")
    if not isinstance(stack, str) or len(stack) <= HISTORY_STACK_CHARS:
        return error
    cut = len(stack) - HISTORY_STACK_CHARS
    note = f"\n... {cut} more characters cut (the step's error keeps its last try whole)"
    return {**error, "stack": stack[:HISTORY_STACK_CHARS] + note}


def as_mapping(value: JSON) -> Mapping[str, JSON]:
    return value if isinstance(value, Mapping) else {}
