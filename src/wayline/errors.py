"""Wayline's one error tree.

::

    WaylineError                    root of every error Wayline raises on purpose
    ├── ValidationError             bad input from a caller: names the field and the limit (-> 4xx)
    │   ├── InvalidExpressionError  a CEL expression that does not compile
    │   ├── InvalidDurationError    a duration / time string that does not parse or is out of range
    │   └── InvalidCronError        a cron expression (or its TZ= prefix) that does not parse
    ├── NotFoundError               an id that names nothing (-> 404)
    ├── ConflictError               the request does not fit the current state (-> 409)
    ├── AuthError                   missing or wrong key / signature (-> 401)
    ├── StoreError                  a storage backend failed (not a lost race: those are data)
    ├── ConfigError                 the SDK was set up wrongly (missing signing key, bad option)
    ├── SendEventsError             ``client.send`` failed; ``ids`` holds the events accepted
    ├── SerializationError          a step or function returned something that is not JSON
    ├── NonDeterminismError         replayed code no longer matches its recorded steps
    ├── StepError                   a step failed for good; raised where user code awaits it
    ├── NonRetriableError           raised by user code: fail the run now, no more retries
    └── RetryAfterError             raised by user code: retry, but not before ``retry_at``

The last three are the SDK's user-facing errors: user code raises ``NonRetriableError`` and
``RetryAfterError``; the SDK raises ``StepError`` into user code. Lost races on conditional
writes are not errors: ports return ``False`` and the service re-reads and re-decides.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


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


class ConflictError(WaylineError):
    """The target exists but its state forbids the request (redrive a run that did not fail)."""


class AuthError(WaylineError):
    """Authentication failed (signing key, event key or request signature)."""


class StoreError(WaylineError):
    """A storage backend failed for a reason other than a lost conditional write."""


class ConfigError(WaylineError):
    """The SDK is configured in a way that cannot work; the message says how to fix it.

    Raised at construction (``Wayline(...)``, ``@client.function``, ``serve(...)``), never
    in the middle of a run.

    Example::

        wayline.fastapi.serve(app, wayline.Wayline(app_id="shop"), fns)
        # ConfigError: no signing key: production mode verifies every request ...
    """


class SendEventsError(WaylineError):
    """Sending events failed. ``ids`` lists the events the server accepted, in order.

    The event API stops at the first invalid event, so ``ids[i]`` belongs to the i-th event
    sent and every event after ``len(ids)`` was not stored.

    Example::

        try:
            client.send(events)
        except wayline.SendEventsError as err:
            retry_later(events[len(err.ids):])
    """

    def __init__(self, message: str, *, ids: list[str]) -> None:
        super().__init__(message)
        self.ids = ids


class SerializationError(WaylineError):
    """A value could not be turned into JSON; the message names the step and the type.

    It fails the run without retries (the same code returns the same value). Example::

        await ctx.step.run("load", lambda: {object()})
        # the run fails: step "load" returned a set, which cannot be serialized to JSON
    """


class NonDeterminismError(WaylineError):
    """The function's steps no longer match what was recorded for this run.

    Reported (as ``step_unexpected``) when the server asks for a step the code no longer
    reaches, e.g. after a deploy renamed it. Example::

        await ctx.step.run("charge-v2", charge)  # was "charge" when the run started
    """


class StepError(WaylineError):
    """A step that failed for good (retries exhausted, or non-retriable), replayed into user
    code where it is awaited. Catch it to recover; left uncaught, it fails the run.

    Example::

        try:
            await ctx.step.run("charge", charge_card)
        except wayline.StepError as err:
            await ctx.step.run("refund", refund, err.message)
    """

    def __init__(
        self, message: str, *, name: str = "Error", stack: str | None = None, step_id: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.stack = stack
        self.step_id = step_id


class NonRetriableError(WaylineError):
    """Raise it to fail the run at once, whatever retries are left.

    Example::

        if user is None:
            raise wayline.NonRetriableError(f"user {user_id} does not exist")
    """


class RetryAfterError(WaylineError):
    """Raise it to retry the step (or function), but not before ``retry_after``.

    ``retry_after`` is a delay (``timedelta`` or a duration string such as ``"30s"``) or an
    absolute time (an aware ``datetime``; a naive one is taken as UTC). The server clamps
    the delay to between 1 s and 24 h. A delay is sent as a delay (``retry-after: 30``) and
    measured on the server's clock, not the app's.

    Example::

        if response.status_code == 429:
            raise wayline.RetryAfterError("rate limited", timedelta(seconds=30))
    """

    def __init__(
        self, message: str, retry_after: timedelta | datetime | str, *, now: datetime | None = None
    ) -> None:
        super().__init__(message)
        self.delay = _delay(retry_after)
        """The delay asked for, or None when ``retry_after`` was an absolute time."""
        if self.delay is not None:
            self.retry_at = (now or datetime.now(UTC)) + self.delay
        else:
            assert isinstance(retry_after, datetime)
            tz = retry_after.tzinfo
            self.retry_at = retry_after if tz is not None else retry_after.replace(tzinfo=UTC)


def _delay(value: timedelta | datetime | str) -> timedelta | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, str):
        # Imported here: durations imports this module for its own errors.
        from .engine.durations import parse_duration

        value = timedelta(milliseconds=parse_duration(value, field="retry_after"))
    if value < timedelta(0):
        raise ValueError(f"retry_after must not be negative, got {value}")
    return value
