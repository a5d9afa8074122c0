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
  call made before the run was cancelled) changes nothing. The attempt number is the
  pending item's, not the delivered message's: a checkpoint resets it mid-call.
* ``RunComplete`` in a 206 (how a checkpointing JS v4 call ends) saves the step results
  of the same response, then completes the run with its ``data``.
* Checkpoints (``engine.checkpoint``) save step results while the call is open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from . import aigateway, gateway, redrive, signals
from .backoff import parse_policy
from .checkpoint import Checkpoint, Verdict, apply_checkpoint
from .decision import Decision, Env, add_item, drop_item
from .flow.config import flow_config
from .lifecycle import TIMEOUT_FINISH, TIMEOUT_START, finish
from .model import JSON, Attempt, Run, RunStatus, StepStatus, WaitKind, WorkItem, WorkKind
from .opcodes import DEFERRED
from .protocol import CallResponse, Op
from .retry import MAX_JITTER_MS, backoff_ms, parse_retry_after
from .steps import (
    as_mapping,
    complete_deferred,
    ensure_progress,
    maybe_discover,
    record,
    save_memo,
    with_attempt,
)
from .wire import STEP_RESULTS, Opcode

__all__ = [
    "INVOKE_TIMEOUT_ERROR",
    "Checkpoint",
    "Env",
    "Verdict",
    "apply_call",
    "apply_call_unbuildable",
    "apply_cancel",
    "apply_checkpoint",
    "apply_sleep_elapsed",
    "apply_started",
    "apply_timeout",
    "apply_wait_resolved",
    "apply_wait_timeout",
]

INVOKE_TIMEOUT_ERROR: dict[str, JSON] = {
    "name": "InngestInvokeTimeoutError",
    "message": "Timed out waiting for invoked function to complete",
}


# --------------------------------------------------------------------------- inputs


def apply_call(
    run: Run, item: WorkItem, resp: CallResponse, env: Env, *, started_at: int
) -> Decision:
    """Apply the result of the SDK call made for ``item``."""
    if run.status.is_terminal or item.id not in run.pending:
        return Decision.unchanged(run)
    item = run.pending[item.id]  # its attempt as a checkpoint may have reset it
    run = drop_item(run, item.id)
    started = apply_started(run, replace(env, now=started_at))  # if no one marked it yet
    run = started.run
    if resp.request_version is not None:
        run = replace(run, request_version=resp.request_version)
    if resp.is_sdk and resp.status == 200:
        return finish(run, RunStatus.COMPLETED, resp.body, now=env.now)
    if resp.is_sdk and resp.status == 206 and resp.ops is not None:
        decision = ensure_progress(_apply_ops(run, item, resp, env, started_at), env)
    else:
        decision = _call_failed(run, item, resp, env, started_at)
    return started.merge(decision) if not decision.run.status.is_terminal else decision


def apply_call_unbuildable(run: Run, item: WorkItem, env: Env, *, reason: str) -> Decision:
    """The request for ``item`` cannot be built (a stored value canonical JSON refuses):
    no attempt can ever succeed, so the run fails now, saying why, instead of hanging."""
    if run.status.is_terminal or item.id not in run.pending:
        return Decision.unchanged(run)
    message = f"the request to the SDK could not be built: {reason}"
    return finish(
        drop_item(run, item.id),
        RunStatus.FAILED,
        {"name": "Error", "message": message},
        now=env.now,
    )


def apply_sleep_elapsed(run: Run, item: WorkItem, env: Env) -> Decision:
    if run.status.is_terminal or item.id not in run.pending or item.step_id is None:
        return Decision.unchanged(run)
    run = drop_item(run, item.id)
    return complete_deferred(run, item.step_id, None, env, StepStatus.COMPLETED)


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
    decision = complete_deferred(run, step_id, memo, env, status)
    return replace(decision, drop_waits=(*decision.drop_waits, wait_id))


def apply_started(run: Run, env: Env) -> Decision:
    """The first SDK call of the run is about to be made: it is running from now on.

    Written once per run, so ``timeouts.start`` can tell a queued run from a running one
    and ``timeouts.finish`` can count from the first attempt.
    """
    if run.status.is_terminal or run.started_at is not None:
        return Decision.unchanged(run)
    run = replace(run, status=RunStatus.RUNNING, started_at=env.now)
    finish_ms = flow_config(env.fn).finish_timeout_ms
    if finish_ms is None:
        return Decision(run=run)
    run, timer = add_item(run, WorkKind.TIMEOUT, at=env.now + finish_ms, step_id=TIMEOUT_FINISH)
    return Decision(run=run, enqueue=(timer,))


