"""Function options (flow control, retries, cancellation, timeouts) as frozen models.

Each model validates at construction (a bad option is a ``ConfigError`` at import time, not a
sync failure later) and renders itself as the FunctionConfig JSON of the wire protocol
(research note §1.4), exactly as the official Python SDK serializes the same option.
Durations are a ``timedelta`` or a duration string (``"10s"``, ``"1h30m"``, ``"2d"``) and go
out in the largest unit that divides them (``"90s"``, ``"1d"``), whole seconds only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeAlias

from wayline.engine.durations import format_duration, parse_duration
from wayline.errors import ConfigError, InvalidDurationError

Duration: TypeAlias = str | timedelta
"""A ``timedelta`` or a duration string such as ``"30s"``, ``"1h30m"`` or ``"2d"``."""

MAX_RETRIES = 20
MAX_CONCURRENCY_LIMITS = 2
MAX_CANCELLATIONS = 5
_SECOND_MS = 1000
_DAY_MS = 86_400_000


def to_ms(value: Duration, *, field: str) -> int:
    """Milliseconds in a ``timedelta`` or duration string; ConfigError when it is neither."""
    if isinstance(value, timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, str):
        try:
            return parse_duration(value, field=field)
        except InvalidDurationError as exc:
            raise ConfigError(str(exc)) from None
    raise ConfigError(f"{field} must be a timedelta or a duration string, got {value!r}")


def duration_config(
    value: Duration, *, field: str, max_ms: int | None = None, go_units: bool = False
) -> str:
    """The wire form of a config duration: at least 1 s, whole seconds, largest unit."""
    ms = to_ms(value, field=field)
    if ms < _SECOND_MS or ms % _SECOND_MS:
        raise ConfigError(f"{field} must be a whole number of seconds, at least 1s; got {value!r}")
    if max_ms is not None and ms > max_ms:
        raise ConfigError(f"{field} must be at most {format_duration(max_ms)}; got {value!r}")
    if go_units and ms % 3_600_000 == 0:
        return f"{ms // 3_600_000}h"  # Go's time.ParseDuration has no "d" or "w"
    return format_duration(ms)


def _nonblank_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(value: int, field: str) -> None:
    if not _is_int(value) or value < 1:
        raise ConfigError(f"{field} must be a positive integer, got {value!r}")


def _strip(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if v is not None}


@dataclass(frozen=True, kw_only=True)
class Concurrency:
    """At most ``limit`` steps of this function run at once (per ``key`` when given).

    Example: ``wayline.Concurrency(limit=5, key="event.data.account_id")``
    """

    limit: int
    key: str | None = None
    scope: Literal["fn", "env", "account"] | None = None

    def __post_init__(self) -> None:
        _positive(self.limit, "concurrency.limit")
        if self.scope not in (None, "fn", "env", "account"):
            raise ConfigError(f"concurrency.scope must be fn, env or account, got {self.scope!r}")

    def to_config(self) -> dict[str, Any]:
        return _strip({"key": self.key, "limit": self.limit, "scope": self.scope})


@dataclass(frozen=True, kw_only=True)
class Throttle:
    """Start at most ``limit`` runs per ``period`` (plus ``burst``); excess runs queue.

    Example: ``wayline.Throttle(limit=10, period="1m", key="event.data.user_id")``
    """

    limit: int
    period: Duration
    burst: int = 1
    key: str | None = None

    def __post_init__(self) -> None:
        _positive(self.limit, "throttle.limit")
        _positive(self.burst, "throttle.burst")
        duration_config(self.period, field="throttle.period", max_ms=7 * _DAY_MS)

    def to_config(self) -> dict[str, Any]:
        period = duration_config(self.period, field="throttle.period")
        return _strip({"key": self.key, "limit": self.limit, "period": period, "burst": self.burst})


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """Start at most ``limit`` runs per ``period``; excess events start nothing.

    Example: ``wayline.RateLimit(limit=1, period="1h", key="event.data.user_id")``
    """

    limit: int
    period: Duration
    key: str | None = None

    def __post_init__(self) -> None:
        _positive(self.limit, "rate_limit.limit")
        duration_config(self.period, field="rate_limit.period")

    def to_config(self) -> dict[str, Any]:
        period = duration_config(self.period, field="rate_limit.period")
        return _strip({"key": self.key, "limit": self.limit, "period": period})


@dataclass(frozen=True, kw_only=True)
class Debounce:
    """Start one run ``period`` after the last matching event (at most ``timeout`` later).

    Example: ``wayline.Debounce(period="5m", key="event.data.doc_id", timeout="1h")``
    """

    period: Duration
    key: str | None = None
    timeout: Duration | None = None

    def __post_init__(self) -> None:
        duration_config(self.period, field="debounce.period", max_ms=7 * _DAY_MS)
        if self.timeout is not None:
            duration_config(self.timeout, field="debounce.timeout")

    def to_config(self) -> dict[str, Any]:
        timeout = self.timeout
        return _strip(
            {
                "key": self.key,
                "period": duration_config(self.period, field="debounce.period"),
                "timeout": None
                if timeout is None
                else duration_config(timeout, field="debounce.timeout"),
            }
        )


@dataclass(frozen=True, kw_only=True)
class Batch:
    """Run once for up to ``max_size`` events, or after ``timeout`` since the first one.

    Example: ``wayline.Batch(max_size=100, timeout="10s", key="event.data.account_id")``
    """

    max_size: int
    timeout: Duration
    key: str | None = None
    if_: str | None = None

    def __post_init__(self) -> None:
        _positive(self.max_size, "batch_events.max_size")
        duration_config(self.timeout, field="batch_events.timeout", go_units=True)

    def to_config(self) -> dict[str, Any]:
        timeout = duration_config(self.timeout, field="batch_events.timeout", go_units=True)
        return _strip(
            {"maxSize": self.max_size, "timeout": timeout, "key": self.key, "if": self.if_}
        )


@dataclass(frozen=True, kw_only=True)
class Cancel:
    """Cancel a run when ``event`` arrives (and ``if_`` holds), within ``timeout``.

    ``match="data.user_id"`` is ``wait_for_event``'s shorthand: cancel only when that field
    of the cancelling event equals the triggering event's (``if_`` and ``match`` exclude each
    other).

    Example: ``wayline.Cancel(event="user/deleted", match="data.user_id", timeout="7d")``
    """

    event: str
    if_: str | None = None
    match: str | None = None
    timeout: Duration | None = None

    def __post_init__(self) -> None:
        if not self.event:
            raise ConfigError("cancel.event must be a non-empty event name")
        if self.if_ is not None and self.match is not None:
            raise ConfigError("cancel takes if_ or match, not both")
        if self.match is not None and not self.match.strip():
            raise ConfigError("cancel.match must be a non-empty field path, e.g. 'data.user_id'")
        if self.timeout is not None:
            duration_config(self.timeout, field="cancel.timeout")

    @property
    def expression(self) -> str | None:
        """The CEL condition sent to the server (``match`` spelled out)."""
        if self.match is not None:
            return f"event.{self.match} == async.{self.match}"
        return self.if_

    def to_config(self) -> dict[str, Any]:
        timeout = self.timeout
        return _strip(
            {
                "event": self.event,
                "if": self.expression,
                "timeout": None
                if timeout is None
                else duration_config(timeout, field="cancel.timeout"),
            }
        )


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How long to wait before each retry: ``initial``, times ``factor`` per attempt, capped
    at ``max``, plus a random ``jitter`` of up to that much. Enforced by the server; without
    one a function keeps Inngest's table (15s, 30s, 1m, 2m, 5m ... 2h, plus up to 30s).

    Example: ``wayline.Backoff(initial="1s", factor=2, max="5m", jitter="1s")``
    """

    initial: Duration
    factor: float = 2.0
    max: Duration = "24h"
    jitter: Duration | None = None

    def __post_init__(self) -> None:
        self.to_config()  # every field is checked where the function is declared

    def to_config(self) -> dict[str, Any]:
        day = _DAY_MS
        initial = duration_config(self.initial, field="backoff.initial", max_ms=day)
        if isinstance(self.factor, bool) or not isinstance(self.factor, int | float):
            raise ConfigError(f"backoff.factor must be a number, got {self.factor!r}")
        if not 1 <= self.factor <= _MAX_BACKOFF_FACTOR:
            raise ConfigError(
                f"backoff.factor must be from 1 to {_MAX_BACKOFF_FACTOR:g}, got {self.factor!r}"
            )
        maximum = duration_config(self.max, field="backoff.max", max_ms=day)
        if to_ms(self.max, field="backoff.max") < to_ms(self.initial, field="backoff.initial"):
            raise ConfigError(f"backoff.max ({maximum}) must be at least initial ({initial})")
        jitter = None
        if self.jitter is not None:
            jitter = duration_config(self.jitter, field="backoff.jitter", max_ms=3_600_000)
        return _strip({"initial": initial, "factor": self.factor, "max": maximum, "jitter": jitter})


