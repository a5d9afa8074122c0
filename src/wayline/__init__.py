"""Wayline: durable, event-driven functions for Python teams on AWS.

Example::

    import wayline

    client = wayline.Wayline(app_id="shop")

    @client.function(id="send-welcome-email", trigger=wayline.TriggerEvent(event="user/signed-up"))
    async def send_welcome(ctx: wayline.Context) -> dict[str, bool]:
        await ctx.step.run("send", send_email, ctx.event.data["email"])
        return {"ok": True}

Framework adapters are submodules, imported on first use so ``import wayline`` pulls in no
web framework: ``wayline.fastapi``, ``wayline.flask``, ``wayline.django``,
``wayline.starlette``, ``wayline.aws_lambda``; ``wayline.testing`` runs functions in-process.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from .errors import (
    AuthError,
    ConfigError,
    InvalidCronError,
    InvalidDurationError,
    InvalidExpressionError,
    NonDeterminismError,
    NonRetriableError,
    NotFoundError,
    RetryAfterError,
    SendEventsError,
    SerializationError,
    StepError,
    StoreError,
    ValidationError,
    WaylineError,
)

if TYPE_CHECKING:  # at runtime these load on first use: see __getattr__ below
    from .sdk.client import Wayline
    from .sdk.context import Context, SyncContext
    from .sdk.event_types import EventType
    from .sdk.events import Event
    from .sdk.fetch import FetchResponse
    from .sdk.function import Function
    from .sdk.middleware import CallInfo, CallInput, Middleware, StepInfo
    from .sdk.options import (
        Backoff,
        Batch,
        Cancel,
        Checkpointing,
        Concurrency,
        Debounce,
        Priority,
        RateLimit,
        Singleton,
        Throttle,
        Timeouts,
    )
    from .sdk.realtime import SubscriptionToken
    from .sdk.sending import EventSender
    from .sdk.triggers import TriggerCron, TriggerEvent
    from .sdk.webhooks import Webhook, WebhookSignature

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "Backoff",
    "Batch",
    "CallInfo",
    "CallInput",
    "Cancel",
    "Checkpointing",
    "Concurrency",
    "ConfigError",
    "Context",
    "Debounce",
    "Event",
    "EventSender",
    "EventType",
    "FetchResponse",
    "Function",
    "InvalidCronError",
    "InvalidDurationError",
    "InvalidExpressionError",
    "Middleware",
    "NonDeterminismError",
    "NonRetriableError",
    "NotFoundError",
    "Priority",
    "RateLimit",
    "RetryAfterError",
    "SendEventsError",
    "SerializationError",
    "Singleton",
    "StepError",
    "StepInfo",
    "StoreError",
    "SubscriptionToken",
    "SyncContext",
    "Throttle",
    "Timeouts",
    "TriggerCron",
    "TriggerEvent",
    "ValidationError",
    "Wayline",
    "WaylineError",
    "Webhook",
    "WebhookSignature",
    "__version__",
]

_SUBMODULES = frozenset(
    {"aws_lambda", "django", "fastapi", "flask", "kms", "middleware", "starlette", "testing"}
)
_SDK_NAMES = {
    "Wayline": "client",
    "Context": "context",
    "SyncContext": "context",
    "Event": "events",
    "EventType": "event_types",
    "FetchResponse": "fetch",
    "Function": "function",
    **dict.fromkeys(("CallInfo", "CallInput", "Middleware", "StepInfo"), "middleware"),
    "EventSender": "sending",
    "SubscriptionToken": "realtime",
    "TriggerCron": "triggers",
    "TriggerEvent": "triggers",
    "Webhook": "webhooks",
    "WebhookSignature": "webhooks",
    **dict.fromkeys(
        (
            "Backoff",
            "Batch",
            "Cancel",
            "Checkpointing",
            "Concurrency",
            "Debounce",
            "Priority",
            "RateLimit",
            "Singleton",
            "Throttle",
            "Timeouts",
        ),
        "options",
    ),
}


def __getattr__(name: str) -> object:
    # The server side (engine, stores, Lambda handlers) imports wayline.errors, which runs
    # this file: the SDK (pydantic, httpx) loads only when an app first uses it, and
    # `wayline.fastapi` etc. only when asked for, so no framework is ever imported for nothing.
    if name in _SDK_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.sdk.{_SDK_NAMES[name]}"), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module: ModuleType = importlib.import_module(f"{__name__}.{name}")
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
