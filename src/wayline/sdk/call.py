"""Run one call of a handler: build its context, run it, turn the outcome into a result.

``run_sync`` and ``run_async`` are the function-level shells; they differ only in the
context they build and in ``await``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from wayline.errors import NonRetriableError

from . import planner
from .context import Context, SyncContext, context_fields
from .execution import CallResult, ControlFlow, Hooks, StepCore
from .function import Handler
from .protocol import CallRequest


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """Everything one call needs; the I/O drivers decide where it runs."""

    handler: Handler
    request: CallRequest
    target: str | None
    hooks: Hooks
    logger: logging.Logger

    @property
    def is_async(self) -> bool:
        return self.handler.is_async

    def _core(self) -> StepCore:
        request = self.request
        state = planner.start(
            planner.parse_memos(request.steps),
            target=self.target,
            disable_immediate=request.disable_immediate_execution,
        )
        return StepCore(
            fn_id=self.handler.fn_id,
            state=state,
            attempt=request.attempt,
            # The server sends max_attempts; when it does not, the function's own config knows.
            max_attempts=request.max_attempts or self.handler.max_attempts,
            hooks=self.hooks,
            logger=self.logger,
        )

    def _fields(self, core: StepCore) -> dict[str, Any]:
        try:
            return context_fields(
                core,
                raw_event=self.request.event,
                raw_events=self.request.events,
                model=self.handler.model,
                run_id=self.request.run_id,
            )
        except ValueError as exc:
            # Retrying cannot make a stored event match its model.
            raise NonRetriableError(str(exc)) from exc

    def run_sync(self) -> CallResult:
        core = self._core()
        try:
            value = self.handler.fn(SyncContext(core, **self._fields(core)))
        except (Exception, ControlFlow) as exc:
            return core.function_raised(exc)
        return core.function_returned(value)

    async def run_async(self) -> CallResult:
        core = self._core()
        try:
            value = await self.handler.fn(Context(core, **self._fields(core)))
        except (Exception, ControlFlow) as exc:
            return core.function_raised(exc)
        return core.function_returned(value)