_MAX_BACKOFF_FACTOR = 10.0


@dataclass(frozen=True, kw_only=True)
class Priority:
    """Order the backlog: ``run`` is a CEL expression giving seconds of head start.

    Example: ``wayline.Priority(run="event.data.plan == 'pro' ? 120 : 0")``
    """

    run: str

    def to_config(self) -> dict[str, Any]:
        return {"run": self.run}


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """Cancel a run that waits longer than ``start`` to start or runs longer than ``finish``.

    Example: ``wayline.Timeouts(start="10m", finish="1h")``
    """

    start: Duration | None = None
    finish: Duration | None = None

    def __post_init__(self) -> None:
        if self.start is None and self.finish is None:
            raise ConfigError("timeouts needs start, finish or both")
        for name, value in (("start", self.start), ("finish", self.finish)):
            if value is not None:
                duration_config(value, field=f"timeouts.{name}")

    def to_config(self) -> dict[str, Any]:
        start, finish = self.start, self.finish
        return _strip(
            {
                "start": None if start is None else duration_config(start, field="timeouts.start"),
                "finish": None
                if finish is None
                else duration_config(finish, field="timeouts.finish"),
            }
        )


@dataclass(frozen=True, kw_only=True)
class Singleton:
    """At most one running run (per ``key``): ``skip`` new ones or ``cancel`` the old one.

    Example: ``wayline.Singleton(mode="skip", key="event.data.user_id")``
    """

    mode: Literal["skip", "cancel"]
    key: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("skip", "cancel"):
            raise ConfigError(f"singleton.mode must be skip or cancel, got {self.mode!r}")

    def to_config(self) -> dict[str, Any]:
        return _strip({"key": self.key, "mode": self.mode})


