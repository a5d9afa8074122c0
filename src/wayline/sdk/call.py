"""Run one call of a handler: build its context, run it, turn the outcome into a result.

``run_sync`` and ``run_async`` are the function-level shells; they differ only in the
context they build and in ``await``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from wayline.errors import NonRetriableError

from . import planner
from .context import Context, SyncContext, context_fields
from .execution import CallResult, ControlFlow, Hooks, StepCore, memo_from_json
from .function import Handler
from .middleware import CallInfo, Middleware, Stack
from .planner import Memo, StepRef
from .protocol import CallRequest

if TYPE_CHECKING:
    from .checkpoint import Checkpointer


@dataclass(frozen=True, slots=True)
class PreparedCall:
    """Everything one call needs; the I/O drivers decide where it runs."""

    handler: Handler
    request: CallRequest
    target: str | None
    hooks: Hooks
    logger: logging.Logger
    middleware: tuple[Middleware, ...] = ()
    """The client's middleware, then the function's."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """The server's request headers, lower-cased (middleware reads ``traceparent``)."""
    checkpointer: Checkpointer | None = None
    """Set when this call checkpoints its steps (the server offered it, the function allows it)."""

    @property
    def is_async(self) -> bool:
        return self.handler.is_async

    @property
    def _max_attempts(self) -> int:
        # The server sends max_attempts; when it does not, the function's own config knows.
        return self.request.max_attempts or self.handler.max_attempts

    def _stack(self) -> Stack:
        request = self.request
        info = CallInfo(
            fn_id=self.handler.fn_id,
            run_id=request.run_id,
            attempt=request.attempt,
            max_attempts=self._max_attempts,
            event_name=str(request.event.get("name") or ""),
            headers=self.headers,
        )
        return Stack(self.middleware + self.handler.middleware, info, self.logger)

    def _core(self, request: CallRequest, stack: Stack) -> StepCore:
        state = planner.start(
            planner.parse_memos(request.steps),
            target=self.target,
            disable_immediate=request.disable_immediate_execution,
        )
        return StepCore(
            fn_id=self.handler.fn_id,
            state=state,
            attempt=request.attempt,
            max_attempts=self._max_attempts,
            hooks=self.hooks,
            logger=self.logger,
            middleware=stack,
            checkpointer=self.checkpointer,
            replayed=self._replayed(stack),
        )

    def _replayed(self, stack: Stack) -> Callable[[StepRef, bytes], Memo]:
        """How a checkpointed result (its data as JSON bytes) comes back: as the next request
        will carry it (through JSON and the middleware's ``transform_input``, e.g.
        decrypted), so the code after the step sees exactly the value a replay sees."""
        if not stack:
            return memo_from_json

        def rebuild(step: StepRef, data: bytes) -> Memo:
            memo = {step.hashed: {"data": json.loads(data)}}
            carried = stack.transform_input(replace(self.request, steps=memo)).steps
            return planner.parse_memo(carried.get(step.hashed))

        return rebuild

    def _fields(self, core: StepCore, request: CallRequest) -> dict[str, Any]:
        try:
            return context_fields(
                core,
                raw_event=request.event,
                raw_events=request.events,
                model=self.handler.model,
                run_id=request.run_id,
            )
        except ValueError as exc:
            # Retrying cannot make a stored event match its model.
            raise NonRetriableError(str(exc)) from exc

    def _begin(self, stack: Stack) -> tuple[StepCore, CallRequest, CallResult | None]:
        """The step core over the (transformed) input, or a failure if a transform raised."""
        try:
            request = stack.transform_input(self.request)
        except Exception as exc:
            core = self._core(self.request, stack)
            return core, self.request, core.function_raised(exc)
        return self._core(request, stack), request, None

    def run_sync(self) -> CallResult:
        stack = self._stack()
        core, request, result = self._begin(stack)
        if result is None:
            try:
                stack.before_function()
                value = self.handler.fn(SyncContext(core, **self._fields(core, request)))
            except (Exception, ControlFlow) as exc:
                if isinstance(exc, Exception):
                    stack.failed(exc)
                result = core.function_raised(exc)
            else:
                result = core.function_returned(value)
        try:
            stack.after_function(result)
        except Exception as exc:
            return core.function_raised(exc)
        return result

    async def run_async(self) -> CallResult:
        try:
            return await self._run_async()
        finally:
            if self.checkpointer is not None:
                await self.checkpointer.aclose()

    async def _run_async(self) -> CallResult:
        stack = self._stack()
        core, request, result = self._begin(stack)
        if result is None:
            try:
                await stack.before_function_async()
                context = Context(core, **self._fields(core, request))
                value = await self.handler.fn(context)
            except (Exception, ControlFlow) as exc:
                if isinstance(exc, Exception):
                    await stack.failed_async(exc)
                result = core.function_raised(exc)
            else:
                result = core.function_returned(value)
        try:
            await stack.after_function_async(result)
        except Exception as exc:
            return core.function_raised(exc)
        return result
