"""What a checkpoint's answer means for the step that was checkpointed (the step shells'
half of ``checkpoint.py``, kept apart so the shells need no HTTP machinery).

Saved: user code gets the step's value as a replay would rebuild it. Stale (409): the call
halts. Failed (retries exhausted): the step is answered classically, ``206 [StepRun]``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from .execution import HaltInterrupt, Interrupt, StepCore
from .planner import STEP_RUN, Execute, Op, Replay

if TYPE_CHECKING:
    from .checkpoint import Checkpointer


class Ack(enum.Enum):
    """How a checkpoint ended."""

    SAVED = "saved"
    STALE = "stale"
    """409: another dispatch owns the run now, or it ended. Halt without running more."""
    FAILED = "failed"
    """Retries exhausted: answer the step the classic way."""


def checkpointable(core: StepCore, outcome: BaseException) -> tuple[Checkpointer, Op] | None:
    """The ``StepRun`` to checkpoint, when ``outcome`` (``core.body_returned``) is one and
    this call checkpoints; otherwise the shell raises ``outcome`` as without checkpointing."""
    if core.checkpointer is None or not isinstance(outcome, Interrupt):
        return None
    ops = outcome.ops
    if len(ops) != 1 or ops[0].op != STEP_RUN:
        return None
    return core.checkpointer, ops[0]


def settle(
    core: StepCore, decided: Execute, op: Op, ack: tuple[Ack, str], annotated: object | None
) -> Any:
    """After a checkpoint: the step's value as a replay would rebuild it (saved), or the
    interrupt that ends the call: halt (stale), or the step answered classically (failed)."""
    status, why = ack
    if status is Ack.SAVED:
        memo = core.replayed(decided.step, op.data)
        return core.replay(Replay(decided.step, memo), annotated)
    # (core.middleware.call is a placeholder when the call has no middleware)
    run_id = core.checkpointer.target.run_id if core.checkpointer else ""
    step = decided.step.user_id
    if status is Ack.STALE:
        core.logger.warning(
            'run %s: the server refused step "%s" as stale (%s); stopping this request',
            run_id,
            step,
            why,
        )
        raise HaltInterrupt(why)
    core.logger.warning(
        'run %s: could not checkpoint step "%s" (%s); reporting it in the response',
        run_id,
        step,
        why,
    )
    raise Interrupt([op])
