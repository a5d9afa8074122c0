"""Flow-control configuration of a function, parsed from its FunctionConfig and validated.

Both official SDKs and Wayline's serialize these options as the protocol's FunctionConfig
(research note §1.4); this module turns them into typed, checked values once, at sync, so
a bad value is a 400 naming the function, field and limit, and nothing is stored.

Limits (documented in the README):

========================  ==========================================================
concurrency               1 or 2 limits; limit 1..100000; scope fn | env | account
throttle                  limit 1..100000 per period 1s..7d; burst 1..100000
rateLimit                 limit 1..100000 per period 1s..24h
idempotency               a CEL key; one run per key value per 24 h
debounce                  period 1s..7d; timeout >= period, <= 7d
batchEvents               maxSize 2..1000; timeout 1s..60s
cancel                    at most 5; timeout up to 366d (default: the run's lifetime)
priority.run              CEL returning seconds, clamped to -600..600
timeouts.start / finish   1s..366d
singleton                 mode skip | cancel
========================  ==========================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from ...errors import ValidationError
from .. import expr
from ..durations import parse_duration
from ..model import JSON, FunctionDef

SECOND = 1000
DAY = 24 * 3600 * SECOND
MAX_LIMIT = 100_000
MAX_CONCURRENCY_LIMITS = 2
MAX_CANCELS = 5
PRIORITY_MIN_S, PRIORITY_MAX_S = -600, 600
IDEMPOTENCY_PERIOD_MS = DAY


@dataclass(frozen=True, slots=True)
class Concurrency:
    limit: int
    key: str | None = None
    scope: str = "fn"


@dataclass(frozen=True, slots=True)
class Rate:
    """A GCRA limit: ``limit`` per ``period_ms`` (+ ``burst`` for throttle)."""

    limit: int
    period_ms: int
    key: str | None = None
    burst: int = 1


@dataclass(frozen=True, slots=True)
class Debounce:
    period_ms: int
    key: str | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    max_size: int
    timeout_ms: int
    key: str | None = None
    condition: str | None = None


@dataclass(frozen=True, slots=True)
class CancelOn:
    event: str
    condition: str | None = None
    timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Singleton:
    mode: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class FlowConfig:
    concurrency: tuple[Concurrency, ...] = ()
    throttle: Rate | None = None
    rate_limit: Rate | None = None
    idempotency: str | None = None
    debounce: Debounce | None = None
    batch: Batch | None = None
    cancel: tuple[CancelOn, ...] = ()
    priority: str | None = None
    start_timeout_ms: int | None = None
    finish_timeout_ms: int | None = None
    singleton: Singleton | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        """Legal but risky configuration, reported at sync."""
        return tuple(
            f"cancel on {c.event!r} has no 'if': any such event cancels every running run "
            "of this function"
            for c in self.cancel
            if not c.condition
        )


def flow_config(fn: FunctionDef) -> FlowConfig:
    """The parsed flow control of ``fn`` (cached: functions are immutable once synced).

    Asked several times per run (admission, start, each call, the end: ~2 % of the dev
    server's time per run in py-spy), so the answer is also kept per function object: the
    function cache hands out the same ``FunctionDef`` until the next sync, and that skips
    re-encoding its config to find the parsed one."""
    entry = _BY_OBJECT.get(id(fn))
    if entry is not None and entry[0] is fn and entry[1] is fn.config:
        return entry[2]
    parsed = _parse_cached(fn.id, json.dumps(fn.config, sort_keys=True, default=str))
    if len(_BY_OBJECT) >= _BY_OBJECT_MAX:
        _BY_OBJECT.pop(next(iter(_BY_OBJECT)), None)  # the oldest entry
    _BY_OBJECT[id(fn)] = (fn, fn.config, parsed)  # holds ``fn``, so its id is not reused
    return parsed


_BY_OBJECT: dict[int, tuple[FunctionDef, Mapping[str, JSON], FlowConfig]] = {}
_BY_OBJECT_MAX = 4096


@lru_cache(maxsize=4096)
def _parse_cached(fn_id: str, config_json: str) -> FlowConfig:
    return parse_flow(json.loads(config_json), where=f"function {fn_id!r}")


def parse_flow(config: Mapping[str, JSON], *, where: str) -> FlowConfig:
    """Validate every flow-control field of one FunctionConfig."""
    timeouts = _mapping(config.get("timeouts"), f"{where}.timeouts")
    priority = _mapping(config.get("priority"), f"{where}.priority")
    return FlowConfig(
        concurrency=_concurrency(config.get("concurrency"), f"{where}.concurrency"),
        throttle=_rate(
            config.get("throttle"), f"{where}.throttle", max_period=7 * DAY, with_burst=True
        ),
        rate_limit=_rate(config.get("rateLimit"), f"{where}.rateLimit", max_period=DAY),
        idempotency=_expression(config.get("idempotency"), f"{where}.idempotency"),
        debounce=_debounce(config.get("debounce"), f"{where}.debounce"),
        batch=_batch(config.get("batchEvents"), f"{where}.batchEvents"),
        cancel=_cancels(config.get("cancel"), f"{where}.cancel"),
        priority=_expression(priority.get("run"), f"{where}.priority.run"),
        start_timeout_ms=_duration(
            timeouts.get("start"), f"{where}.timeouts.start", SECOND, 366 * DAY
        ),
        finish_timeout_ms=_duration(
            timeouts.get("finish"), f"{where}.timeouts.finish", SECOND, 366 * DAY
        ),
        singleton=_singleton(config.get("singleton"), f"{where}.singleton"),
    )


def _fail(message: str, field: str) -> ValidationError:
    return ValidationError(message, field=field)


def _mapping(value: JSON, field: str) -> Mapping[str, JSON]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(f"{field} must be an object", field)
    return value


def _int(value: JSON, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"{field} must be an integer from {low} to {high}, got {value!r}", field)
    return value


def _duration(value: JSON, field: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    ms = value * SECOND if isinstance(value, int) and not isinstance(value, bool) else None
    if ms is None:
        if not isinstance(value, str):
            raise _fail(f"{field} must be a duration string such as '30s' or '1h'", field)
        ms = parse_duration(value, field=field)
    if not low <= ms <= high:
        raise _fail(
            f"{field} must be between {low // SECOND}s and {high // SECOND}s, got {value!r}", field
        )
    return ms


def _expression(value: JSON, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _fail(f"{field} must be a CEL expression string", field)
    expr.validate(value, field=field)
    return value


def _concurrency(value: JSON, field: str) -> tuple[Concurrency, ...]:
    if value is None:
        return ()
    if isinstance(value, int) and not isinstance(value, bool):
        return (Concurrency(limit=_int(value, field, 1, MAX_LIMIT)),)
    if isinstance(value, Mapping):  # the newer {fn: [...], step: [...]} form
        value = [*_list(value.get("fn")), *_list(value.get("step"))]
    if not isinstance(value, list):
        raise _fail(f"{field} must be a number or an array of limits", field)
    if len(value) > MAX_CONCURRENCY_LIMITS:
        raise _fail(
            f"{field} has {len(value)} limits; the limit is {MAX_CONCURRENCY_LIMITS}", field
        )
    return tuple(_one_concurrency(v, f"{field}[{i}]") for i, v in enumerate(value))


def _list(value: JSON) -> list[JSON]:
    return value if isinstance(value, list) else []


def _one_concurrency(value: JSON, field: str) -> Concurrency:
    raw = _mapping(value, field)
    scope = raw.get("scope") or "fn"
    if scope not in ("fn", "env", "account"):
        raise _fail(f"{field}.scope must be 'fn', 'env' or 'account', got {scope!r}", field)
    if scope != "fn" and not raw.get("key"):
        raise _fail(f"{field}: a {scope!r}-scoped limit needs a key", f"{field}.key")
    return Concurrency(
        limit=_int(raw.get("limit"), f"{field}.limit", 1, MAX_LIMIT),
        key=_expression(raw.get("key"), f"{field}.key"),
        scope=str(scope),
    )


def _rate(value: JSON, field: str, *, max_period: int, with_burst: bool = False) -> Rate | None:
    if value is None:
        return None
    raw = _mapping(value, field)
    period = _duration(raw.get("period"), f"{field}.period", SECOND, max_period)
    if period is None:
        raise _fail(f"{field}.period is required", f"{field}.period")
    burst = raw.get("burst")
    return Rate(
        limit=_int(raw.get("limit"), f"{field}.limit", 1, MAX_LIMIT),
        period_ms=period,
        key=_expression(raw.get("key"), f"{field}.key"),
        burst=_int(burst, f"{field}.burst", 1, MAX_LIMIT) if with_burst and burst else 1,
    )


def _debounce(value: JSON, field: str) -> Debounce | None:
    if value is None:
        return None
    raw = _mapping(value, field)
    period = _duration(raw.get("period"), f"{field}.period", SECOND, 7 * DAY)
    if period is None:
        raise _fail(f"{field}.period is required", f"{field}.period")
    timeout = _duration(raw.get("timeout"), f"{field}.timeout", period, 7 * DAY)
    return Debounce(
        period_ms=period, key=_expression(raw.get("key"), f"{field}.key"), timeout_ms=timeout
    )


def _batch(value: JSON, field: str) -> Batch | None:
    if value is None:
        return None
    raw = _mapping(value, field)
    timeout = _duration(raw.get("timeout"), f"{field}.timeout", SECOND, 60 * SECOND)
    if timeout is None:
        raise _fail(f"{field}.timeout is required", f"{field}.timeout")
    return Batch(
        max_size=_int(raw.get("maxSize"), f"{field}.maxSize", 2, 1000),
        timeout_ms=timeout,
        key=_expression(raw.get("key"), f"{field}.key"),
        condition=_expression(raw.get("if"), f"{field}.if"),
    )


def _cancels(value: JSON, field: str) -> tuple[CancelOn, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(f"{field} must be an array", field)
    if len(value) > MAX_CANCELS:
        raise _fail(f"{field} has {len(value)} entries; the limit is {MAX_CANCELS}", field)
    out = []
    for i, item in enumerate(value):
        raw = _mapping(item, f"{field}[{i}]")
        event = raw.get("event")
        if not isinstance(event, str) or not event:
            raise _fail(f"{field}[{i}].event is required", f"{field}[{i}].event")
        out.append(
            CancelOn(
                event=event,
                condition=_expression(raw.get("if"), f"{field}[{i}].if"),
                timeout_ms=_duration(
                    raw.get("timeout"), f"{field}[{i}].timeout", SECOND, 366 * DAY
                ),
            )
        )
    return tuple(out)


def _singleton(value: JSON, field: str) -> Singleton | None:
    if value is None:
        return None
    raw = _mapping(value, field)
    mode = raw.get("mode")
    if mode not in ("skip", "cancel"):
        raise _fail(f"{field}.mode must be 'skip' or 'cancel', got {mode!r}", f"{field}.mode")
    return Singleton(mode=str(mode), key=_expression(raw.get("key"), f"{field}.key"))


def clamp_priority(seconds: JSON) -> int:
    """``priority.run`` results outside -600..600 s are clamped; non-numbers count as 0."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return 0
    return max(PRIORITY_MIN_S, min(PRIORITY_MAX_S, int(seconds)))
