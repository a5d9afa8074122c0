"""Group commit: the checkpoints that arrive together are saved in one transaction.

Every open call reports each step as it finishes, so under load many runs checkpoint at
once, and a transaction of its own per checkpoint made the SQLite COMMIT the largest
single cost of one (profiled on the peer bench: ~27 us of ~38). Here the checkpoints
that reach the server in one turn of the event loop queue up; the first schedules a
flush with ``loop.call_soon`` (no timer: a lone checkpoint is saved in the very next
turn, so a single run waits no longer than before). The flush decides and saves the
whole group synchronously, in one callback, inside one ``Service.batch()``: nothing else
on the loop can write into the open transaction meanwhile, and other threads wait on
the database's lock.

Durable before ack still holds for each: every request is answered only after the
batch has committed. The checkpoints stay independent in what they decide: a refusal
(409, 413, 400) is that checkpoint's verdict and writes nothing; a store failure in
one checkpoint's own save rolls back only its writes (its save is a savepoint of the
batch) and answers it 503; an unexpected error fails only that request. If the commit
itself fails, nothing of the group is saved and every checkpoint in it answers 503:
the SDKs retry (a retried step that was in fact saved is an idempotent 200). A store
that cannot batch (DynamoDB) saves each checkpoint as it is decided, as before.
The mechanism is ``turn_batch`` (shared with the event ingests and the dev worker).
"""

from __future__ import annotations

from ..engine.checkpoint import Checkpoint, Verdict
from ..engine.service import Service
from ..errors import StoreError
from ..turn_batch import TurnBatch


def store_failed(exc: StoreError) -> Verdict:
    """The answer to a checkpoint the store could not save: retry it."""
    return Verdict(503, f"the checkpoint was not saved ({exc}); retry it")


class CheckpointGroup:
    """Collects checkpoints per event-loop turn and saves each group in one batch."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._turn = TurnBatch(service.batch)

    async def verdict(self, checkpoint: Checkpoint) -> Verdict:
        """Save ``checkpoint`` with the others that arrive in this turn; its verdict
        once the group is committed. No savepoint of its own: ``Service.checkpoint``
        saves in one (``_transition``) and a refusal writes nothing."""
        try:
            return await self._turn.run(
                lambda: self._service.checkpoint(checkpoint), savepoint=False
            )
        except StoreError as exc:  # its save, or the group's commit, failed
            return store_failed(exc)
