"""``Wayline``: the client an app creates once. Defines functions and sends events."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from typing_extensions import TypeVar

from wayline.errors import ConfigError

from .config import ClientConfig, resolve
from .context import Context, SyncContext
from .effects import Transport
from .event_types import EventRegistry, EventType
from .events import Event, to_wire
from .execution import Hooks
from .function import Function, FunctionDecorator
from .middleware import Middleware
from .options import (
    Backoff,
    Batch,
    Cancel,
    Checkpointing,
    Concurrency,
    Debounce,
    FunctionOptions,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    as_checkpointing,
    as_tuple,
)
from .realtime import Realtime, SubscriptionToken
from .sending import DEV_EVENT_KEY, EventSender, HttpEventSender
from .triggers import MAX_TRIGGERS, Trigger, TriggerCron, TriggerEvent
from .webhooks import Webhook, check_unique

D = TypeVar("D", default=dict[str, Any])

FailureHandler = (
    Callable[[Context[dict[str, Any]]], Awaitable[object]]
    | Callable[[SyncContext[dict[str, Any]]], object]
)
"""An ``on_failure`` handler: called with the ``inngest/function.failed`` event."""


class Wayline:
    """The Wayline client: one per app.

    Every setting is taken from its argument, else from ``WAYLINE_<NAME>``, else from
    ``INNGEST_<NAME>`` (``SIGNING_KEY``, ``SIGNING_KEY_FALLBACK``, ``EVENT_KEY``,
    ``BASE_URL``, ``API_BASE_URL``, ``EVENT_API_BASE_URL``, ``ENV``, ``SERVE_ORIGIN``,
    ``SERVE_PATH``, ``DEV``). Dev mode is on only if ``is_dev=True`` or ``*_DEV`` is set;
    otherwise the app is in production mode and ``serve()`` requires a signing key.

    Args:
        app_id: The app's id; function ids are prefixed with it. Keep it stable.
        app_version: An optional version label reported at sync.
        base_url: The Wayline server (API and event API), e.g. your ``wayline dev`` URL.
        checkpointing: Run consecutive ``step.run``s in one request, each acknowledged by the
            server before the next starts (default on; ``False`` turns it off, a
            ``wayline.Checkpointing`` sets ``max_runtime``). Functions may override it.
        api_base_url: The API origin, when it differs from ``base_url``.
        env: A branch environment name, sent as ``x-inngest-env``.
        event_api_base_url: The event API origin, when it differs from ``base_url``.
        event_key: The key for ``POST /e/{key}`` (optional in dev mode).
        events: Typed events (``wayline.EventType``): events of these names sent by the app
            are validated against their model at the call (``wayline.ValidationError``).
        is_dev: Force dev mode on or off, whatever the environment says.
        logger: Where the SDK logs (default ``logging.getLogger("wayline")``).
        middleware: Hooks around every function's calls and steps, in order (see
            ``wayline.Middleware``), and over every event the app sends.
        sender: How ``send`` delivers events (default: the HTTP event API).
        serve_origin: The origin the server should call, if not the request's own.
        serve_path: The path functions are served on (default ``/api/inngest``).
        signing_key: The signing key that authenticates the server (required in production).
        signing_key_fallback: The previous signing key, accepted during a rotation.
        environ: The environment to read (default ``os.environ``), for tests.
        transport: The outbound HTTP transport, for tests.
        webhooks: Webhooks the server creates for this app at sync (``wayline.Webhook``):
            third parties POST to ``/webhooks/<app id>-<id>`` and each request becomes an event.

    Example::

        client = wayline.Wayline(app_id="shop")
        ids = client.send(wayline.Event(name="user/signed-up", data={"email": "a@b.c"}))
    """

    def __init__(
        self,
        *,
        app_id: str,
        app_version: str | None = None,
        base_url: str | None = None,
        api_base_url: str | None = None,
        checkpointing: bool | Checkpointing = True,
        env: str | None = None,
        event_api_base_url: str | None = None,
        event_key: str | None = None,
        events: Sequence[EventType[Any]] = (),
        is_dev: bool | None = None,
        logger: logging.Logger | None = None,
        middleware: Sequence[Middleware] = (),
        sender: EventSender | None = None,
        serve_origin: str | None = None,
        serve_path: str | None = None,
        signing_key: str | None = None,
        signing_key_fallback: str | None = None,
        environ: Mapping[str, str] | None = None,
        transport: Transport | None = None,
        webhooks: Sequence[Webhook] = (),
    ) -> None:
        self.config: ClientConfig = resolve(
            app_id=app_id,
            is_dev=is_dev,
            signing_key=signing_key,
            signing_key_fallback=signing_key_fallback,
            event_key=event_key,
            base_url=base_url,
            api_base_url=api_base_url,
            event_api_base_url=event_api_base_url,
            env=env,
            app_version=app_version,
            serve_origin=serve_origin,
            serve_path=serve_path,
            environ=os.environ if environ is None else environ,
        )
        self.logger = logger or logging.getLogger("wayline")
        self.transport = transport or Transport()
        self._sender = sender
        self.middleware: tuple[Middleware, ...] = _middleware(middleware, "the client")
        self.events = EventRegistry(events)
        self.realtime = Realtime(self.config, self.transport)
        """Realtime publishing and subscription tokens (see ``wayline.sdk.realtime``)."""
        self.hooks = Hooks(
            send=self._send_wire,
            send_async=self._send_wire_async,
            check_events=self.events.check,
            publish=self._publish_from_run,
            publish_async=self._publish_from_run_async,
        )
        self.checkpointing: Checkpointing = (
            as_checkpointing(checkpointing, "the client") or Checkpointing()
        )
        """The default for every function (see ``wayline.sdk.checkpoint``)."""
        self.webhooks: tuple[Webhook, ...] = check_unique(webhooks)
        """Declared at every sync (see ``wayline.sdk.webhooks``)."""

    @property
    def app_id(self) -> str:
        return self.config.app_id

    @property
    def is_dev(self) -> bool:
        return self.config.is_dev

    def function(
        self,
        *,
        backoff: Backoff | None = None,
        batch_events: Batch | None = None,
        cancel: Cancel | Sequence[Cancel] | None = None,
        checkpointing: bool | Checkpointing | None = None,
        concurrency: int | Concurrency | Sequence[Concurrency] | None = None,
        debounce: Debounce | None = None,
        id: str,
        idempotency: str | None = None,
        middleware: Sequence[Middleware] = (),
        name: str | None = None,
        on_failure: FailureHandler | None = None,
        priority: Priority | None = None,
        rate_limit: RateLimit | None = None,
        retries: int | None = None,
        singleton: Singleton | None = None,
        step_backoff: Mapping[str, Backoff] | None = None,
        throttle: Throttle | None = None,
        timeouts: Timeouts | None = None,
        trigger: TriggerEvent[D] | TriggerCron | Sequence[TriggerEvent[D] | TriggerCron],
    ) -> FunctionDecorator[D]:
        """Make a durable function of an ``async def`` (``Context``) or ``def`` (``SyncContext``).

        Options are serialized exactly as the protocol's FunctionConfig. ``retries`` counts
        retries per step (default 4, so 5 attempts); ``on_failure`` runs once the function
        has failed for good, with the ``inngest/function.failed`` event. ``backoff`` spaces
        the retries (default: Inngest's table); ``step_backoff`` overrides it per step id.
        ``checkpointing`` overrides the client's (``False`` keeps this function classic).

        Example::

            @client.function(id="send-welcome-email", retries=3,
                             trigger=wayline.TriggerEvent(event="user/signed-up"))
            async def send_welcome(ctx: wayline.Context) -> dict[str, bool]:
                await ctx.step.run("send", send_email, ctx.event.data["email"])
                return {"ok": True}
        """
        if not _nonblank(id):
            raise ConfigError("a function needs a non-empty id")
        triggers = _triggers(trigger, id)
        if isinstance(concurrency, int) and not isinstance(concurrency, bool):
            concurrency = Concurrency(limit=concurrency)
        options = FunctionOptions(
            backoff=backoff,
            step_backoff=tuple((step_backoff or {}).items()),
            batch_events=batch_events,
            cancel=as_tuple(cancel, Cancel, "cancel"),
            concurrency=as_tuple(concurrency, Concurrency, "concurrency"),
            debounce=debounce,
            idempotency=idempotency,
            priority=priority,
            rate_limit=rate_limit,
            retries=retries,
            singleton=singleton,
            throttle=throttle,
            timeouts=timeouts,
        )
        if on_failure is not None and not callable(on_failure):
            raise ConfigError(f"on_failure of function {id!r} must be callable")
        own_middleware = _middleware(middleware, f"function {id!r}")
        own_checkpointing = as_checkpointing(checkpointing, f"function {id!r}")

        def build(handler: Callable[[Any], Any]) -> Function[Any, Any]:
            if not callable(handler):
                raise ConfigError(f"@client.function(id={id!r}) must decorate a function")
            return Function(
                app_id=self.app_id,
                local_id=id,
                name=name,
                handler=handler,
                triggers=triggers,
                options=options,
                on_failure=on_failure,
                middleware=own_middleware,
                client_middleware=self.middleware,
                check_events=self.events.check,
                checkpointing=own_checkpointing,
            )

        return FunctionDecorator(build)

    def send(self, events: Event[Any] | Sequence[Event[Any]]) -> list[str]:
        """Send one event or several; returns their ids in order. Blocks.

        Retries on 5xx and network errors (never on 4xx) with the same id seed, so a retry
        stores nothing twice.

        Raises:
            SendEventsError: the events could not all be sent; ``ids`` lists those accepted.
            ValidationError: an event of a registered ``EventType`` has data that does not
                fit its model; nothing was sent.

        Example::

            ids = client.send(wayline.Event(name="user/signed-up", data={"email": "a@b.c"}))
        """
        return self._send_wire(self._wire(events))

    async def send_async(self, events: Event[Any] | Sequence[Event[Any]]) -> list[str]:
        """``send`` for async code.

        Example::

            ids = await client.send_async(wayline.Event(name="order/placed", data={"id": 7}))
        """
        return await self._send_wire_async(self._wire(events))

    def publish(self, channel: str, topic: str, data: Any) -> None:
        """Publish a realtime message from server code (in a function: ``ctx.publish``).

        Example::

            client.publish(f"user:{user_id}", "notice", {"text": "export ready"})
        """
        self.realtime.publish(channel, topic, data)

    async def publish_async(self, channel: str, topic: str, data: Any) -> None:
        """``publish`` for async code."""
        await self.realtime.publish_async(channel, topic, data)

    def get_subscription_token(
        self, channel: str, topics: Sequence[str], *, ttl_seconds: int | None = None
    ) -> SubscriptionToken:
        """A token a browser uses to subscribe to ``topics`` of ``channel`` (only those).

        Hand ``token.key`` to the page, which opens
        ``EventSource(f"{server}/v1/realtime/subscribe?channel={channel}&token={key}")``.

        Example::

            token = client.get_subscription_token(f"upload:{upload_id}", ["progress"])
        """
        return self.realtime.token(channel, topics, ttl_seconds=ttl_seconds)

    async def get_subscription_token_async(
        self, channel: str, topics: Sequence[str], *, ttl_seconds: int | None = None
    ) -> SubscriptionToken:
        """``get_subscription_token`` for async code."""
        return await self.realtime.token_async(channel, topics, ttl_seconds=ttl_seconds)

    def close(self) -> None:
        """Close pooled HTTP connections (optional; the process exiting does it too)."""
        self.transport.close()

    def __repr__(self) -> str:
        return f"Wayline(app_id={self.app_id!r}, mode={self.config.mode!r})"

    # ------------------------------------------------------------------ internals

    def _wire(self, events: Event[Any] | Sequence[Event[Any]]) -> list[dict[str, Any]]:
        batch = self.events.check([events] if isinstance(events, Event) else list(events))
        now_ms = int(time.time() * 1000)
        return [to_wire(e, now_ms=now_ms) for e in batch]

    def _outgoing(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for mw in self.middleware:
            events = mw.transform_send(events)
        return events

    def _publish_from_run(self, channel: str, topic: str, data: Any, run_id: str) -> None:
        self.realtime.publish(channel, topic, data, run_id=run_id)

    async def _publish_from_run_async(
        self, channel: str, topic: str, data: Any, run_id: str
    ) -> None:
        await self.realtime.publish_async(channel, topic, data, run_id=run_id)

    def _send_wire(self, events: list[dict[str, Any]]) -> list[str]:
        return self._event_sender().send(self._outgoing(events)) if events else []

    async def _send_wire_async(self, events: list[dict[str, Any]]) -> list[str]:
        return await self._event_sender().send_async(self._outgoing(events)) if events else []

    def _event_sender(self) -> EventSender:
        if self._sender is None:
            config = self.config
            origin = config.event_api_origin
            if origin is None:
                raise ConfigError(
                    "no event API URL: set WAYLINE_BASE_URL (or base_url=...) to your Wayline "
                    "server, or use dev mode (is_dev=True / WAYLINE_DEV=1) for wayline dev"
                )
            key = config.event_key or (DEV_EVENT_KEY if config.is_dev else None)
            if key is None:
                raise ConfigError(
                    "no event key: set WAYLINE_EVENT_KEY (or event_key=...) to send events in "
                    "production"
                )
            self._sender = HttpEventSender(
                event_api_origin=origin, event_key=key, env=config.env, transport=self.transport
            )
        return self._sender


def _middleware(items: Sequence[Middleware], owner: str) -> tuple[Middleware, ...]:
    found = tuple(items)
    for item in found:
        if not isinstance(item, Middleware):
            raise ConfigError(f"middleware of {owner} must be wayline.Middleware, got {item!r}")
    return found


def _nonblank(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _triggers(trigger: object, fn_id: str) -> list[Trigger]:
    items = [trigger] if isinstance(trigger, TriggerEvent | TriggerCron) else trigger
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise ConfigError(
            f"function {fn_id!r}: trigger must be a TriggerEvent, a TriggerCron or a list"
        )
    triggers: list[Trigger] = []
    for item in items:
        if not isinstance(item, TriggerEvent | TriggerCron):
            raise ConfigError(f"function {fn_id!r}: {item!r} is not a TriggerEvent or TriggerCron")
        triggers.append(item)
    if not 1 <= len(triggers) <= MAX_TRIGGERS:
        raise ConfigError(
            f"function {fn_id!r} needs 1 to {MAX_TRIGGERS} triggers, got {len(triggers)}"
        )
    return triggers
