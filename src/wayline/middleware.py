"""Built-in middleware for the Wayline SDK (the hook API itself is ``wayline.Middleware``).

* :class:`LoggingContext` and :class:`ContextFilter`: run id, function id and step id on log
  records.
* :class:`OpenTelemetry`: spans for calls and steps, joined to the server's trace (needs
  ``opentelemetry-api``: ``pip install 'wayline[otel]'``; loaded on first use).

Example::

    from wayline.middleware import LoggingContext, OpenTelemetry

    client = wayline.Wayline(app_id="shop", middleware=[LoggingContext(), OpenTelemetry()])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .sdk.log_context import ContextFilter, LoggingContext
from .sdk.middleware import CallInfo, CallInput, Middleware, StepInfo

if TYPE_CHECKING:
    from .sdk.otel import OpenTelemetry

__all__ = [
    "CallInfo",
    "CallInput",
    "ContextFilter",
    "LoggingContext",
    "Middleware",
    "OpenTelemetry",
    "StepInfo",
]

_LAZY = {
    "OpenTelemetry": "otel",
}


def __getattr__(name: str) -> object:
    # opentelemetry is optional: import them only when asked for.
    if name in _LAZY:
        value = getattr(importlib.import_module(f"wayline.sdk.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
