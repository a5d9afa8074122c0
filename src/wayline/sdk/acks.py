"""What a checkpoint's answer means for the step that was checkpointed (the step shells'
half of ``checkpoint.py``, kept apart so the shells need no HTTP machinery).

Saved: user code gets the step's value as a replay would rebuild it. Stale (409): the call
halts. Failed (retries exhausted): the step is answered classically, ``206 [StepRun]``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, NamedTuple

from . import serialize
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


class Pending(NamedTuple):
    """A step result to checkpoint."""

    checkpointer: Checkpointer
    op: Op
    data: bytes
    """``op.data`` as JSON, encoded once: sent as is, and read back as the value the code
    after the step gets (a JSON round trip, as a replay would see it)."""


def checkpointable(core: StepCore, outcome: Op | BaseException) -> Pending:
    """The ``StepRun`` to checkpoint, when ``outcome`` (``core.body_returned``) is one and
    this call checkpoints; otherwise raises what the shell raises without checkpointing:
    ``outcome`` itself, or the interrupt that reports the step."""
    if isinstance(outcome, BaseException):
        raise outcome
    if core.checkpointer is None or outcome.op != STEP_RUN:
        raise Interrupt([outcome])
    return Pending(core.checkpointer, outcome, serialize.dumps(outcome.data))


def settle(
    core: StepCore, decided: Execute, pending: Pending, ack: tuple[Ack, str], annotated: object
) -> Any:
    """After a checkpoint: the step's value as a replay would rebuild it (saved), or the
    interrupt that ends the call: halt (stale), or the step answered classically (failed)."""
    status, why = ack
    if status is Ack.SAVED:
        memo = core.replayed(decided.step, pending.data)
        return core.replay(Replay(decided.step, memo), annotated)
    run_id = pending.checkpointer.target.run_id
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
    raise Interrupt([pending.op])
