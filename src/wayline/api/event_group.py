"""Group commit of event ingests: the ``POST /e/{key}`` requests that reach the server in
one turn of the event loop are stored and routed in one transaction.

Alone, one ingest made five commits (the events, the start's idempotency claim, the run,
its queue item, the outbox acknowledgement); the peer bench posts 500 events at once over
100 connections, so they arrive in groups. The first ingest of a turn schedules a flush
with ``loop.call_soon`` (no timer: a lone event is stored in the very next turn, so it
waits no longer than before). The flush stores and routes the whole group synchronously,
in one ``Service.batch()``: nothing else on the loop can write into the open transaction
meanwhile, and other threads wait on the database's lock. (``turn_batch`` is the
mechanism, shared with the checkpoints and the dev worker.)

Durable before ack: each request is answered only after the batch has committed, so its
200 still means its events are stored and their runs started. The ingests stay
independent: each is a savepoint of the batch, so one that fails (a store error, a bug)
stores nothing and fails only its own request (503 for a store error, the SDKs retry;
500 for anything else). If the commit itself fails, nothing of the group is stored and
every request of it answers 503. A store that cannot batch (DynamoDB) stores each ingest
as it comes, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engine.events import EventInput
from ..engine.service import Service
from ..turn_batch import TurnBatch


class EventGroup:
    """Collects event ingests per event-loop turn and stores each group in one batch."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._turn = TurnBatch(service.batch)

    async def send(self, inputs: Sequence[EventInput], *, seed: str | None) -> list[str]:
        """Store and route ``inputs`` (``Service.send_events``) with the other ingests of
        this turn, in a savepoint of its own; their ids once the group is committed.
        ``StoreError`` if they were not stored."""
        return await self._turn.run(lambda: self._service.send_events(inputs, seed=seed))
