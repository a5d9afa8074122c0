"""Middleware: typed hooks around a function call, its steps, its output and its errors.

A middleware is an object with any of the hooks of :class:`Middleware` (subclass it and
override what you need). Register instances on the client (``Wayline(middleware=[...])``,
every function) or on one function (``@client.function(..., middleware=[...])``); the client's
come first.

Order is an onion, as in WSGI or the official TypeScript SDK: hooks on the way in
(``transform_input``, ``before_function``, ``before_step``) run in registration order; hooks
on the way out (``after_step``, ``transform_step_output``, ``transform_output``,
``on_error``, ``after_function``) run in reverse, so the first middleware sees the call first
and the result last. ``transform_send`` and ``transform_invoke`` run in registration order on
data leaving the app (sent events, ``step.invoke`` data).

Observer hooks may be ``def`` or ``async def`` in any function (an ``async`` hook in a plain
``def`` function runs on its own event loop, so contextvars it sets do not outlive it).
Transform hooks are plain ``def``: they rewrite JSON data.

A hook that raises fails what it wraps, and the usual retry rules apply: a function hook
(``transform_input``, ``before_function``, ``transform_output``, ``after_function``) fails the
request as the function itself raising would (a 500, retried); a step hook (``before_step``,
``after_step``, ``transform_step_output``) fails that step attempt (retried as a step
error). ``on_error`` and the ``after_step`` of a failed step are told of an error that
already exists: if they raise, that is logged and the original error stands.

Example::

    class Timing(wayline.Middleware):
        def before_step(self, call: wayline.CallInfo, step: wayline.StepInfo) -> None:
            self.started = time.monotonic()

    client = wayline.Wayline(app_id="shop", middleware=[Timing()])
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .execution import CallResult
    from .protocol import CallRequest


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The call a hook runs in: one request from the server to one function."""

    fn_id: str
    """The function's composite id (``<app_id>-<fn_id>``)."""
    run_id: str
    attempt: int
    """0 on the first try of the current step or request, 1 on its first retry, ..."""
    max_attempts: int
    event_name: str
    """The triggering event's name."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """The server's request headers, lower-cased (``traceparent`` joins its trace)."""


@dataclass(frozen=True, slots=True)
class StepInfo:
    """A ``step.run`` about to run (or that just ran) its body in this request."""

    step_id: str
    """The step's id as the function names it (``:1``-suffixed when reused in a loop)."""
    hashed_id: str


@dataclass(frozen=True, slots=True)
class CallInput:
    """What the server sent, as JSON, for ``transform_input`` to rewrite (e.g. decrypt)."""

    events: list[dict[str, Any]]
    """The triggering events (the first is ``ctx.event``)."""
    steps: dict[str, Any]
    """Memoized step results by hashed id, as sent: ``{"data": ...}``, ``{"error": ...}``, or
    a bare value (a matched event, ``null`` for a sleep)."""


HookResult = Awaitable[None] | None