def apply_timeout(run: Run, item: WorkItem, env: Env) -> Decision:
    """``timeouts.start`` / ``timeouts.finish`` expired: cancel the run with the reason."""
    if run.status.is_terminal or item.id not in run.pending:
        return Decision.unchanged(run)
    run = drop_item(run, item.id)
    flow = flow_config(env.fn)
    if item.step_id == TIMEOUT_START:
        if run.started_at is not None:
            return Decision(run=run)
        reason = f"timeouts.start: not started within {flow.start_timeout_ms} ms"
    else:
        reason = f"timeouts.finish: not finished within {flow.finish_timeout_ms} ms of starting"
    return finish(run, RunStatus.CANCELLED, None, now=env.now, reason=reason)


def apply_cancel(run: Run, env: Env, *, reason: str) -> Decision:
    if run.status.is_terminal:
        return Decision.unchanged(run)
    return finish(run, RunStatus.CANCELLED, None, now=env.now, reason=reason)


def _wait_memo(kind: WaitKind, event: Mapping[str, JSON] | None) -> tuple[JSON, StepStatus]:
    if kind is WaitKind.SIGNAL:
        return signals.memo(event)
    if kind is WaitKind.EVENT:
        return (dict(event) if event is not None else None), StepStatus.COMPLETED
    if event is None:
        return {"error": dict(INVOKE_TIMEOUT_ERROR)}, StepStatus.FAILED
    data = as_mapping(event.get("data"))
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


def _retry_delay(item: WorkItem, resp: CallResponse, env: Env, step_name: str | None) -> int:
    """The app's ``retry-after``, else the function's declared backoff for the step, else the
    default table (or the dev server's fixed interval)."""
    after = parse_retry_after(resp.retry_after, now_ms=env.now)
    if after is not None:
        return after
    declared = parse_policy(env.fn.config, where=f"function {env.fn.id!r}").for_step(step_name)
    if declared is not None:
        return declared.delay_ms(item.attempt, jitter_fraction=env.jitter_ms / MAX_JITTER_MS)
    return backoff_ms(
        item.attempt, jitter_ms=env.jitter_ms, fixed_interval_ms=env.retry_interval_ms
    )


def _step_name(run: Run, step_id: str | None) -> str | None:
    if step_id is None:
        return None
    return next((s.name for s in run.steps if s.id == step_id), None)


def _can_retry(item: WorkItem, resp: CallResponse, env: Env) -> bool:
    return not resp.no_retry and item.attempt + 1 < env.fn.max_attempts


def _call_failed(
    run: Run, item: WorkItem, resp: CallResponse, env: Env, started_at: int
) -> Decision:
    """A function-level error (500, non-SDK response, transport failure): recorded on the
    step the call was for, or on the run when it was a discovery call, with its retry."""
    output = _error_output(resp)
    name = _step_name(run, item.step_id)
    can = _can_retry(item, resp, env)
    retry_at = env.now + _retry_delay(item, resp, env, name) if can else None
    attempt = Attempt(
        number=item.attempt + 1,
        started_at=started_at,
        ended_at=env.now,
        status=StepStatus.FAILED,
        error=output,
        retry_at=retry_at,
    )
    if item.step_id is not None:
        run = record(
            run,
            item.step_id,
            status=StepStatus.RUNNING,
            error=output,
            attempts=item.attempt + 1,
            started_at=started_at,
            attempt=attempt,
        )
    else:
        run = replace(run, call_failures=with_attempt(run.call_failures, attempt))
    if retry_at is None:
        return finish(run, RunStatus.FAILED, output, now=env.now)
    run, retry = add_item(
        run, WorkKind.CALL, at=retry_at, step_id=item.step_id, attempt=item.attempt + 1
    )
    return Decision(run=run, enqueue=(retry,))


# --------------------------------------------------------------------------- opcodes


def _apply_ops(run: Run, item: WorkItem, resp: CallResponse, env: Env, started_at: int) -> Decision:
    ops = resp.ops or ()
    complete = next((op for op in ops if op.op == Opcode.RUN_COMPLETE), None)
    if complete is not None:
        return _run_complete(run, item, resp, env, started_at, complete)
    decision = Decision(run=run)
    completed = False
    for op in ops:
        seeded = redrive.takes_seed(decision.run, op)
        step = (
            redrive.use_seed(decision.run, op, now=env.now)
            if seeded
            else _apply_op(decision.run, item, op, resp, env, started_at)
        )
        if step is None:
            return decision.merge(_unsupported(decision.run, op, env))
        if step.run.status.is_terminal:
            return decision.merge(step)
        decision = decision.merge(step)
        completed = completed or seeded or _is_completion(op, resp, item, env, decision.run)
    run = decision.run
    if len(ops) > 1:
        run = replace(run, force_step_plan=True)
    if not ops and not run.pending and not run.waiting:
        message = "the SDK reported no steps and did not complete the function"
        return decision.merge(
            finish(run, RunStatus.FAILED, {"name": "Error", "message": message}, now=env.now)
        )
    decision = replace(decision, run=run)
    return decision.merge(maybe_discover(run, env)) if completed else decision


