"""A checkpoint saved as its memos alone, fenced by a read of the run's head. Pure.

Where the store offers it (``ports.MemoAppends``: DynamoDB), a checkpointed step costs
one cheap read of the run item and one conditional put of the step's memo item (which
carries its timeline record), instead of a conditional write of the run item with a
version bump plus the memo item. ``plan`` makes the same decision as
``checkpoint.apply_checkpoint``, on the head, and says what to append; anything a memo
alone cannot carry goes back to the transition path (``None``).

Why it stays correct without a version bump (the races):

* Fence: the head must show the run live and the call's item pending. The fence and
  the put are two requests, so a cancel, a function timeout or a finished run can
  land in between: at most the step in flight is appended to a finished run, where the
  memo is harmless (no call will read it), and the SDK's next checkpoint is refused
  (409). The same holds for a head read eventually consistently: it may be a moment
  old, and a refusal is re-checked on a strongly consistent read before it is given.
* Two dispatches of the same item (an SQS duplicate): both pass the fence; the memo
  put is conditional (first writer wins), so the second gets the first's memo back:
  the same result is a 200, a different one a 409 (two live writers), as before.
* Limits (413): one step's output is checked from the request; the run's state from
  the head's size at its last save plus this checkpoint. Memos appended since that
  save are not counted (counting them would take a counter write per step): the
  limit can be passed by the steps of the one call in flight, no further, since the
  call's answer is a save that counts everything.
* Order: an appended memo sorts after every memo of the head's save and before any
  later save's (the store's order key: the head's version, then an append clock), and
  its record after the head's records; ``MemoAppends`` has the rules.
* The next load: ``get_run`` reads the memo items, so the next call carries every
  acknowledged step. A view loaded before the call cannot know of them: the service
  never decides a call's answer on the run ``prepare_call`` loaded when the call may
  have checkpointed (``may_append``), and the store never answers ``get_run`` for a
  run with such a call pending from what it cached.
* Version-based transitions: a save is made from a ``get_run`` view, which holds
  every appended memo, so it keeps them (write-once in the engine), counts them, and
  is conditional on the version as always. A memo appended between that read and the
  save (the item's call is over by then: only a zombie duplicate dispatch can) is
  kept too: it sorts before the save's own memos.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .checkpoint import MAX_STATE_BYTES, Checkpoint, Verdict, apply_checkpoint
from .decision import Env
from .model import Run, WorkItem, WorkKind
from .ports import AppendedMemo, RunHead
from .protocol import json_size
from .wire import STEP_RESULTS


@dataclass(frozen=True, slots=True)
class Append:
    """What to write for an accepted checkpoint, and the head as it would be after it
    (for observers: the records it adds)."""

    memos: tuple[AppendedMemo, ...]
    after: Run


def plan(head: RunHead, checkpoint: Checkpoint, env: Env) -> Verdict | Append | None:
    """The verdict (a refusal, or nothing to write), what to append, or None when the
    checkpoint changes more than memos and records (an attempt to reset, a planned step
    to clear): the caller then saves it as a transition."""
    run = head.run
    verdict = apply_checkpoint(run, checkpoint, env)
    if not verdict.accepted or verdict.decision is None:
        return verdict
    after = verdict.decision.run
    if not verdict.decision.changed:
        return verdict
    if _beyond_memos(run, after):
        return None
    outputs = sum(json_size(op.data) for op in checkpoint.steps if op.op in STEP_RESULTS)
    total = head.state_bytes + outputs
    if total > MAX_STATE_BYTES:
        message = f"the run's state would be {total} bytes; the limit is {MAX_STATE_BYTES}"
        return Verdict(413, message, verdict.decision)
    known = {record.id for record in run.steps}
    records = {record.id: record for record in after.steps if record.id not in known}
    memos = tuple(
        AppendedMemo(step_id, memo, records[step_id])
        for step_id, memo in after.memos.items()
        if step_id not in run.memos and step_id in records
    )
    if len(memos) != len(after.memos) - len(run.memos):
        return None  # a memo without a record of its own: not a plain step result
    return Append(memos, after)


def _beyond_memos(before: Run, after: Run) -> bool:
    """Whether ``after`` differs from ``before`` in more than memos, stack and records."""
    return replace(after, memos=before.memos, stack=before.stack, steps=before.steps) != before


def may_append(item: WorkItem) -> bool:
    """Whether a call of ``item`` may have had memos appended while it was open: a
    discovery call (only those carry ``ctx.qi_id``). Its answer must be decided on a
    fresh load, not on the run loaded before the call."""
    return item.kind is WorkKind.CALL and item.step_id is None