class Middleware:
    """Base class of middleware: every hook does nothing until overridden."""

    def transform_input(self, call: CallInfo, data: CallInput) -> CallInput:
        """Rewrite the events and memoized step data before the function sees them."""
        return data

    def before_function(self, call: CallInfo) -> HookResult:
        """Before the function's code runs (every request: each replays the function)."""
        return None

    def before_step(self, call: CallInfo, step: StepInfo) -> HookResult:
        """Before a ``step.run`` body runs (not when a step replays from its memo)."""
        return None

    def after_step(self, call: CallInfo, step: StepInfo, error: Exception | None) -> HookResult:
        """After a ``step.run`` body returned (``error`` None) or raised."""
        return None

    def transform_step_output(self, call: CallInfo, step: StepInfo, data: Any) -> Any:
        """Rewrite a step's JSON result before it is sent to the server (e.g. encrypt)."""
        return data

    def transform_output(self, call: CallInfo, data: Any) -> Any:
        """Rewrite the function's JSON result before it is sent to the server."""
        return data

    def on_error(self, call: CallInfo, error: Exception, step: StepInfo | None) -> HookResult:
        """A step body (``step`` set) or the function (``step`` None) raised ``error``."""
        return None

    def after_function(self, call: CallInfo, result: CallResult) -> HookResult:
        """After the request's outcome is known (``result.status``: 200, 206 or 500)."""
        return None

    def transform_send(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rewrite wire events leaving the app (``client.send``, ``step.send_event``)."""
        return events

    def transform_invoke(self, call: CallInfo, function_id: str, data: Any) -> Any:
        """Rewrite the JSON ``data`` a ``step.invoke`` sends to ``function_id`` (e.g. encrypt)."""
        return data


class Stack:
    """The middleware of one call, in order, with a sync and an async way to fire hooks."""

    def __init__(self, items: Sequence[Middleware], call: CallInfo, logger: logging.Logger) -> None:
        self.items = tuple(items)
        self.call = call
        self._logger = logger

    def __bool__(self) -> bool:
        return bool(self.items)

    def _inward(self) -> Iterator[Middleware]:
        return iter(self.items)

    def _outward(self) -> Iterator[Middleware]:
        return reversed(self.items)

    # ------------------------------------------------------------ transforms (sync)

    def transform_input(self, request: CallRequest) -> CallRequest:
        if not self.items:
            return request
        data = CallInput(
            events=[dict(e) for e in request.events or [request.event]],
            steps=dict(request.steps),
        )
        for mw in self._inward():
            data = mw.transform_input(self.call, data)
        events: list[Mapping[str, Any]] = list(data.events)
        event = events[0] if events else request.event
        return replace(request, event=event, events=events, steps=data.steps)

    def transform_step_output(self, step: StepInfo, data: Any) -> Any:
        for mw in self._outward():
            data = mw.transform_step_output(self.call, step, data)
        return data

    def transform_invoke(self, function_id: str, data: Any) -> Any:
        for mw in self._inward():  # data leaving the app, as transform_send
            data = mw.transform_invoke(self.call, function_id, data)
        return data

    def transform_output(self, data: Any) -> Any:
        for mw in self._outward():
            data = mw.transform_output(self.call, data)
        return data

    # ------------------------------------------------------------ observers

    def _before_function(self) -> Iterator[Callable[[], HookResult]]:
        for mw in self._inward():
            yield functools.partial(mw.before_function, self.call)

    def _before_step(self, step: StepInfo) -> Iterator[Callable[[], HookResult]]:
        for mw in self._inward():
            yield functools.partial(mw.before_step, self.call, step)

    def _after_step(self, step: StepInfo) -> Iterator[Callable[[], HookResult]]:
        for mw in self._outward():
            yield functools.partial(mw.after_step, self.call, step, None)

    def _after_function(self, result: CallResult) -> Iterator[Callable[[], HookResult]]:
        for mw in self._outward():
            yield functools.partial(mw.after_function, self.call, result)

    def _failed(
        self, error: Exception, step: StepInfo | None
    ) -> Iterator[Callable[[], HookResult]]:
        for mw in self._outward():
            if step is not None:
                yield functools.partial(mw.after_step, self.call, step, error)
            yield functools.partial(mw.on_error, self.call, error, step)

    def before_function(self) -> None:
        _fire_sync(self._before_function())

    async def before_function_async(self) -> None:
        await _fire(self._before_function())

    def before_step(self, step: StepInfo) -> None:
        _fire_sync(self._before_step(step))

    async def before_step_async(self, step: StepInfo) -> None:
        await _fire(self._before_step(step))

    def after_step(self, step: StepInfo) -> None:
        _fire_sync(self._after_step(step))

    async def after_step_async(self, step: StepInfo) -> None:
        await _fire(self._after_step(step))

    def after_function(self, result: CallResult) -> None:
        _fire_sync(self._after_function(result))

    async def after_function_async(self, result: CallResult) -> None:
        await _fire(self._after_function(result))

    def failed(self, error: Exception, step: StepInfo | None = None) -> None:
        """Tell every middleware of an error; a hook raising here is logged, not raised."""
        for hook in self._failed(error, step):
            try:
                _fire_sync(iter([hook]))
            except Exception:
                self._logger.exception("a middleware's error hook raised")

    async def failed_async(self, error: Exception, step: StepInfo | None = None) -> None:
        for hook in self._failed(error, step):
            try:
                await _fire(iter([hook]))
            except Exception:
                self._logger.exception("a middleware's error hook raised")


def _fire_sync(hooks: Iterator[Callable[[], HookResult]]) -> None:
    from .execution import run_blocking

    for hook in hooks:
        result = hook()
        if inspect.isawaitable(result):
            run_blocking(_awaited(result))


async def _fire(hooks: Iterator[Callable[[], HookResult]]) -> None:
    for hook in hooks:
        result = hook()
        if inspect.isawaitable(result):
            await result


async def _awaited(result: Awaitable[None]) -> None:
    await result
