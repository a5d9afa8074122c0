"""Step tools: ``ctx.step`` and ``ctx.group``, as thin async and sync shells over one core.

Every method plans its step with the shared ``StepCore`` (which raises the interrupt when the
step ends the request) and either replays the memo or runs the body. The async and sync
classes differ only in ``await``; the rules live in ``execution.py`` and ``planner.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from . import acks, intents, planner, serialize
from .event_types import EventType
from .events import Event
from .execution import ParallelMode, StepCore, run_blocking
from .planner import Intent, Replay
from .steps_io import AsyncStepsIO, SyncStepsIO

if TYPE_CHECKING:
    from .function import Function

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M")


# --------------------------------------------------------------------------- async shell


class Steps(AsyncStepsIO):
    """``ctx.step`` of an ``async def`` function. Each method is one durable step.

    A step's ``step_id`` names it in the run's history; keep it stable across deploys. An id
    used again in the same run (a loop) gets a ``:1``, ``:2`` ... suffix automatically.
    """

    __slots__ = ("_core",)

    def __init__(self, core: StepCore) -> None:
        self._core = core

    @overload
    async def run(
        self, step_id: str, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T: ...

    @overload
    async def run(
        self, step_id: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T: ...

    async def run(self, step_id: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once, retried on error, memoized on success.

        The result must be JSON, a pydantic model or a dataclass; it is rebuilt on replay
        into ``fn``'s return annotation.

        Example::

            user = await ctx.step.run("load-user", load_user, ctx.event.data["id"])
        """
        core = self._core
        decided = core.plan(Intent(step_id, planner.STEP_RUN))
        annotated = serialize.return_type(fn)
        if isinstance(decided, Replay):
            return core.replay(decided, annotated)
        middleware = core.middleware
        step = core.step_info(decided) if middleware else None
        try:
            with core.executing():
                if step is not None:
                    await middleware.before_step_async(step)
                try:
                    value = core.execute(decided, fn, args, kwargs)
                    if inspect.isawaitable(value):
                        value = await value
                except Exception as exc:
                    if step is not None:
                        await middleware.failed_async(exc, step)
                    raise
                if step is not None:
                    await middleware.after_step_async(step)
        except BaseException as exc:
            raise core.body_raised(decided, exc)  # noqa: B904 - the same or a wrapped error
        pending = acks.checkpointable(core, core.body_returned(decided, value, annotated))
        ack = await pending.checkpointer.send_async(pending.op, pending.data, core.body_seconds)
        return acks.settle(core, decided, pending, ack, annotated)

    async def sleep(self, step_id: str, duration: str | timedelta) -> None:
        """Pause the run for ``duration`` (``"48h"``, ``timedelta(days=2)``); max 366 days.

        Example::

            await ctx.step.sleep("wait-a-day", "1d")
        """
        self._core.plan_deferred(intents.sleep(step_id, duration))

    async def sleep_until(self, step_id: str, until: datetime | str) -> None:
        """Pause the run until ``until`` (an aware datetime; naive means UTC).

        Example::

            await ctx.step.sleep_until("launch", datetime(2030, 1, 1, tzinfo=UTC))
        """
        self._core.plan_deferred(intents.sleep_until(step_id, until))

    @overload
    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: str | timedelta,
        if_: str | None = None,
        match: str | None = None,
    ) -> Event[dict[str, Any]] | None: ...

    @overload
    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: str | timedelta,
        if_: str | None = None,
        match: str | None = None,
        model: type[M],
    ) -> Event[M] | None: ...

    @overload
    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: EventType[M],
        timeout: str | timedelta,
        if_: str | None = None,
        match: str | None = None,
    ) -> Event[M] | None: ...

    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str | EventType[Any],
        timeout: str | timedelta,
        if_: str | None = None,
        match: str | None = None,
        model: type[Any] | None = None,
    ) -> Event[Any] | None:
        """Wait for an event named ``event``; None if ``timeout`` passes first.

        ``match="data.user_id"`` requires that field to equal the triggering event's;
        ``if_`` is any CEL condition over ``event`` (the trigger) and ``async`` (the
        candidate). Only events sent after the wait starts can match.

        Example::

            ev = await ctx.step.wait_for_event("verified", event="user/verified",
                                               match="data.user_id", timeout="24h")
        """
        if isinstance(event, EventType):
            name, model = event.name, event.model
        else:
            name = event
        decided = self._core.plan_deferred(
            intents.wait_for_event(step_id, name, timeout, if_, match)
        )
        return intents.waited_event(self._core, decided, model)

    async def wait_for_signal(
        self, step_id: str, *, signal: str, timeout: str | timedelta
    ) -> dict[str, Any] | None:
        """Wait until ``POST /v1/signals`` sends ``signal``; None if ``timeout`` passes first.

        Returns ``{"signal": name, "data": payload}``. One run may wait on a signal at a
        time: a second waiter's step fails (``StepError`` named ``SignalConflictError``),
        so put something unique in the name, e.g. ``f"approve-{order_id}"``.

        Example::

            got = await ctx.step.wait_for_signal("approval", signal=f"approve-{order}",
                                                 timeout="3d")
        """
        decided = self._core.plan_deferred(intents.wait_for_signal(step_id, signal, timeout))
        result: dict[str, Any] | None = self._core.replay(decided, None)
        return result

    async def send_event(
        self, step_id: str, events: Event[Any] | Sequence[Event[Any]]
    ) -> list[str]:
        """Send events once (memoized), returning their ids.

        Example::

            await ctx.step.send_event("fan-out", [wayline.Event(name="user/process", data={})])
        """
        core = self._core

        async def send(batch: list[Event[Any]]) -> list[str]:
            return await core.hooks.send_async(intents.wire_events(core, batch))

        return await self.run(step_id, send, core.hooks.check_events(intents.batch(events)))

    async def invoke(
        self,
        step_id: str,
        *,
        function: Function[Any, T],
        data: object = None,
        timeout: str | timedelta | None = None,
        v: str | None = None,
    ) -> T:
        """Run another function as a step and return its result (``StepError`` if it fails).

        Example::

            report = await ctx.step.invoke("build", function=build_report, data={"id": 1},
                                           timeout="1h")
        """
        self._core.hooks.invoking(function)
        intent = intents.invoke(self._core, step_id, function.id, data, timeout, v)
        result: T = self._core.replay(self._core.plan_deferred(intent), function.output_type)
        return result

    async def invoke_by_id(
        self,
        step_id: str,
        *,
        function_id: str,
        data: object = None,
        timeout: str | timedelta | None = None,
        v: str | None = None,
    ) -> Any:
        """Like ``invoke``, by composite id (``"<app_id>-<fn_id>"``): for other apps' functions.

        Example::

            out = await ctx.step.invoke_by_id("bill", function_id="billing-charge", data={})
        """
        intent = intents.invoke(self._core, step_id, function_id, data, timeout, v)
        return self._core.replay(self._core.plan_deferred(intent), None)


