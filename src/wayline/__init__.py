"""Wayline: durable, event-driven functions for Python teams on AWS."""

from __future__ import annotations

from .errors import (
    AuthError,
    InvalidCronError,
    InvalidDurationError,
    InvalidExpressionError,
    NotFoundError,
    StoreError,
    ValidationError,
    WaylineError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "InvalidCronError",
    "InvalidDurationError",
    "InvalidExpressionError",
    "NotFoundError",
    "StoreError",
    "ValidationError",
    "WaylineError",
    "__version__",
]
