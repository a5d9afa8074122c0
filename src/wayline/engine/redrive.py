"""Rerun and redrive as pure functions: which results of a failed run a redrive reuses.

A redrive is a new run of the same function and events whose completed steps, up to the
step that failed, are not executed again. Those results travel as ``Run.seeds`` and are
handed to the SDK as ordinary memos, but only when the SDK reports the step: while seeds
are left, every call carries ``disable_immediate_execution``, so the SDK plans a step
instead of running it, and a planned step that has a seed is completed from it. Official
SDKs need nothing new, and a seed the new code never reaches is known when the run ends:
that step is no longer in the code, and the run says so instead of dropping it silently.

Which steps are seeded (``seeds_for_redrive``):

* The failed steps are the ones whose memo is an error, plus steps whose last attempt
  failed at function level (no memo, an error on the record).
* A completed step is seeded if it completed before the first failed step in the
  completion stack, or if it started before that failure ended: the second rule keeps
  the siblings of a parallel group, which ran alongside the failed step and never saw
  its error. A step that started after the failure may depend on how it was handled.
* Step ids are the SDK's hashes, so a loop's repeated ids (``id``, ``id:1``, ...) are
  distinct seeds and the new code finds each under the same hash.
* Without any failed step (the function itself raised), every completed step is seeded.

Cost: one extra SDK call per seeded step (it is planned, then answered from its seed), and
until a seed is used its output rides in the run's body (on DynamoDB, write units per save
grow with the unused seeds, as they do for a run's timeline), then moves to a memo item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ..errors import ValidationError
from .decision import Decision
from .model import JSON, Memo, Run, RunStatus, SeededStep, StepRecord, StepStatus
from .protocol import Op
from .steps import save_memo

FROM_START = "start"
FROM_FAILED_STEP = "failed_step"
MODES = (FROM_START, FROM_FAILED_STEP)

_SEED_FOR_OP = {
    "StepPlanned": "StepRun",
    "Sleep": "Sleep",
    "WaitForEvent": "WaitForEvent",
    "InvokeFunction": "InvokeFunction",
    "WaitForSignal": "WaitForSignal",
    "AIGateway": "AIGateway",
    "Gateway": "Gateway",
}
"""Ops the SDK reports without executing them, and the recorded op a seed must have."""


def is_error_memo(memo: Memo) -> bool:
    return isinstance(memo, Mapping) and "error" in memo and "data" not in memo


def failed_steps(run: Run) -> list[StepRecord]:
    """Steps of ``run`` that failed for good, or whose last attempt failed the run."""
    failed = []
    for record in run.steps:
        memo_failed = record.id in run.memos and is_error_memo(run.memos[record.id])
        attempt_failed = (
            record.id not in run.memos
            # Running while the run lived; a finished run closes it as Failed.
            and record.status in (StepStatus.RUNNING, StepStatus.FAILED)
            and record.error is not None
        )
        if memo_failed or attempt_failed:
            failed.append(record)
    return failed


def seeds_for_redrive(run: Run) -> dict[str, SeededStep]:
    """The results of ``run`` a redrive may reuse, by hashed step id (see module doc)."""
    failed = failed_steps(run)
    failed_ids = {f.id for f in failed}
    stack_cut = next(
        (i for i, step_id in enumerate(run.stack) if step_id in failed_ids), len(run.stack)
    )
    before_cut = set(run.stack[:stack_cut])
    failure_ended = min(
        (f.ended_at if f.ended_at is not None else f.started_at for f in failed),
        default=None,
    )
    seeds: dict[str, SeededStep] = {}
    for step_id in run.stack:
        memo = run.memos.get(step_id)
        if step_id not in run.memos or is_error_memo(memo):
            continue
        record = run.step(step_id)
        started_before = (
            record is not None and failure_ended is not None and record.started_at < failure_ended
        )
        if failure_ended is None or step_id in before_cut or started_before:
            seeds[step_id] = SeededStep(
                name=record.name if record else step_id,
                op=record.op if record else "StepRun",
                memo=memo,
            )
    return seeds


def check_mode(mode: JSON) -> str:
    """``from`` of a rerun request: ``start`` (default) or ``failed_step``."""
    value = FROM_START if mode is None else mode
    if value not in MODES:
        raise ValidationError(
            f"from must be one of {', '.join(MODES)} (got {value!r})", field="from"
        )
    return str(value)


def refusal(old: Run, mode: str) -> str | None:
    """Why ``old`` cannot be rerun in ``mode``, or None if it can."""
    if mode == FROM_FAILED_STEP and old.status is not RunStatus.FAILED:
        return (
            "only a Failed run can be redriven from its failed step; "
            f"run {old.id} is {old.status.value}"
        )
    if mode == FROM_START and not old.status.is_terminal:
        return f"run {old.id} is still {old.status.value}: cancel it or wait for it to finish"
    return None


def as_rerun(new: Run, old: Run, mode: str) -> Run:
    """The freshly started ``new`` run marked as a rerun of ``old`` (seeded on redrive)."""
    seeds = seeds_for_redrive(old) if mode == FROM_FAILED_STEP else {}
    return replace(new, rerun_of=old.id, seeds=seeds)


def with_rerun(old: Run, new_id: str) -> Decision:
    """``old`` listing its rerun ``new_id`` (idempotent)."""
    if new_id in old.reruns:
        return Decision.unchanged(old)
    return Decision(run=replace(old, reruns=(*old.reruns, new_id)))


# --------------------------------------------------------------------------- in the run


def takes_seed(run: Run, op: Op) -> bool:
    """True if ``op`` is a step the SDK did not execute and ``run`` holds its result."""
    seed = run.seeds.get(op.id)
    return seed is not None and _SEED_FOR_OP.get(op.op) == seed.op


def use_seed(run: Run, op: Op, *, now: int) -> Decision:
    """Complete the step ``op`` reported with its seed, exactly as if it had run."""
    seed = run.seeds[op.id]
    run = drop_seed(run, op.id)
    labelled = replace(op, display_name=op.display_name or seed.name)
    run = save_memo(run, labelled, seed.memo, StepStatus.COMPLETED, 0, now, now)
    updated = run.step(op.id)
    if updated is not None:
        output = seed.memo if seed.op == "WaitForEvent" else updated.output
        run = run.with_step(replace(updated, op=seed.op, output=output, seeded=True))
    return Decision(run=run)


def drop_seed(run: Run, step_id: str) -> Run:
    """``run`` without the seed of ``step_id``: the step ran (or changed kind) in the code."""
    if step_id not in run.seeds:
        return run
    return replace(run, seeds={k: v for k, v in run.seeds.items() if k != step_id})


def unused_seeds(run: Run) -> list[dict[str, JSON]]:
    """Seeds the run never used, for the run's view: on a finished run, steps that are no
    longer in the code (or, on a run that failed again, that it did not reach)."""
    return [{"id": k, "name": v.name, "op": v.op} for k, v in run.seeds.items()]
