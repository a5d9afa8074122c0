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
from dataclasses import replace

from .decision import Decision, Env, add_item, drop_item
from .flow.config import flow_config
from .lifecycle import TIMEOUT_FINISH, TIMEOUT_START, finish
from .model import JSON, Run, RunStatus, StepStatus, WaitKind, WorkItem, WorkKind
from .opcodes import DEFERRED
from .protocol import CallResponse, Op
from .retry import backoff_ms, parse_retry_after
from .steps import (
    as_mapping,
    complete_deferred,
    ensure_progress,
    maybe_discover,
    record,
    save_memo,
)

__all__ = [
    "INVOKE_TIMEOUT_ERROR",
    "Env",
    "apply_call",
    "apply_call_unbuildable",
    "apply_cancel",
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
        run = record(
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
    return decision.merge(maybe_discover(run, env)) if completed else decision


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
            run=save_memo(
                run, op, {"data": op.data}, StepStatus.COMPLETED, attempts, started_at, env.now
            )
        )
    if op.op == "StepError" and _can_retry(item, resp, env):
        run = record(
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
            run=save_memo(
                run, op, {"error": op.error}, StepStatus.FAILED, attempts, started_at, env.now
            )
        )
    handler = DEFERRED.get(op.op)
    return None if handler is None else handler(run, op, env)
