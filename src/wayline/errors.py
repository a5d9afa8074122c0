"""Wayline's one error tree.

::

    WaylineError                    root of every error Wayline raises on purpose
    ├── ValidationError             bad input from a caller: names the field and the limit (-> 4xx)
    │   ├── InvalidExpressionError  a CEL expression that does not compile
    │   ├── InvalidDurationError    a duration / time string that does not parse or is out of range
    │   └── InvalidCronError        a cron expression (or its TZ= prefix) that does not parse
    ├── NotFoundError               an id that names nothing (-> 404)
    ├── AuthError                   missing or wrong key / signature (-> 401)
    └── StoreError                  a storage backend failed (not a lost race: those are data)

Lost races on conditional writes are not errors: ports return ``False`` and the service
re-reads and re-decides.
"""

from __future__ import annotations


class WaylineError(Exception):
    """Root of all Wayline errors."""


class ValidationError(WaylineError):
    """Caller input was rejected; the message names the field and the limit."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidExpressionError(ValidationError):
    """A CEL expression failed to compile."""


class InvalidDurationError(ValidationError):
    """A duration or time string failed to parse or is outside its allowed range."""


class InvalidCronError(ValidationError):
    """A cron expression failed to parse."""


class NotFoundError(WaylineError):
    """The requested run, event, app or function does not exist."""


class AuthError(WaylineError):
    """Authentication failed (signing key, event key or request signature)."""


class StoreError(WaylineError):
    """A storage backend failed for a reason other than a lost conditional write."""
