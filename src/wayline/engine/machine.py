"""The run state machine: ``(run, input, env) -> Decision``. Pure; never raises for outcomes.

Executor semantics follow the Inngest server (research note §1.10):

* Discovery loop: after every saved step result a ``stepId=step`` call is enqueued,
  unless other deferred ops of the same parallel batch are still outstanding
  (``run.planned``); in race mode discovery follows every completion instead.
* Force step plan: a response with more than one op turns on
  ``disable_immediate_execution`` for later calls; it is reset when discovery is enqueued
  after the batch drains.
* Retries are per work item: ``attempt`` counts failures of the current call and resets
  when a step completes; ``max_attempts = retries + 1``.
* A work item that is not in ``run.pending`` (a duplicate delivery, or the result of a
  call made before the run was cancelled) changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..errors import ValidationError
from . import expr
from .decision import Decision, add_item, drop_item
from .durations import parse_duration, sleep_target
from .lifecycle import FUNCTION_FINISHED, FUNCTION_INVOKED, finish
from .model import (
    JSON,
    FunctionDef,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
    Wait,
    WaitKind,
    WorkItem,
    WorkKind,
)
from .protocol import CallResponse, Op
from .retry import backoff_ms, parse_retry_after

INVOKE_TIMEOUT_ERROR: dict[str, JSON] = {
    "name": "InngestInvokeTimeoutError",
    "message": "Timed out waiting for invoked function to complete",
}
DEFAULT_INVOKE_TIMEOUT_MS = 366 * 24 * 3600 * 1000
DEFERRED_OPS = frozenset({"StepPlanned", "Sleep", "WaitForEvent", "InvokeFunction"})


@dataclass(frozen=True, slots=True)
class Env:
    """Everything a decision may depend on besides the run: injected, never read."""

    now: int
    fn: FunctionDef
    jitter_ms: int = 0
    retry_interval_ms: int | None = None


# --------------------------------------------------------------------------- inputs


def apply_call(
    run: Run, item: WorkItem, resp: CallResponse, env: Env, *, started_at: int
) -> Decision:
    """Apply the result of the SDK call made for ``item``."""
    if run.status.is_terminal or item.id not in run.pending:
        return Decision.unchanged(run)
    run = drop_item(run, item.id)
    if resp.request_version is not None:
        run = replace(run, request_version=resp.request_version)
    if resp.is_sdk and resp.status == 200:
        return finish(run, RunStatus.COMPLETED, resp.body, now=env.now)
    if resp.is_sdk and resp.status == 206 and resp.ops is not None:
        return _ensure_progress(_apply_ops(run, item, resp, env, started_at), env)
    return _call_failed(run, item, resp, env, started_at)


def _ensure_progress(decision: Decision, env: Env) -> Decision:
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


def apply_sleep_elapsed(run: Run, item: WorkItem, env: Env) -> Decision:
    if run.status.is_terminal or item.id not in run.pending or item.step_id is None:
        return Decision.unchanged(run)
    run = drop_item(run, item.id)
    return _complete_deferred(run, item.step_id, None, env, StepStatus.COMPLETED)


def apply_wait_timeout(run: Run, item: WorkItem, env: Env) -> Decision:
    """The timer of a pause fired; a no-op if the pause was resolved first."""
    wait = run.waiting.get(item.step_id or "")
    if wait is None or item.id not in run.pending:
        return Decision.unchanged(run)
    return apply_wait_resolved(run, step_id=wait.step_id, event=None, env=env)


def apply_wait_resolved(
    run: Run, *, step_id: str, event: Mapping[str, JSON] | None, env: Env
) -> Decision:
    """A pause matched an event (``event`` set) or timed out (``event`` None)."""
    if run.status.is_terminal or step_id not in run.waiting:
        return Decision.unchanged(run)
    kind = run.waiting[step_id].kind
    timer_ids = [
        k
        for k, v in run.pending.items()
        if v.kind is WorkKind.WAIT_TIMEOUT and v.step_id == step_id
    ]
    for timer_id in timer_ids:
        run = drop_item(run, timer_id)
    wait_id = run.waiting[step_id].id
    run = replace(run, waiting={k: v for k, v in run.waiting.items() if k != step_id})
    memo, status = _wait_memo(kind, event)
    decision = _complete_deferred(run, step_id, memo, env, status)
    return replace(decision, drop_waits=(*decision.drop_waits, wait_id))


def apply_cancel(run: Run, env: Env, *, reason: str) -> Decision:
    if run.status.is_terminal:
        return Decision.unchanged(run)
    return finish(run, RunStatus.CANCELLED, None, now=env.now, reason=reason)


def _wait_memo(kind: WaitKind, event: Mapping[str, JSON] | None) -> tuple[JSON, StepStatus]:
    if kind is WaitKind.EVENT:
        return (dict(event) if event is not None else None), StepStatus.COMPLETED
    if event is None:
        return {"error": dict(INVOKE_TIMEOUT_ERROR)}, StepStatus.FAILED
    data = _mapping(event.get("data"))
    if data.get("error"):
        return {"error": data["error"]}, StepStatus.FAILED
    return {"data": data.get("result")}, StepStatus.COMPLETED


# --------------------------------------------------------------------------- failures


def _error_output(resp: CallResponse) -> JSON:
    if resp.is_sdk and isinstance(resp.body, Mapping):
        return resp.body
    if resp.transport_error:
        return {"name": "Error", "message": resp.transport_error}
    return {
        "name": "Error",
        "message": f"invalid status code: {resp.status} (the response did not come from an SDK)",
    }


def _retry_delay(item: WorkItem, resp: CallResponse, env: Env) -> int:
    after = parse_retry_after(resp.retry_after, now_ms=env.now)
    if after is not None:
        return after
    return backoff_ms(
        item.attempt, jitter_ms=env.jitter_ms, fixed_interval_ms=env.retry_interval_ms
    )


def _can_retry(item: WorkItem, resp: CallResponse, env: Env) -> bool:
    return not resp.no_retry and item.attempt + 1 < env.fn.max_attempts


def _call_failed(
    run: Run, item: WorkItem, resp: CallResponse, env: Env, started_at: int
) -> Decision:
    """A function-level error (500, non-SDK response, transport failure)."""
    output = _error_output(resp)
    if item.step_id is not None:
        run = _record(
            run,
            item.step_id,
            status=StepStatus.RUNNING,
            error=output,
            attempts=item.attempt + 1,
            started_at=started_at,
        )
    if not _can_retry(item, resp, env):
        return finish(run, RunStatus.FAILED, output, now=env.now)
    run, retry = add_item(
        run,
        WorkKind.CALL,
        at=env.now + _retry_delay(item, resp, env),
        step_id=item.step_id,
        attempt=item.attempt + 1,
    )
    return Decision(run=run, enqueue=(retry,))


# --------------------------------------------------------------------------- opcodes


def _apply_ops(run: Run, item: WorkItem, resp: CallResponse, env: Env, started_at: int) -> Decision:
    ops = resp.ops or ()
    decision = Decision(run=run)
    completed = False
    for op in ops:
        step = _apply_op(decision.run, item, op, resp, env, started_at)
        if step is None:
            message = f"opcode {op.op!r} (step {op.label!r}) is not supported by Wayline"
            return finish(
                decision.run, RunStatus.FAILED, {"name": "Error", "message": message}, now=env.now
            )
        if step.run.status.is_terminal:
            return decision.merge(step)
        decision = decision.merge(step)
        completed = completed or _is_completion(op, resp, item, env)
    run = decision.run
    if len(ops) > 1:
        run = replace(run, force_step_plan=True)
    if not ops and not run.pending and not run.waiting:
        message = "the SDK reported no steps and did not complete the function"
        return decision.merge(
            finish(run, RunStatus.FAILED, {"name": "Error", "message": message}, now=env.now)
        )
    decision = replace(decision, run=run)
    return decision.merge(_maybe_discover(run, env)) if completed else decision


def _is_completion(op: Op, resp: CallResponse, item: WorkItem, env: Env) -> bool:
    if op.op in ("StepRun", "Step", "StepFailed"):
        return True
    return op.op == "StepError" and not _can_retry(item, resp, env)


def _apply_op(
    run: Run, item: WorkItem, op: Op, resp: CallResponse, env: Env, started_at: int
) -> Decision | None:
    attempts = item.attempt + 1
    if op.op in ("StepRun", "Step"):
        return Decision(
            run=_save_memo(
                run, op, {"data": op.data}, StepStatus.COMPLETED, attempts, started_at, env.now
            )
        )
    if op.op == "StepError" and _can_retry(item, resp, env):
        run = _record(
            run,
            op.id,
            name=op.label,
            op="StepRun",
            status=StepStatus.RUNNING,
            error=op.error,
            attempts=attempts,
            started_at=started_at,
        )
        delay = _retry_delay(item, resp, env)
        run, retry = add_item(
            run, WorkKind.CALL, at=env.now + delay, step_id=op.id, attempt=item.attempt + 1
        )
        return Decision(run=run, enqueue=(retry,))
    if op.op in ("StepError", "StepFailed"):
        return Decision(
            run=_save_memo(
                run, op, {"error": op.error}, StepStatus.FAILED, attempts, started_at, env.now
            )
        )
    handler = _DEFERRED.get(op.op)
    return None if handler is None else handler(run, op, env)


def _already_outstanding(run: Run, step_id: str) -> bool:
    return (
        step_id in run.memos
        or step_id in run.waiting
        or any(p.step_id == step_id for p in run.pending.values())
    )


def _plan(run: Run, op: Op, env: Env) -> Decision:
    if _already_outstanding(run, op.id):
        return Decision.unchanged(run)
    race = bool(op.opts and op.opts.get("parallelMode") == "race")
    run = replace(run, planned=run.planned | {op.id}, race=run.race or race)
    run = _record(run, op.id, name=op.label, op="StepRun", status=StepStatus.RUNNING)
    run, item = add_item(run, WorkKind.CALL, at=env.now, step_id=op.id)
    return Decision(run=run, enqueue=(item,))


def _sleep(run: Run, op: Op, env: Env) -> Decision:
    if _already_outstanding(run, op.id):
        return Decision.unchanged(run)
    duration = op.opts.get("duration") if op.opts else None
    try:
        wake_at = sleep_target(op.name, str(duration) if duration else None, now_ms=env.now)
    except ValidationError as exc:
        return _fail_step(run, op, env, "InvalidSleep", str(exc))
    run = replace(run, planned=run.planned | {op.id})
    run = _record(
        run,
        op.id,
        name=op.display_name or op.id,
        op="Sleep",
        status=StepStatus.SLEEPING,
        started_at=env.now,
        output={"until": wake_at},
    )
    run, item = add_item(run, WorkKind.SLEEP, at=wake_at, step_id=op.id)
    return Decision(run=run, enqueue=(item,))


def _wait_for_event(run: Run, op: Op, env: Env) -> Decision:
    if _already_outstanding(run, op.id):
        return Decision.unchanged(run)
    opts = op.opts or {}
    event_name = str(opts.get("event") or op.name)
    try:
        timeout_ms = parse_duration(str(opts.get("timeout") or ""), field="waitForEvent.timeout")
        condition = opts.get("if")
        expression = expr.interpolate(str(condition), event=run.events[0]) if condition else None
        if expression:
            expr.validate(expression, field="waitForEvent.if")
    except ValidationError as exc:
        return _fail_step(run, op, env, "InvalidExpression", str(exc))
    wait = Wait(
        id=f"{run.id}/{op.id}",
        run_id=run.id,
        step_id=op.id,
        kind=WaitKind.EVENT,
        event=event_name,
        expression=expression,
        expires_at=env.now + timeout_ms,
        created_at=env.now,
    )
    return _pause(run, op, wait, env, "WaitForEvent")


def _invoke(run: Run, op: Op, env: Env) -> Decision:
    if _already_outstanding(run, op.id):
        return Decision.unchanged(run)
    opts = op.opts or {}
    payload = _mapping(opts.get("payload"))
    try:
        timeout = opts.get("timeout")
        timeout_ms = (
            parse_duration(str(timeout), field="invoke.timeout")
            if timeout
            else DEFAULT_INVOKE_TIMEOUT_MS
        )
    except ValidationError as exc:
        return _fail_step(run, op, env, "InvalidInvoke", str(exc))
    correlation_id = f"{run.id}.{op.id}"
    wait = Wait(
        id=f"{run.id}/{op.id}",
        run_id=run.id,
        step_id=op.id,
        kind=WaitKind.INVOKE,
        event=FUNCTION_FINISHED,
        expression=f'async.data.correlation_id == "{correlation_id}"',
        expires_at=env.now + timeout_ms,
        created_at=env.now,
    )
    data = _mapping(payload.get("data"))
    invoked: dict[str, JSON] = {
        "name": FUNCTION_INVOKED,
        "data": {
            **data,
            "_inngest": {
                "fn_id": str(opts.get("function_id") or ""),
                "correlation_id": correlation_id,
                "expire": wait.expires_at,
                "source_app_id": env.fn.app_id,
                "source_fn_id": env.fn.id,
                "source_fn_v": 1,
                "name": op.label,
            },
        },
    }
    if payload.get("v"):
        invoked["v"] = payload["v"]
    decision = _pause(run, op, wait, env, "InvokeFunction")
    return replace(decision, publish=(invoked,))


def _mapping(value: JSON) -> Mapping[str, JSON]:
    return value if isinstance(value, Mapping) else {}


def _pause(run: Run, op: Op, wait: Wait, env: Env, op_name: str) -> Decision:
    run = replace(run, planned=run.planned | {op.id}, waiting={**run.waiting, op.id: wait})
    run = _record(
        run,
        op.id,
        name=op.display_name or op.id,
        op=op_name,
        status=StepStatus.WAITING,
        started_at=env.now,
    )
    run, timer = add_item(run, WorkKind.WAIT_TIMEOUT, at=wait.expires_at, step_id=op.id)
    return Decision(run=run, enqueue=(timer,), waits=(wait,))


_DEFERRED = {
    "StepPlanned": _plan,
    "Sleep": _sleep,
    "WaitForEvent": _wait_for_event,
    "InvokeFunction": _invoke,
}


def _fail_step(run: Run, op: Op, env: Env, name: str, message: str) -> Decision:
    """Memoize an error for a step whose options were invalid; the SDK raises StepError."""
    memo = {"error": {"name": name, "message": message}}
    run = _save_memo(run, op, memo, StepStatus.FAILED, 1, env.now, env.now)
    return _maybe_discover(run, env)


# --------------------------------------------------------------------------- memos


def _save_memo(
    run: Run, op: Op, memo: JSON, status: StepStatus, attempts: int, started_at: int, now: int
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
    return _record(
        run,
        op.id,
        name=op.label,
        op="StepRun",
        status=status,
        attempts=attempts,
        started_at=started_at,
        ended_at=now,
        output=output,
        error=error,
    )


def _complete_deferred(
    run: Run, step_id: str, memo: JSON, env: Env, status: StepStatus
) -> Decision:
    record = run.step(step_id)
    op = Op(
        op=record.op if record else "Step",
        id=step_id,
        display_name=record.name if record else step_id,
    )
    started = record.started_at if record else env.now
    run = _save_memo(run, op, memo, status, 1, started, env.now)
    if record is not None and record.op != "StepRun":
        updated = run.step(step_id)
        if updated is not None:
            run = run.with_step(replace(updated, op=record.op))
    return _maybe_discover(run, env)


def _maybe_discover(run: Run, env: Env) -> Decision:
    """Enqueue discovery after a completion, coalesced per parallel batch."""
    if run.planned and not run.race:
        return Decision(run=run)
    if any(p.kind is WorkKind.CALL and p.step_id is None for p in run.pending.values()):
        return Decision(run=run)
    if not run.planned:
        run = replace(run, force_step_plan=False, race=False)
    run, item = add_item(run, WorkKind.CALL, at=env.now)
    return Decision(run=run, enqueue=(item,))


def _record(
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
) -> Run:
    """Upsert the timeline entry of a step, keeping fields that are not given."""
    old = run.step(step_id) or StepRecord(
        id=step_id, name=name or step_id, op=op or "StepRun", status=status
    )
    return run.with_step(
        replace(
            old,
            name=name or old.name,
            op=op or old.op,
            status=status,
            attempts=old.attempts if attempts is None else attempts,
            started_at=old.started_at if started_at is None else started_at,
            ended_at=ended_at,
            output=old.output if output is None else output,
            error=error,
        )
    )