class Group:
    """``ctx.group`` of an ``async def`` function."""

    __slots__ = ("_core",)

    def __init__(self, core: StepCore) -> None:
        self._core = core

    async def parallel(
        self, callables: Sequence[Callable[[], Awaitable[T]]], *, mode: ParallelMode = "wait"
    ) -> tuple[T, ...]:
        """Run steps in parallel; returns their results in order.

        Each callable is usually a lambda around one step, or a function running several
        steps in sequence. ``mode="race"`` lets each branch move on as soon as its own step
        finishes, instead of waiting for the whole group (more requests to your app).

        Example::

            a, b = await ctx.group.parallel([lambda: ctx.step.run("a", fa),
                                             lambda: ctx.step.run("b", fb)])
        """
        with self._core.parallel(mode, callables) as group:
            for branch in callables:
                with group.branch():
                    group.outputs.append(await branch())
            return group.finish()


# --------------------------------------------------------------------------- sync shell


class SyncSteps(SyncStepsIO):
    """``ctx.step`` of a plain ``def`` function; the same steps as ``Steps``, without await."""

    __slots__ = ("_core",)

    def __init__(self, core: StepCore) -> None:
        self._core = core

    def run(self, step_id: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` once, retried on error, memoized on success.

        Example::

            user = ctx.step.run("load-user", load_user, ctx.event.data["id"])
        """
        core = self._core
        decided = core.plan(Intent(step_id, planner.STEP_RUN))
        annotated = serialize.return_type(fn)
        if isinstance(decided, Replay):
            result: T = core.replay(decided, annotated)
            return result
        middleware = core.middleware
        step = core.step_info(decided) if middleware else None
        try:
            with core.executing():
                if step is not None:
                    middleware.before_step(step)
                try:
                    value = core.execute(decided, fn, args, kwargs)
                    if inspect.iscoroutine(value):
                        value = run_blocking(value)
                except Exception as exc:
                    if step is not None:
                        middleware.failed(exc, step)
                    raise
                if step is not None:
                    middleware.after_step(step)
        except BaseException as exc:
            raise core.body_raised(decided, exc)  # noqa: B904 - the same or a wrapped error
        pending = acks.checkpointable(core, core.body_returned(decided, value, annotated))
        ack = pending.checkpointer.send(pending.op, pending.data, core.body_seconds)
        checkpointed: T = acks.settle(core, decided, pending, ack, annotated)
        return checkpointed

    def sleep(self, step_id: str, duration: str | timedelta) -> None:
        """Pause the run for ``duration``. Example: ``ctx.step.sleep("wait", "1d")``."""
        self._core.plan_deferred(intents.sleep(step_id, duration))

    def sleep_until(self, step_id: str, until: datetime | str) -> None:
        """Pause the run until ``until``. Example: ``ctx.step.sleep_until("go", deadline)``."""
        self._core.plan_deferred(intents.sleep_until(step_id, until))

    @overload
    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: str | timedelta,
        if_: str | None = None,
        match: str | None = None,
    ) -> Event[dict[str, Any]] | None: ...

    @overload
    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: str | timedelta,
        if_: str | None = None,
        match: str | None = None,
        model: type[M],
    ) -> Event[M] | None: ...

    @overload
    def wait_for_event(
        self,
        step_id: str,
        *,
        event: EventType[M],
        timeout: str | timedelta,
        if_: str | None = None,
        match: str | None = None,
    ) -> Event[M] | None: ...

    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str | EventType[Any],
        timeout: str | timedelta,
        if_: str | None = None,
        match: str | None = None,
        model: type[Any] | None = None,
    ) -> Event[Any] | None:
        """Wait for an event; None on timeout. See ``Steps.wait_for_event``.

        Example::

            ev = ctx.step.wait_for_event("paid", event="invoice/paid", timeout="7d",
                                         if_="async.data.invoice == event.data.invoice")
        """
        if isinstance(event, EventType):
            name, model = event.name, event.model
        else:
            name = event
        decided = self._core.plan_deferred(
            intents.wait_for_event(step_id, name, timeout, if_, match)
        )
        return intents.waited_event(self._core, decided, model)

    def wait_for_signal(
        self, step_id: str, *, signal: str, timeout: str | timedelta
    ) -> dict[str, Any] | None:
        """Wait for a signal; None on timeout. See ``Steps.wait_for_signal``.

        Example::

            got = ctx.step.wait_for_signal("approval", signal=f"approve-{order}", timeout="3d")
        """
        decided = self._core.plan_deferred(intents.wait_for_signal(step_id, signal, timeout))
        result: dict[str, Any] | None = self._core.replay(decided, None)
        return result

    def send_event(self, step_id: str, events: Event[Any] | Sequence[Event[Any]]) -> list[str]:
        """Send events once (memoized). Example: ``ctx.step.send_event("notify", ev)``."""
        core = self._core

        def send(batch: list[Event[Any]]) -> list[str]:
            return core.hooks.send(intents.wire_events(core, batch))

        return self.run(step_id, send, core.hooks.check_events(intents.batch(events)))

    def invoke(
        self,
        step_id: str,
        *,
        function: Function[Any, T],
        data: object = None,
        timeout: str | timedelta | None = None,
        v: str | None = None,
    ) -> T:
        """Run another function as a step. Example: ``ctx.step.invoke("x", function=fn)``."""
        self._core.hooks.invoking(function)
        intent = intents.invoke(self._core, step_id, function.id, data, timeout, v)
        result: T = self._core.replay(self._core.plan_deferred(intent), function.output_type)
        return result

    def invoke_by_id(
        self,
        step_id: str,
        *,
        function_id: str,
        data: object = None,
        timeout: str | timedelta | None = None,
        v: str | None = None,
    ) -> Any:
        """``invoke`` by composite id: ``ctx.step.invoke_by_id("x", function_id="app-fn")``."""
        intent = intents.invoke(self._core, step_id, function_id, data, timeout, v)
        return self._core.replay(self._core.plan_deferred(intent), None)


class SyncGroup:
    """``ctx.group`` of a plain ``def`` function."""

    __slots__ = ("_core",)

    def __init__(self, core: StepCore) -> None:
        self._core = core

    def parallel(
        self, callables: Sequence[Callable[[], T]], *, mode: ParallelMode = "wait"
    ) -> tuple[T, ...]:
        """Run steps in parallel. Example: ``ctx.group.parallel([lambda: ctx.step.run(...)])``."""
        with self._core.parallel(mode, callables) as group:
            for branch in callables:
                with group.branch():
                    group.outputs.append(branch())
            return group.finish()
