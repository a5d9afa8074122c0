"""Retry timing as the Inngest executor applies it: a fixed backoff table plus caller jitter.

Jitter is an argument rather than drawn here because the engine is pure: the service layer
draws it from its random source so a replay of the same inputs schedules the same times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from wayline.engine.durations import parse_time
from wayline.errors import InvalidDurationError

DEFAULT_RETRIES = 4
"""Retries (not attempts) when a function does not configure ``retries``: 5 attempts total."""

MAX_RETRIES = 20
"""The most retries a function may configure."""

_SECOND_MS = 1_000
_MINUTE_MS = 60 * _SECOND_MS
_HOUR_MS = 60 * _MINUTE_MS

BACKOFF_TABLE_MS: tuple[int, ...] = (
    15 * _SECOND_MS,
    30 * _SECOND_MS,
    1 * _MINUTE_MS,
    2 * _MINUTE_MS,
    5 * _MINUTE_MS,
    10 * _MINUTE_MS,
    20 * _MINUTE_MS,
    40 * _MINUTE_MS,
    1 * _HOUR_MS,
    2 * _HOUR_MS,
)
"""Delay before the retry that follows attempt N (0-based); later attempts reuse the last."""

MAX_JITTER_MS = 30 * _SECOND_MS
"""Exclusive upper bound of the jitter the caller adds to a table delay."""

MIN_RETRY_AFTER_MS = _SECOND_MS
MAX_RETRY_AFTER_MS = 24 * _HOUR_MS
_MAX_SECONDS_DIGITS = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def backoff_ms(attempt: int, *, jitter_ms: int, fixed_interval_ms: int | None = None) -> int:
    """Delay before retrying after failed ``attempt`` (0 for the first try).

    ``fixed_interval_ms`` is the dev server's ``--retry-interval``: it replaces the table and
    the jitter so local retries are quick and predictable.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if fixed_interval_ms is not None:
        if fixed_interval_ms < 0:
            raise ValueError(f"fixed_interval_ms must be >= 0, got {fixed_interval_ms}")
        return fixed_interval_ms
    if not 0 <= jitter_ms < MAX_JITTER_MS:
        raise ValueError(f"jitter_ms must be in [0, {MAX_JITTER_MS}), got {jitter_ms}")
    return BACKOFF_TABLE_MS[min(attempt, len(BACKOFF_TABLE_MS) - 1)] + jitter_ms


def _retry_at_ms(value: str, now_ms: int) -> int | None:
    """The absolute time a ``retry-after`` value names, or None if it is not one we read."""
    if value.isascii() and value.isdigit():
        # Anything past the cap is clamped anyway; this keeps int() off absurdly long input.
        seconds = int(value) if len(value) <= _MAX_SECONDS_DIGITS else MAX_RETRY_AFTER_MS
        return now_ms + seconds * _SECOND_MS
    try:
        http_date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        http_date = None
    if http_date is not None:
        if http_date.tzinfo is None:
            http_date = http_date.replace(tzinfo=UTC)  # RFC 7231 dates are always GMT
        return (http_date - _EPOCH) // timedelta(milliseconds=1)
    try:
        return parse_time(value, field="retry-after")
    except InvalidDurationError:
        return None


def parse_retry_after(value: str | None, *, now_ms: int) -> int | None:
    """Delay in ms asked for by a ``retry-after`` header, clamped to [1s, 24h].

    Accepts delta-seconds, an HTTP-date, or an ISO-8601 time (what the Python SDK sends for a
    ``RetryAfterError``). Returns None when absent or unreadable, so the caller falls back to
    the backoff table instead of failing the run over a bad header.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    retry_at = _retry_at_ms(text, now_ms)
    if retry_at is None:
        return None
    return min(max(retry_at - now_ms, MIN_RETRY_AFTER_MS), MAX_RETRY_AFTER_MS)
