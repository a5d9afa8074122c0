"""Group commit for the worker's call cycles: the store steps that are ready in one turn of
the event loop run in one SQLite transaction.

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
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

T = TypeVar("T")


class TurnBatch:
    def __init__(self, batch: Callable[[], AbstractContextManager[object]]) -> None:
        """``batch``: the store's way to commit several writes at once (``Service.batch``)."""
        self._batch = batch
        self._waiting: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, step: Callable[[], T]) -> T:
        """``step()``, run with the other steps of this turn in one batch; its result (or
        its error) once the batch has committed."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._waiting = loop, []
        answer: asyncio.Future[T] = loop.create_future()
        self._waiting.append((step, answer))
        if len(self._waiting) == 1:
            loop.call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._batch():
                for step, _ in group:
                    try:
                        with self._batch():
                            outcomes.append((True, step()))
                    except Exception as exc:
                        outcomes.append((False, exc))
        except Exception as exc:
            outcomes = [(False, exc)] * len(group)
        for (_, answer), (ok, value) in zip(group, outcomes, strict=True):
            if answer.done():  # its task was cancelled (the worker is stopping)
                continue
            if ok:
                answer.set_result(value)
            else:
                answer.set_exception(value)