def _run_complete(
    run: Run, item: WorkItem, resp: CallResponse, env: Env, started_at: int, complete: Op
) -> Decision:
    """The function returned: keep the step results sent along (steps the SDK buffered,
    or could not checkpoint), then complete with ``data``. Nothing is discovered; other
    ops riding along (lazy ops) are dropped, as the Inngest executor does."""
    decision = Decision(run=run)
    for op in ops_of(resp, STEP_RESULTS):
        saved = _apply_op(decision.run, item, op, resp, env, started_at)
        if saved is not None:
            decision = decision.merge(saved)
    return decision.merge(finish(decision.run, RunStatus.COMPLETED, complete.data, now=env.now))


def ops_of(resp: CallResponse, opcodes: frozenset[Opcode]) -> tuple[Op, ...]:
    return tuple(op for op in resp.ops or () if op.op in opcodes)


def _unsupported(run: Run, op: Op, env: Env) -> Decision:
    """Fail the run over an opcode Wayline does not know, showing the step that sent it."""
    error: dict[str, JSON] = {
        "name": "Error",
        "message": f"opcode {op.op!r} (step {op.label!r}) is not supported by Wayline",
    }
    run = record(
        run,
        op.id,
        name=op.label,
        op=op.op or "Unknown",
        status=StepStatus.FAILED,
        started_at=env.now,
        ended_at=env.now,
        error=error,
    )
    return finish(run, RunStatus.FAILED, error, now=env.now)


def _is_completion(op: Op, resp: CallResponse, item: WorkItem, env: Env, run: Run) -> bool:
    if op.op in STEP_RESULTS or op.op == Opcode.STEP_FAILED:
        return True  # also for a memo a checkpoint saved first (inngest#4130)
    if op.op in gateway.OPCODES:
        return op.id in run.memos
    return op.op == Opcode.STEP_ERROR and not _can_retry(item, resp, env)


def _apply_op(
    run: Run, item: WorkItem, op: Op, resp: CallResponse, env: Env, started_at: int
) -> Decision | None:
    attempts = item.attempt + 1
    run = redrive.drop_seed(run, op.id)  # a redrive's step that ran anyway needs no seed

    def tried(status: StepStatus, retry_at: int | None = None) -> Attempt:
        error = op.error if status is StepStatus.FAILED else None
        return Attempt(attempts, started_at, env.now, status, error, retry_at)

    if op.op in STEP_RESULTS:
        memo = {"data": op.data}
        done = tried(StepStatus.COMPLETED)
        return Decision(
            run=save_memo(
                run, op, memo, StepStatus.COMPLETED, attempts, started_at, env.now, attempt=done
            )
        )
    if op.op == Opcode.STEP_ERROR and _can_retry(item, resp, env):
        retry_at = env.now + _retry_delay(item, resp, env, op.label)
        run = record(
            run,
            op.id,
            name=op.label,
            op=Opcode.STEP_RUN,
            status=StepStatus.RUNNING,
            error=op.error,
            attempts=attempts,
            started_at=started_at,
            attempt=tried(StepStatus.FAILED, retry_at),
        )
        run, retry = add_item(
            run, WorkKind.CALL, at=retry_at, step_id=op.id, attempt=item.attempt + 1
        )
        return Decision(run=run, enqueue=(retry,))
    if op.op in (Opcode.STEP_ERROR, Opcode.STEP_FAILED):
        memo = {"error": op.error}
        failed = tried(StepStatus.FAILED)
        return Decision(
            run=save_memo(
                run, op, memo, StepStatus.FAILED, attempts, started_at, env.now, attempt=failed
            )
        )
    if op.op in gateway.OPCODES:

        def next_retry_at() -> int | None:
            can = _can_retry(item, resp, env)
            return env.now + _retry_delay(item, resp, env, op.label) if can else None

        return aigateway.apply(run, item, op, env, started_at=started_at, retry_at=next_retry_at)
    handler = DEFERRED.get(op.op)
    return None if handler is None else handler(run, op, env)
