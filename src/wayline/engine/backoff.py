"""Retry backoff policies a function declares, beyond Inngest's fixed table.

A FunctionConfig may carry (Wayline's SDK sends them; official SDKs never do, so their
functions keep the table of ``retry.py``)::

    "backoff": {"initial": "1s", "factor": 2, "max": "10m", "jitter": "5s"},
    "stepBackoff": {"charge": {"initial": "30s", "factor": 1, "max": "30s"}}

The delay before the retry after failed attempt N (0-based) is
``min(initial * factor**N, max) + jitter * j``, where ``j`` in [0, 1) is the caller's random
draw (the engine is pure). ``stepBackoff`` is keyed by step id as the function names it
(every repeat of an id used in a loop included) and overrides ``backoff`` for that step. A
``retry-after`` from the app still wins over both, and both win over the dev server's
``--retry-interval`` (which only replaces the default table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wayline.errors import InvalidDurationError, ValidationError

from .durations import parse_duration

JSON = object

MIN_INITIAL_MS = 1_000
MAX_DELAY_MS = 24 * 3_600_000
MAX_JITTER_MS = 3_600_000
MAX_FACTOR = 10.0
MAX_STEP_POLICIES = 50


@dataclass(frozen=True, slots=True)
class Backoff:
    """An exponential backoff: ``initial`` ms, times ``factor`` per attempt, capped at
    ``max``, plus up to ``jitter`` ms."""

    initial_ms: int
    factor: float
    max_ms: int
    jitter_ms: int = 0

    def delay_ms(self, attempt: int, *, jitter_fraction: float) -> int:
        """Delay before retrying after failed ``attempt`` (0-based); ``jitter_fraction`` in
        [0, 1) is the caller's random draw."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        if not 0 <= jitter_fraction < 1:
            raise ValueError(f"jitter_fraction must be in [0, 1), got {jitter_fraction}")
        delay = float(self.initial_ms)
        for _ in range(attempt):  # attempts are at most MAX_RETRIES: no overflow, no pow
            delay *= self.factor
            if delay >= self.max_ms:
                break
        return min(round(delay), self.max_ms) + int(self.jitter_ms * jitter_fraction)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A function's declared backoff and its per-step overrides (by step id)."""

    function: Backoff | None = None
    steps: Mapping[str, Backoff] | None = None

    def for_step(self, step_id: str | None) -> Backoff | None:
        """The backoff for a retry of step ``step_id`` (None: not about a known step)."""
        if step_id is not None and self.steps:
            found = self.steps.get(step_id)
            if found is not None:
                return found
        return self.function


NO_POLICY = RetryPolicy()


def parse_policy(config: Mapping[str, JSON], *, where: str) -> RetryPolicy:
    """The policy in a FunctionConfig (``NO_POLICY`` when it declares none).

    Raises:
        ValidationError: a field is malformed or out of range; the message and ``field``
            name it (``<where>.backoff.factor``) and the limit.
    """
    raw_fn, raw_steps = config.get("backoff"), config.get("stepBackoff")
    if raw_fn is None and raw_steps is None:
        return NO_POLICY
    function = None if raw_fn is None else _backoff(raw_fn, f"{where}.backoff")
    if raw_steps is None:
        return RetryPolicy(function=function)
    field = f"{where}.stepBackoff"
    if not isinstance(raw_steps, Mapping):
        raise _err(f"{field} must be an object of step id -> backoff", field)
    if len(raw_steps) > MAX_STEP_POLICIES:
        raise _err(f"{field} has {len(raw_steps)} steps; the limit is {MAX_STEP_POLICIES}", field)
    steps = {
        str(step_id): _backoff(value, f"{field}.{step_id}") for step_id, value in raw_steps.items()
    }
    return RetryPolicy(function=function, steps=steps)


def _backoff(raw: JSON, field: str) -> Backoff:
    if not isinstance(raw, Mapping):
        raise _err(f"{field} must be an object with initial, factor, max, jitter", field)
    unknown = sorted(set(raw) - {"initial", "factor", "max", "jitter"})
    if unknown:
        raise _err(
            f"{field}.{unknown[0]} is not a backoff field (initial, factor, max, jitter)",
            f"{field}.{unknown[0]}",
        )
    initial = _duration(raw.get("initial"), f"{field}.initial", MIN_INITIAL_MS, MAX_DELAY_MS)
    factor = raw.get("factor", 2)
    if isinstance(factor, bool) or not isinstance(factor, int | float):
        raise _err(f"{field}.factor must be a number from 1 to {MAX_FACTOR:g}", f"{field}.factor")
    if not 1 <= factor <= MAX_FACTOR:
        raise _err(
            f"{field}.factor must be from 1 to {MAX_FACTOR:g}, got {factor!r}", f"{field}.factor"
        )
    maximum = _duration(raw.get("max", "24h"), f"{field}.max", initial, MAX_DELAY_MS)
    jitter = raw.get("jitter")
    jitter_ms = 0 if jitter is None else _duration(jitter, f"{field}.jitter", 0, MAX_JITTER_MS)
    return Backoff(initial_ms=initial, factor=float(factor), max_ms=maximum, jitter_ms=jitter_ms)


def _duration(value: JSON, field: str, low_ms: int, high_ms: int) -> int:
    if not isinstance(value, str):
        raise _err(f"{field} must be a duration string such as '30s', got {value!r}", field)
    try:
        ms = parse_duration(value, field=field)
    except InvalidDurationError as exc:
        raise _err(str(exc), field) from None
    if not low_ms <= ms <= high_ms:
        raise _err(
            f"{field} must be from {low_ms // 1000}s to {high_ms // 1000}s, got {value!r}", field
        )
    return ms


def _err(message: str, field: str) -> ValidationError:
    return ValidationError(message, field=field)
