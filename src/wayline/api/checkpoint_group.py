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
"""

from __future__ import annotations

import asyncio
import logging

from ..engine.checkpoint import Checkpoint, Verdict
from ..engine.service import Service
from ..errors import StoreError

log = logging.getLogger("wayline.api")

Outcome = Verdict | BaseException
"""A checkpoint's verdict, or the error that stopped it (answered 500)."""


def store_failed(exc: StoreError) -> Verdict:
    """The answer to a checkpoint the store could not save: retry it."""
    return Verdict(503, f"the checkpoint was not saved ({exc}); retry it")


class CheckpointGroup:
    """Collects checkpoints per event-loop turn and saves each group in one batch."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._waiting: list[tuple[Checkpoint, asyncio.Future[Verdict]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def verdict(self, checkpoint: Checkpoint) -> Verdict:
        """Save ``checkpoint`` with the others that arrive in this turn; its verdict
        once the group is committed."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new loop (a test's, a Lambda invocation's): the old one's group is gone.
            self._loop, self._waiting = loop, []
        answer: asyncio.Future[Verdict] = loop.create_future()
        self._waiting.append((checkpoint, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        try:
            outcomes = self.save([checkpoint for checkpoint, _ in group])
        except StoreError as exc:  # the commit failed: nothing of the group is saved
            log.warning("a group of %d checkpoints was not saved: %s", len(group), exc)
            outcomes = [store_failed(exc)] * len(group)
        except Exception as exc:  # every request of the group gets the error
            outcomes = [exc] * len(group)
        for (_, answer), outcome in zip(group, outcomes, strict=True):
            if answer.done():  # the request was cancelled (its client went away)
                continue
            if isinstance(outcome, BaseException):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

    def save(self, checkpoints: list[Checkpoint]) -> list[Outcome]:
        """Decide and save ``checkpoints`` in one batch: their outcomes, in order, valid
        only once this returns (the batch committed); ``StoreError`` if it did not."""
        outcomes: list[Outcome] = []
        with self._service.batch():
            for checkpoint in checkpoints:
                try:
                    outcomes.append(self._service.checkpoint(checkpoint))
                except StoreError as exc:
                    outcomes.append(store_failed(exc))
                except Exception as exc:  # a bug answers its own request 500
                    outcomes.append(exc)
        return outcomes