@dataclass(frozen=True, kw_only=True)
class FunctionOptions:
    """Every option of one function, validated together."""

    batch_events: Batch | None = None
    cancel: tuple[Cancel, ...] = ()
    concurrency: tuple[Concurrency, ...] = ()
    debounce: Debounce | None = None
    idempotency: str | None = None
    priority: Priority | None = None
    rate_limit: RateLimit | None = None
    retries: int | None = None
    backoff: Backoff | None = None
    step_backoff: tuple[tuple[str, Backoff], ...] = ()
    singleton: Singleton | None = None
    throttle: Throttle | None = None
    timeouts: Timeouts | None = None

    def __post_init__(self) -> None:
        retries = self.retries
        if retries is not None and not (_is_int(retries) and 0 <= retries <= MAX_RETRIES):
            raise ConfigError(
                f"retries must be an integer from 0 to {MAX_RETRIES}, got {retries!r}"
            )
        if len(self.concurrency) > MAX_CONCURRENCY_LIMITS:
            raise ConfigError(f"at most {MAX_CONCURRENCY_LIMITS} concurrency limits are allowed")
        if len(self.cancel) > MAX_CANCELLATIONS:
            raise ConfigError(f"at most {MAX_CANCELLATIONS} cancel rules are allowed")
        for step_id, backoff in self.step_backoff:
            if not _nonblank_text(step_id) or not isinstance(backoff, Backoff):
                raise ConfigError("step_backoff maps step ids to wayline.Backoff")

    def to_config(self) -> dict[str, Any]:
        """The option keys of a FunctionConfig, with unset options left out."""
        return _strip(
            {
                "backoff": None if self.backoff is None else self.backoff.to_config(),
                "stepBackoff": {k: b.to_config() for k, b in self.step_backoff} or None,
                "batchEvents": _maybe(self.batch_events),
                "cancel": [c.to_config() for c in self.cancel] or None,
                "concurrency": [c.to_config() for c in self.concurrency] or None,
                "debounce": _maybe(self.debounce),
                "idempotency": self.idempotency,
                "priority": _maybe(self.priority),
                "rateLimit": _maybe(self.rate_limit),
                "throttle": _maybe(self.throttle),
                "timeouts": _maybe(self.timeouts),
                "singleton": _maybe(self.singleton),
            }
        )


def _maybe(
    option: Batch | Debounce | Priority | RateLimit | Throttle | Timeouts | Singleton | None,
) -> dict[str, Any] | None:
    return None if option is None else option.to_config()


def as_tuple(value: Any, kind: type, field: str) -> tuple[Any, ...]:
    """One option or a sequence of them, as a tuple; ConfigError on anything else."""
    if value is None:
        return ()
    items = [value] if isinstance(value, kind) else value
    if not isinstance(items, Sequence) or not all(isinstance(i, kind) for i in items):
        raise ConfigError(f"{field} must be a {kind.__name__} or a list of them, got {value!r}")
    return tuple(items)


DEFAULT_MAX_RUNTIME = timedelta(seconds=10)
"""JS v4's ``DefaultMaxRuntime.serve``: after this long, the next new step is handed back."""


@dataclass(frozen=True, slots=True)
class Checkpointing:
    """Checkpointing settings of a client or a function.

    Args:
        enabled: Run consecutive steps in one request when the server offers it (default on).
        max_runtime: After this long in one request, the next new step is handed back to the
            server (planned) instead of run, so one request never runs unbounded. Default 10 s.

    Example::

        client = wayline.Wayline(app_id="shop", checkpointing=False)
        @client.function(id="long", trigger=..., checkpointing=wayline.Checkpointing(
            max_runtime=timedelta(seconds=30)))
    """

    enabled: bool = True
    max_runtime: timedelta = DEFAULT_MAX_RUNTIME

    def __post_init__(self) -> None:
        given: object = self.max_runtime  # callers may not be type-checked
        if not isinstance(given, timedelta) or given < timedelta(0):
            raise ConfigError(
                f"checkpointing max_runtime must be a non-negative timedelta, got "
                f"{self.max_runtime!r}"
            )


def as_checkpointing(value: bool | Checkpointing | None, owner: str) -> Checkpointing | None:
    """``True``/``False``/``Checkpointing``/``None`` (inherit) as settings, checked."""
    if value is None or isinstance(value, Checkpointing):
        return value
    if isinstance(value, bool):
        return Checkpointing(enabled=value)
    raise ConfigError(f"checkpointing of {owner} must be a bool or wayline.Checkpointing")
