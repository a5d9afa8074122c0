"""Built-in middleware for the Wayline SDK (the hook API itself is ``wayline.Middleware``).

* :class:`LoggingContext` and :class:`ContextFilter`: run id, function id and step id on log
  records.
* :class:`OpenTelemetry`: spans for calls and steps, joined to the server's trace (needs
  ``opentelemetry-api``: ``pip install 'wayline[otel]'``; loaded on first use).
* :class:`Encryption`: step outputs, function output and event data encrypted in the app
  (AES-256-GCM with key ids for rotation, ``StaticKeys``; ``wayline.kms.KmsKeys`` for AWS
  KMS data keys; needs ``cryptography``: ``pip install 'wayline[encryption]'``).

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
    from .sdk.encryption import (
        DataKey,
        DecryptionError,
        Encryption,
        Keys,
        StaticKeys,
        generate_key,
    )
    from .sdk.otel import OpenTelemetry

__all__ = [
    "CallInfo",
    "CallInput",
    "ContextFilter",
    "DataKey",
    "DecryptionError",
    "Encryption",
    "Keys",
    "LoggingContext",
    "Middleware",
    "OpenTelemetry",
    "StaticKeys",
    "StepInfo",
    "generate_key",
]

_LAZY = {
    "OpenTelemetry": "otel",
    **dict.fromkeys(
        ("DataKey", "DecryptionError", "Encryption", "Keys", "StaticKeys", "generate_key"),
        "encryption",
    ),
}


def __getattr__(name: str) -> object:
    # opentelemetry and cryptography are optional: import them only when asked for.
    if name in _LAZY:
        value = getattr(importlib.import_module(f"wayline.sdk.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
