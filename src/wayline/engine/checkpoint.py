"""Async checkpoints: step results an SDK reports while its call is still open. Pure.

The JS SDK v4 (and Wayline's SDK) runs consecutive ``step.run``s inside one call when the
call request carries ``ctx.fn_id`` / ``ctx.qi_id`` (``protocol.checkpoint_ids``), and
after each one ``POST /v1/checkpoint/{run}/async`` with the result (research note
``checkpointing.md`` §1.3, §3.4). The rules:

* Fence: accepted only for a live run whose work item ``qi_id`` is still pending, i.e.
  from the call that is open right now. A cancelled or timed-out run, or a dispatch
  whose item was already answered (a retry got a new item id), gets 409 and the SDK
  stops. A rejected checkpoint writes nothing.
* Durable before ack: the 200 is sent only after the run holding the memos is saved.
* Write-once: a step already saved with the same result is a 200 that changes nothing
  (an SDK retry after a lost ack); a different result is a 409 (two live writers).
* A checkpoint never schedules work: the open call owns the run's progress until it
  answers. It resets the call's attempt count, so a failure later in the same call is
  retried from attempt 0 (``ResetAttemptsByJobID`` in Inngest).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ..errors import ValidationError
from .decision import Decision, Env
from .evolve import evolve
from .model import (
    JSON,
    Attempt,
    Run,
    StepRecord,
    StepStatus,
    WorkKind,
    timeline_step,
    timeline_with,
)
from .protocol import Op, parse_op, remembered_size, state_size, state_size_with
from .steps import recorded
from .wire import STEP_RESULTS, Opcode

MAX_STEP_OUTPUT_BYTES = 4 * 1024 * 1024
"""One step's result, as compact JSON (Inngest's ``MaxStepOutputSize``)."""
MAX_STATE_BYTES = 32 * 1024 * 1024
"""Events and memos of a run after the checkpoint (Inngest's ``DefaultMaxStateSizeLimit``)."""
MAX_STEPS = 1000
"""Steps in one checkpoint request (JS sends one per request unless it buffers)."""
_ACCEPTED = frozenset({*STEP_RESULTS, Opcode.STEP_PLANNED})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A validated checkpoint request: the work item it comes from and its steps."""

    run_id: str
    qi_id: str
    steps: tuple[Op, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a checkpoint decided: the HTTP status for the SDK, why, and the run change."""

    status: int
    message: str
    decision: Decision | None = None
    """None when there was no run to decide on."""

    @property
    def accepted(self) -> bool:
        return self.status == 200


def parse(body: JSON, *, run_id: str) -> Checkpoint:
    """Check a decoded request body; ``ValidationError`` names the field and the rule.

    Unknown keys are ignored (JS also sends ``request_id``, ``generation_id``, ``ts``...,
    and spreads its own step records into ``steps``)."""
    if not isinstance(body, Mapping):
        raise ValidationError("body must be a JSON object", field="body")
    body_run = body.get("run_id")
    if body_run is not None and body_run != run_id:
        raise ValidationError(
            f"run_id {body_run!r} does not match the run in the path ({run_id!r})", field="run_id"
        )
    qi_id = body.get("qi_id")
    if not isinstance(qi_id, str) or not qi_id:
        raise ValidationError(
            "qi_id must be a non-empty string (ctx.qi_id of the call)", field="qi_id"
        )
    fn_id = body.get("fn_id")
    if fn_id is not None and not isinstance(fn_id, str):
        raise ValidationError(f"fn_id must be a string, got {type(fn_id).__name__}", field="fn_id")
    raw_steps = body.get("steps")
    if not isinstance(raw_steps, list):
        raise ValidationError("steps must be a list of step objects", field="steps")
    if len(raw_steps) > MAX_STEPS:
        raise ValidationError(
            f"steps has {len(raw_steps)} entries; the limit is {MAX_STEPS}", field="steps"
        )
    return Checkpoint(
        run_id=run_id, qi_id=qi_id, steps=tuple(_step(s, i) for i, s in enumerate(raw_steps))
    )


def _step(raw: JSON, index: int) -> Op:
    where = f"steps[{index}]"
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where} must be an object", field=where)
    for key in ("op", "id"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise ValidationError(
                f"{where}.{key} must be a non-empty string", field=f"{where}.{key}"
            )
    return parse_op(raw)


def apply_checkpoint(run: Run, checkpoint: Checkpoint, env: Env) -> Verdict:
    """Save the checkpoint's step results into ``run``, or say why not (nothing written).

    What ``steps.save_memo`` does for each result (memo, stack, timeline record), built
    up step by step and made into the new run with one copy: a checkpoint comes once per
    step, and copying the whole run for each part of the change was most of its cost."""
    # Each result as its memo, made once: its size (for the limits, remembered per object)
    # is then known when the new state size is counted.
    made = [{"data": op.data} if op.op in STEP_RESULTS else None for op in checkpoint.steps]
    refused = _refusal(run, checkpoint, made)
    if refused is not None:
        return refused
    item = run.pending[checkpoint.qi_id]
    memos: dict[str, JSON] | None = None  # a copy of ``run.memos``, once one is new
    stack, steps, planned = run.stack, run.steps, run.planned
    for op, memo in zip(checkpoint.steps, made, strict=True):
        if memo is None:
            continue  # StepPlanned: Inngest opens a span, Wayline has nothing to store
        existing = (run.memos if memos is None else memos).get(op.id, _ABSENT)
        if existing == memo:
            continue
        if existing is not _ABSENT:
            return _conflict(run, op)
        if memos is None:
            memos = dict(run.memos)
        memos[op.id] = memo
        stack = (*stack, op.id)
        if op.id in planned:
            planned = planned - {op.id}
        steps = timeline_with(steps, _completed(steps, op, item.attempt + 1, env.now))
    pending = run.pending
    if item.attempt:
        pending = {**pending, item.id: replace(item, attempt=0)}
    if memos is None and pending is run.pending:
        return Verdict(200, "already saved", Decision.unchanged(run))
    if memos is not None:
        state_size_with(run, memos)  # remembered: the next checkpoint's limit check is O(1)
    saved = evolve(
        run,
        memos=run.memos if memos is None else memos,
        stack=stack,
        steps=steps,
        planned=planned,
        pending=pending,
    )
    return Verdict(200, "saved", Decision(run=saved))


def _completed(steps: tuple[StepRecord, ...], op: Op, tries: int, now: int) -> StepRecord:
    """The timeline record of ``op``'s step once its result is saved (``steps.record``)."""
    started = _started_at(op, now)
    return recorded(
        timeline_step(steps, op.id),
        op.id,
        name=op.label,
        op=Opcode.STEP_RUN,
        status=StepStatus.COMPLETED,
        attempts=tries,
        started_at=started,
        ended_at=now,
        output=op.data,
        attempt=Attempt(tries, started, now, StepStatus.COMPLETED, None, None),
    )


_ABSENT = object()
_MEMO_WRAPPING = len('{"data":}')
"""What a memo's JSON adds to its result's."""


def _refusal(run: Run, checkpoint: Checkpoint, made: list[JSON]) -> Verdict | None:
    """409 for a call that no longer owns the run, 400 for an op a checkpoint cannot
    carry, 413 over the size limits; None when the checkpoint may be saved. ``made``:
    the memo of each step result (None for the rest)."""
    if run.status.is_terminal:
        return Verdict(409, f"run {run.id} is {run.status.value.lower()}", Decision.unchanged(run))
    item = run.pending.get(checkpoint.qi_id)
    if item is None or item.kind is not WorkKind.CALL:
        message = (
            f"work item {checkpoint.qi_id!r} is not in flight for run {run.id} "
            "(a stale dispatch: the call was already answered, retried or cancelled)"
        )
        return Verdict(409, message, Decision.unchanged(run))
    for index, op in enumerate(checkpoint.steps):
        if op.op not in _ACCEPTED:
            message = (
                f"steps[{index}].op: {op.op!r} cannot be checkpointed; "
                "only StepRun (and StepPlanned) can, the rest end the call"
            )
            return Verdict(400, message, Decision.unchanged(run))
    outputs = 0
    for index, memo in enumerate(made):
        kept = MAX_STEP_OUTPUT_BYTES + _MEMO_WRAPPING
        size = 0 if memo is None else remembered_size(memo, keep_up_to=kept) - _MEMO_WRAPPING
        if size > MAX_STEP_OUTPUT_BYTES:
            message = (
                f"steps[{index}].data is {size} bytes; the limit is "
                f"{MAX_STEP_OUTPUT_BYTES} bytes per step"
            )
            return Verdict(413, message, Decision.unchanged(run))
        outputs += size
    total = state_size(run) + outputs
    if total > MAX_STATE_BYTES:
        message = f"the run's state would be {total} bytes; the limit is {MAX_STATE_BYTES}"
        return Verdict(413, message, Decision.unchanged(run))
    return None


def _conflict(run: Run, op: Op) -> Verdict:
    message = (
        f"step {op.label!r} ({op.id}) already has a different saved result: "
        "another call of this run reported it first"
    )
    return Verdict(409, message, Decision.unchanged(run))


def _started_at(op: Op, now: int) -> int:
    """When the step body started, on the server's clock: ``now`` minus the duration the
    SDK measured (JS ``timing.b``, nanoseconds), never before ``now`` - 1 day."""
    timing = op.timing or {}
    duration = timing.get("b")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration < 0:
        return now
    return now - min(int(duration // 1_000_000), 24 * 3600 * 1000)
