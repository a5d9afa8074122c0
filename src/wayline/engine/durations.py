"""Duration and timestamp strings as Inngest SDKs send them, resolved to int milliseconds.

Inngest's server parses durations with ``str2duration`` (Go ``time.ParseDuration`` plus ``d``
and ``w``), so ``"1h30m"``, ``"1.5h"`` and ``"1h0m0s"`` all work. The JS SDK converts
``"48 hours"`` with the ``ms`` package before sending, but older SDKs and hand-written opcodes
send the spelled-out form, so it is accepted too. A bare number is rejected: ``ms`` reads it as
milliseconds and Go rejects it, so any guess would be wrong for someone.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from wayline.errors import InvalidDurationError

_NS_PER_MS = 1_000_000
_MS_PER_DAY = 86_400_000

MAX_SLEEP_MS = 366 * _MS_PER_DAY
"""The longest sleep accepted: one leap year, Inngest's documented ceiling."""

# Go's time.Duration is an int64 of nanoseconds; anything longer overflows on the Go side, so
# it is rejected here too rather than being silently accepted by Python's big ints.
_MAX_DURATION_MS = (2**63 - 1) // _NS_PER_MS
_MAX_DURATION_LABEL = "106751d"

_GO_UNITS_NS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN, as Go spells it
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU, which Go also accepts
    "ms": _NS_PER_MS,
    "s": 1_000 * _NS_PER_MS,
    "m": 60_000 * _NS_PER_MS,
    "h": 3_600_000 * _NS_PER_MS,
}

_INNGEST_UNITS_NS: dict[str, int] = {
    **_GO_UNITS_NS,
    "d": _MS_PER_DAY * _NS_PER_MS,
    "w": 7 * _MS_PER_DAY * _NS_PER_MS,
}


def _spelled(unit: str, *names: str) -> dict[str, int]:
    return dict.fromkeys(names, _INNGEST_UNITS_NS[unit])


_ALL_UNITS_NS: dict[str, int] = {
    **_INNGEST_UNITS_NS,
    **_spelled("ms", "msec", "msecs", "millisecond", "milliseconds"),
    **_spelled("s", "sec", "secs", "second", "seconds"),
    **_spelled("m", "min", "mins", "minute", "minutes"),
    **_spelled("h", "hr", "hrs", "hour", "hours"),
    **_spelled("d", "day", "days"),
    **_spelled("w", "wk", "wks", "week", "weeks"),
}

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_GO_TERM = re.compile(rf"({_NUMBER})([a-zµμ]+)")
_ANY_TERM = re.compile(rf"\s*({_NUMBER})\s*([a-zµμ]+)\s*,?")


def _invalid(field: str, text: str, expected: str) -> InvalidDurationError:
    return InvalidDurationError(
        f"{field} '{text}' is not a valid duration (expected {expected})", field=field
    )


def _sum_terms(
    text: str, pattern: re.Pattern[str], units: dict[str, int], *, field: str, expected: str
) -> int:
    """Add up ``<number><unit>`` terms that must cover ``text`` exactly; returns ms."""
    total_ns = Fraction(0)
    pos = 0
    while pos < len(text):
        match = pattern.match(text, pos)
        if match is None or match.end() == pos or match.group(2) not in units:
            raise _invalid(field, text, expected)
        total_ns += Fraction(match.group(1)) * units[match.group(2)]
        pos = match.end()
    # Our clock has ms resolution; rounding up means a sleep never ends early.
    total_ms = math.ceil(total_ns / _NS_PER_MS)
    if total_ms > _MAX_DURATION_MS:
        raise InvalidDurationError(
            f"{field} '{text}' exceeds the maximum of {_MAX_DURATION_LABEL}", field=field
        )
    return total_ms


def _prepare(text: str, field: str) -> str:
    body = text.strip().lower()
    if not body:
        raise InvalidDurationError(f"{field} must not be empty", field=field)
    if body.startswith("-"):
        raise InvalidDurationError(f"{field} '{text}' must not be negative", field=field)
    unsigned = body.removeprefix("+")  # Go accepts an explicit plus sign
    if not unsigned:
        raise _invalid(field, text, "a number followed by a unit")
    return unsigned


def parse_duration(text: str, *, field: str = "duration") -> int:
    """Parse an Inngest time string ("10s", "1h30m", "1.5h", "2 days", "1h0m0s") into ms."""
    body = _prepare(text, field)
    expected = "e.g. '10s', '1h30m', '500ms', '2d', '1w' or '48 hours'"
    return _sum_terms(body, _ANY_TERM, _ALL_UNITS_NS, field=field, expected=expected)


def parse_go_duration(text: str, *, field: str = "duration") -> int:
    """Parse a Go ``time.ParseDuration`` string into ms: units ns, us, µs, ms, s, m, h only."""
    body = _prepare(text, field)
    if body == "0":
        return 0  # the one unitless form Go accepts
    expected = "a Go duration such as '30s', '1m30s' or '500ms'; units ns, us, ms, s, m, h"
    return _sum_terms(body, _GO_TERM, _GO_UNITS_NS, field=field, expected=expected)


_FORMAT_UNITS: tuple[tuple[int, str], ...] = (
    (7 * _MS_PER_DAY, "w"),
    (_MS_PER_DAY, "d"),
    (3_600_000, "h"),
    (60_000, "m"),
    (1_000, "s"),
)


def format_duration(ms: int) -> str:
    """Render ms with the largest unit that divides it evenly ("1w", "90s", "500ms")."""
    if ms < 0:
        raise ValueError(f"duration must not be negative, got {ms}ms")
    if ms == 0:
        return "0s"
    for size, suffix in _FORMAT_UNITS:
        if ms % size == 0:
            return f"{ms // size}{suffix}"
    return f"{ms}ms"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(text: str, *, field: str = "time") -> int:
    """Parse an ISO-8601 / RFC 3339 datetime into epoch ms; a naive time is taken as UTC."""
    body = text.strip()
    if body[-1:] == "z":
        body = body[:-1] + "Z"  # RFC 3339 allows a lowercase zulu suffix
    try:
        parsed = datetime.fromisoformat(body)
    except ValueError:
        raise InvalidDurationError(
            f"{field} '{text}' is not a valid ISO-8601 datetime "
            "(expected e.g. '2026-01-01T00:00:00Z')",
            field=field,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


# Inngest's heuristic: shorter strings cannot be a date, so they are never tried as one.
_MIN_DATE_LENGTH = 10


def _absolute_target(text: str) -> int | None:
    if len(text) < _MIN_DATE_LENGTH:
        return None
    try:
        return parse_time(text)
    except InvalidDurationError:
        return None


def sleep_target(op_name: str | None, opts_duration: str | None, *, now_ms: int) -> int:
    """The epoch ms at which a Sleep opcode wakes, resolved as an Inngest server does.

    ``opts.duration`` wins over the op name (v1/v2 JS SDKs put the duration in the name). An
    empty value wakes at once, as Inngest does; so does an absolute time in the past.
    """
    text = (opts_duration or op_name or "").strip()
    if not text:
        return now_ms
    absolute = _absolute_target(text)
    if absolute is not None:
        if absolute - now_ms > MAX_SLEEP_MS:
            raise InvalidDurationError(
                f"sleep until '{text}' is more than the maximum of 366d from now", field="sleep"
            )
        return max(absolute, now_ms)
    delay = parse_duration(text, field="sleep duration")
    if delay > MAX_SLEEP_MS:
        raise InvalidDurationError(
            f"sleep duration '{text}' exceeds the maximum of 366d", field="sleep duration"
        )
    return now_ms + delay
