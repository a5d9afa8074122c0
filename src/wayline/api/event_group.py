"""Group commit of event ingests: the ``POST /e/{key}`` requests that reach the server in
one turn of the event loop are stored and routed in one transaction.

Alone, one ingest made five commits (the events, the start's idempotency claim, the run,
its queue item, the outbox acknowledgement); the peer bench posts 500 events at once over
100 connections, so they arrive in groups. The first ingest of a turn schedules a flush
with ``loop.call_soon`` (no timer: a lone event is stored in the very next turn, so it
waits no longer than before). The flush stores and routes the whole group synchronously,
in one ``Service.batch()``: nothing else on the loop can write into the open transaction
meanwhile, and other threads wait on the database's lock. (``checkpoint_group`` does the
same for checkpoints.)

Durable before ack: each request is answered only after the batch has committed, so its
200 still means its events are stored and their runs started. The ingests stay
independent: each is a savepoint of the batch, so one that fails (a store error, a bug)
stores nothing and fails only its own request (503 for a store error, the SDKs retry;
500 for anything else). If the commit itself fails, nothing of the group is stored and
every request of it answers 503. A store that cannot batch (DynamoDB) stores each ingest
as it comes, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ..engine.events import EventInput
from ..engine.service import Service
from ..errors import StoreError

log = logging.getLogger("wayline.api")

Outcome = list[str] | BaseException
"""An ingest's event ids, or the error that stopped it."""


class EventGroup:
    """Collects event ingests per event-loop turn and stores each group in one batch."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._waiting: list[tuple[Sequence[EventInput], str | None, asyncio.Future[list[str]]]]
        self._waiting = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send(self, inputs: Sequence[EventInput], *, seed: str | None) -> list[str]:
        """Store and route ``inputs`` (``Service.send_events``) with the other ingests of
        this turn; their ids once the group is committed. ``StoreError`` if they were not
        stored."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new loop (a test's): the old one's group is gone with it.
            self._loop, self._waiting = loop, []
        answer: asyncio.Future[list[str]] = loop.create_future()
        self._waiting.append((inputs, seed, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        try:
            outcomes = self.save([(inputs, seed) for inputs, seed, _ in group])
        except Exception as exc:
            if isinstance(exc, StoreError):
                log.warning("a group of %d event ingests was not stored: %s", len(group), exc)
            outcomes = [exc] * len(group)
        for (_, _, answer), outcome in zip(group, outcomes, strict=True):
            if answer.done():  # the request was cancelled (its client went away)
                continue
            if isinstance(outcome, BaseException):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

    def save(self, ingests: Sequence[tuple[Sequence[EventInput], str | None]]) -> list[Outcome]:
        """Store and route ``ingests`` in one batch, each in a savepoint of its own: their
        outcomes in order, valid only once this returns (the batch committed); raises if
        the commit failed (then nothing is stored)."""
        outcomes: list[Outcome] = []
        with self._service.batch():
            for inputs, seed in ingests:
                try:
                    with self._service.batch():
                        outcomes.append(self._service.send_events(inputs, seed=seed))
                except Exception as exc:
                    outcomes.append(exc)
        return outcomes
