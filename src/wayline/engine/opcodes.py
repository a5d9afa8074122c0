"""Deferred opcodes: steps the SDK hands back to the server to run or wait on later.

``StepPlanned`` becomes a targeted call, ``Sleep`` a timer, ``WaitForEvent`` a pause, and
``InvokeFunction`` a pause on the child's finish event plus an ``inngest/function.invoked``
event. Each joins the parallel batch in ``run.planned`` until it completes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..errors import ValidationError
from . import expr, signals
from .decision import Decision, Env, add_item
from .durations import parse_duration, sleep_target
from .lifecycle import FUNCTION_FINISHED, FUNCTION_INVOKED
from .model import JSON, Run, StepStatus, Wait, WaitKind, WorkKind
from .protocol import Op
from .steps import already_outstanding, as_mapping, fail_step, record
from .wire import Opcode

DEFAULT_INVOKE_TIMEOUT_MS = 366 * 24 * 3600 * 1000
"""An invoke without a timeout waits as long as a sleep may: 366 days."""


def plan(run: Run, op: Op, env: Env) -> Decision:
    if already_outstanding(run, op.id):
        return Decision.unchanged(run)
    race = bool(op.opts and op.opts.get("parallelMode") == "race")
    run = replace(run, planned=run.planned | {op.id}, race=run.race or race)
    run = record(run, op.id, name=op.label, op=Opcode.STEP_RUN, status=StepStatus.RUNNING)
    run, item = add_item(run, WorkKind.CALL, at=env.now, step_id=op.id)
    return Decision(run=run, enqueue=(item,))


def sleep(run: Run, op: Op, env: Env) -> Decision:
    if already_outstanding(run, op.id):
        return Decision.unchanged(run)
    duration = op.opts.get("duration") if op.opts else None
    try:
        wake_at = sleep_target(op.name, str(duration) if duration else None, now_ms=env.now)
    except ValidationError as exc:
        return fail_step(run, op, env, "InvalidSleep", str(exc))
    run = replace(run, planned=run.planned | {op.id})
    run = record(
        run,
        op.id,
        name=op.display_name or op.id,
        op=Opcode.SLEEP,
        status=StepStatus.SLEEPING,
        started_at=env.now,
        output={"until": wake_at},
    )
    run, item = add_item(run, WorkKind.SLEEP, at=wake_at, step_id=op.id)
    return Decision(run=run, enqueue=(item,))


def wait_for_event(run: Run, op: Op, env: Env) -> Decision:
    if already_outstanding(run, op.id):
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
        return fail_step(run, op, env, "InvalidExpression", str(exc))
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
    return _pause(run, op, wait, env, Opcode.WAIT_FOR_EVENT)


def wait_for_signal(run: Run, op: Op, env: Env) -> Decision:
    """A pause that ``POST /v1/signals`` resolves (one waiter per signal: see
    ``engine.signal_board``); ``opts.conflict`` is accepted, and a second waiter fails."""
    if already_outstanding(run, op.id):
        return Decision.unchanged(run)
    opts = op.opts or {}
    try:
        name = signals.check_name(opts.get("signal") or op.name, field="waitForSignal.signal")
        timeout_ms = parse_duration(str(opts.get("timeout") or ""), field="waitForSignal.timeout")
    except ValidationError as exc:
        return fail_step(run, op, env, "InvalidSignal", str(exc))
    wait = Wait(
        id=f"{run.id}/{op.id}",
        run_id=run.id,
        step_id=op.id,
        kind=WaitKind.SIGNAL,
        event=signals.signal_event(name),
        expression=None,
        expires_at=env.now + timeout_ms,
        created_at=env.now,
    )
    return _pause(run, op, wait, env, Opcode.WAIT_FOR_SIGNAL)


def invoke(run: Run, op: Op, env: Env) -> Decision:
    if already_outstanding(run, op.id):
        return Decision.unchanged(run)
    opts = op.opts or {}
    payload = as_mapping(opts.get("payload"))
    try:
        timeout = opts.get("timeout")
        timeout_ms = (
            parse_duration(str(timeout), field="invoke.timeout")
            if timeout
            else DEFAULT_INVOKE_TIMEOUT_MS
        )
    except ValidationError as exc:
        return fail_step(run, op, env, "InvalidInvoke", str(exc))
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
    data = as_mapping(payload.get("data"))
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
    decision = _pause(run, op, wait, env, Opcode.INVOKE_FUNCTION)
    return replace(decision, publish=(invoked,))


def _pause(run: Run, op: Op, wait: Wait, env: Env, op_name: Opcode) -> Decision:
    run = replace(run, planned=run.planned | {op.id}, waiting={**run.waiting, op.id: wait})
    run = record(
        run,
        op.id,
        name=op.display_name or op.id,
        op=op_name,
        status=StepStatus.WAITING,
        started_at=env.now,
    )
    run, timer = add_item(run, WorkKind.WAIT_TIMEOUT, at=wait.expires_at, step_id=op.id)
    return Decision(run=run, enqueue=(timer,), waits=(wait,))


DEFERRED: dict[str, Callable[[Run, Op, Env], Decision]] = {
    Opcode.STEP_PLANNED: plan,
    Opcode.SLEEP: sleep,
    Opcode.WAIT_FOR_EVENT: wait_for_event,
    Opcode.INVOKE_FUNCTION: invoke,
    Opcode.WAIT_FOR_SIGNAL: wait_for_signal,
}
