"""What a function receives: the triggering event(s), run metadata and the step tools.

``Context`` is for ``async def`` functions, ``SyncContext`` for plain ``def`` ones; the same
``@client.function`` decorator accepts both. Both are generic in the event's data type, so
``Context[SignedUp]`` types ``ctx.event.data`` as ``SignedUp``; a bare ``Context`` carries
``dict[str, Any]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, Generic

from typing_extensions import TypeVar

from .events import Event, from_wire
from .execution import StepCore
from .steps import Group, Steps, SyncGroup, SyncSteps

ContextData = TypeVar("ContextData", covariant=True, default=dict[str, Any])


class ReplayAwareLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that stays quiet while the function replays steps that already ran.

    Every request replays the function from the top, so a plain ``logger.info`` at the start
    of a 10-step function would log 11 times; this one logs once per real execution.
    """

    def __init__(self, logger: logging.Logger, core: StepCore) -> None:
        super().__init__(logger, {})
        self._core = core

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's own name
        return not self._core.replaying and super().isEnabledFor(level)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        # LoggerAdapter's default replaces the caller's ``extra`` with its own (empty) one.
        return msg, kwargs


class _BaseContext(Generic[ContextData]):
    __slots__ = ("_attempt", "_event", "_events", "_logger", "_run_id")

    def __init__(
        self,
        *,
        event: Event[ContextData],
        events: Sequence[Event[ContextData]],
        run_id: str,
        attempt: int,
        logger: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._event = event
        self._events = events
        self._run_id = run_id
        self._attempt = attempt
        self._logger = logger

    @property
    def event(self) -> Event[ContextData]:
        """The event that triggered this run (the first of a batch)."""
        return self._event

    @property
    def events(self) -> Sequence[Event[ContextData]]:
        """Every event of the batch (one unless ``batch_events`` is set)."""
        return self._events

    @property
    def run_id(self) -> str:
        """This run's id (a ULID)."""
        return self._run_id

    @property
    def attempt(self) -> int:
        """0 on the first try of the current step or request, 1 on its first retry, ..."""
        return self._attempt

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """The client's logger, silent during replay (logs once per real execution)."""
        return self._logger


class Context(_BaseContext[ContextData]):
    """The context of an ``async def`` function.

    Example::

        @client.function(id="welcome", trigger=wayline.TriggerEvent(event="user/signed-up"))
        async def welcome(ctx: wayline.Context) -> None:
            await ctx.step.run("send", send_email, ctx.event.data["email"])
    """

    __slots__ = ("_core", "_group", "_step")

    def __init__(self, core: StepCore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._core = core
        self._step = Steps(core)
        self._group = Group(core)

    async def publish(self, channel: str, topic: str, data: Any) -> None:
        """Publish a realtime message to ``topic`` of ``channel`` (Inngest Realtime's
        ``publish({channel, topic, data})``); pages subscribed with a token see it.

        Skipped while the function replays steps that already ran: once per execution.

        Example::

            await ctx.publish(f"run:{ctx.run_id}", "progress", {"percent": 50})
        """
        if not self._core.replaying:
            await self._core.hooks.publish_async(channel, topic, data, self._run_id)

    @property
    def step(self) -> Steps:
        """Durable steps: ``run``, ``sleep``, ``sleep_until``, ``wait_for_event``, ..."""
        return self._step

    @property
    def group(self) -> Group:
        """Parallel steps: ``parallel``."""
        return self._group


class SyncContext(_BaseContext[ContextData]):
    """The context of a plain ``def`` function: the same tools, without ``await``.

    Example::

        @client.function(id="welcome", trigger=wayline.TriggerEvent(event="user/signed-up"))
        def welcome(ctx: wayline.SyncContext) -> None:
            ctx.step.run("send", send_email, ctx.event.data["email"])
    """

    __slots__ = ("_core", "_group", "_step")

    def __init__(self, core: StepCore, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._core = core
        self._step = SyncSteps(core)
        self._group = SyncGroup(core)

    def publish(self, channel: str, topic: str, data: Any) -> None:
        """Publish a realtime message. See ``Context.publish``.

        Example::

            ctx.publish(f"run:{ctx.run_id}", "progress", {"percent": 50})
        """
        if not self._core.replaying:
            self._core.hooks.publish(channel, topic, data, self._run_id)

    @property
    def step(self) -> SyncSteps:
        """Durable steps: ``run``, ``sleep``, ``sleep_until``, ``wait_for_event``, ..."""
        return self._step

    @property
    def group(self) -> SyncGroup:
        """Parallel steps: ``parallel``."""
        return self._group


def context_fields(
    core: StepCore,
    *,
    raw_event: Mapping[str, Any],
    raw_events: Sequence[Mapping[str, Any]],
    model: object | None,
    run_id: str,
) -> dict[str, Any]:
    """Keyword arguments for a context; typed events are validated here (ValueError)."""
    event = from_wire(raw_event, model)
    events = [from_wire(e, model) for e in raw_events] if raw_events else [event]
    return {
        "event": event,
        "events": events,
        "run_id": run_id,
        "attempt": core.attempt,
        "logger": ReplayAwareLogger(core.logger, core),
    }
