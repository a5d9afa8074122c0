"""Group commit: the store steps that are ready in one turn of the event loop run in one
SQLite transaction. One mechanism for the three places that write per request or per call
on ``wayline dev``: the worker's call cycles (below), the checkpoints
(``api.checkpoint_group``) and the event ingests (``api.event_group``).

A call cycle (``calls.cycle.CallCycle.flow``) does its store work in synchronous steps
between its HTTP requests: preparing the call (the run's ``started`` save) and completing
it (the result, its effects and the queue ack). Each step was a transaction, so each run
paid two commits in the worker alone; the worker claims up to 64 items at once, whose
prepare steps all become ready in the same turn, and replies that arrive together resume
their completions in the same turn. Here the first step of a turn schedules a flush with
``loop.call_soon`` (no timer: a lone step runs in the very next turn); the flush runs the
queued steps one after another inside one ``batch()``, each in a savepoint of its own.

Durable before acting: a step's result (the request to send next, the cycle's end) is
handed back only after the batch committed, so no call goes out for a run whose
``started`` save is not stored, and no item is considered done before its result is. A
step that raises rolls back only its own writes and fails only its own cycle; a failed
commit fails every step of the batch (their items stay leased and are claimed again, as
after a crash).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from .errors import StoreError

log = logging.getLogger("wayline.store")

T = TypeVar("T")


class TurnBatch:
    def __init__(self, batch: Callable[[], AbstractContextManager[object]]) -> None:
        """``batch``: the store's way to commit several writes at once (``Service.batch``)."""
        self._batch = batch
        self._waiting: list[tuple[Callable[[], Any], bool, asyncio.Future[Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, step: Callable[[], T], *, savepoint: bool = True) -> T:
        """``step()``, run with the other steps of this turn in one batch; its result (or
        its error) once the batch has committed. ``savepoint``: run it in a savepoint of
        its own, so that its failure rolls back only its writes (False for a step that
        keeps its writes in one savepoint itself, e.g. ``Service._transition``)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new loop (a test's, a Lambda invocation's): the old one's group is gone.
            self._loop, self._waiting = loop, []
        answer: asyncio.Future[T] = loop.create_future()
        self._waiting.append((step, savepoint, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._batch():
                for step, savepoint, _ in group:
                    try:
                        if savepoint:
                            with self._batch():
                                outcomes.append((True, step()))
                        else:
                            outcomes.append((True, step()))
                    except Exception as exc:
                        outcomes.append((False, exc))
        except Exception as exc:
            if isinstance(exc, StoreError):
                log.warning("a group of %d store steps was not committed: %s", len(group), exc)
            outcomes = [(False, exc)] * len(group)
        for (_, _, answer), (ok, value) in zip(group, outcomes, strict=True):
            if answer.done():  # its task was cancelled (the worker is stopping)
                continue
            if ok:
                answer.set_result(value)
            else:
                answer.set_exception(value)
