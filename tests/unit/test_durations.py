from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest

from wayline.engine.durations import (
    MAX_SLEEP_MS,
    format_duration,
    parse_duration,
    parse_go_duration,
    parse_time,
    sleep_target,
)
from wayline.errors import InvalidDurationError, ValidationError

S = 1_000
M = 60 * S
H = 60 * M
D = 24 * H
W = 7 * D
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def utc_ms(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp()) * 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10s", 10 * S),
        ("1m", M),
        ("2h", 2 * H),
        ("1d", D),
        ("1w", W),
        ("1h30m", H + 30 * M),
        ("500ms", 500),
        ("1.5h", 90 * M),
        (".5s", 500),
        ("1.s", S),
        ("0s", 0),
        ("+5s", 5 * S),
        ("1h0m0s", H),  # Go's time.Duration.String()
        ("2h45m30.5s", 2 * H + 45 * M + 30_500),
        ("1w2d", 9 * D),
        ("1500us", 2),  # 1.5 ms rounds up: a sleep never ends early
        ("1µs", 1),
        ("1μs", 1),
        ("1000000ns", 1),
        ("48 hours", 48 * H),
        ("3 days", 3 * D),
        ("2 minutes", 2 * M),
        ("1 second", S),
        ("1 week", W),
        ("250 milliseconds", 250),
        ("5 mins", 5 * M),
        ("2 hrs", 2 * H),
        ("1 hour 30 minutes", H + 30 * M),
        ("1 hour, 30 minutes", H + 30 * M),
        ("  10S  ", 10 * S),
        ("10 Seconds", 10 * S),
    ],
)
def test_parse_duration_accepts(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("10", "not a valid duration"),
        ("0", "not a valid duration"),
        ("-1s", "must not be negative"),
        ("-1h30m", "must not be negative"),
        ("+", "not a valid duration"),
        ("s", "not a valid duration"),
        ("abc", "not a valid duration"),
        ("1y", "not a valid duration"),
        ("1d1", "not a valid duration"),
        ("1.2.3s", "not a valid duration"),
        ("1e3s", "not a valid duration"),
        ("1h-30m", "not a valid duration"),
        ("1 fortnight", "not a valid duration"),
        ("ten seconds", "not a valid duration"),
        ("1s;", "not a valid duration"),
        ("999999999d", "exceeds the maximum of 106751d"),
    ],
)
def test_parse_duration_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InvalidDurationError) as info:
        parse_duration(text, field="timeout")
    assert fragment in str(info.value)
    assert str(info.value).startswith("timeout")
    assert info.value.field == "timeout"
    assert isinstance(info.value, ValidationError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("30s", 30 * S),
        ("1m30s", 90 * S),
        ("1h0m0s", H),
        ("1.5s", 1500),
        ("500ms", 500),
        ("100us", 1),
        ("+2m", 2 * M),
    ],
)
def test_parse_go_duration_accepts(text: str, expected: int) -> None:
    assert parse_go_duration(text, field="batchEvents.timeout") == expected


@pytest.mark.parametrize(
    "text", ["1d", "1w", "2 hours", "10", "", "-5s", "1h 30m", "5 s", "1x", "00"]
)
def test_parse_go_duration_rejects(text: str) -> None:
    with pytest.raises(InvalidDurationError) as info:
        parse_go_duration(text, field="batchEvents.timeout")
    assert info.value.field == "batchEvents.timeout"
    assert "batchEvents.timeout" in str(info.value)


@pytest.mark.parametrize(
    ("ms", "expected"),
    [
        (0, "0s"),
        (1, "1ms"),
        (500, "500ms"),
        (1500, "1500ms"),
        (10 * S, "10s"),
        (90 * S, "90s"),
        (M, "1m"),
        (2 * H, "2h"),
        (90 * M, "90m"),
        (D, "1d"),
        (36 * H, "36h"),
        (W, "1w"),
        (14 * D, "2w"),
        (8 * D, "8d"),
    ],
)
def test_format_duration(ms: int, expected: str) -> None:
    assert format_duration(ms) == expected
    assert parse_duration(expected) == ms


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


@pytest.mark.parametrize("seconds", [1, 15, 60, 90, 3600, 5400, 86400, 604800, 1209600])
def test_format_duration_matches_python_sdk(seconds: int) -> None:
    transforms = importlib.import_module("inngest._internal.transforms")
    assert format_duration(seconds * S) == transforms.to_duration_str(seconds * S)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", NOW),
        ("2026-01-01T00:00:00.000Z", NOW),
        ("2026-01-01T00:00:00.123Z", NOW + 123),
        ("2026-01-01T00:00:00.123456789Z", NOW + 123),  # Go RFC3339Nano
        ("2026-01-01T00:00:00z", NOW),
        ("2026-01-01T00:00:00+00:00", NOW),
        ("2026-01-01T01:00:00+01:00", NOW),
        ("2025-12-31T19:00:00-05:00", NOW),
        ("2026-01-01T05:30:00+05:30", NOW),
        ("2026-01-01T00:00:00", NOW),  # naive is UTC
        ("2026-01-01 00:00:00", NOW),
        ("2026-01-01", NOW),
        ("  2026-01-01T00:00:00Z ", NOW),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59Z", -1000),
    ],
)
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text", ["", "yesterday", "10s", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "1767225600"]
)
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(InvalidDurationError) as info:
        parse_time(text, field="ts")
    assert info.value.field == "ts"
    assert str(info.value).startswith("ts ")


@pytest.mark.parametrize(
    ("op_name", "opts_duration", "expected"),
    [
        ("10s", None, NOW + 10 * S),
        ("wait-step", "1h", NOW + H),  # opts.duration wins over the op name
        ("1m", "", NOW + M),  # an empty opts.duration falls back to the name (v1/v2 JS SDKs)
        (None, "48 hours", NOW + 48 * H),
        ("1h30m", None, NOW + 90 * M),
        (None, None, NOW),  # Inngest treats an empty sleep as zero
        ("", "", NOW),
        ("0s", None, NOW),
        ("366d", None, NOW + MAX_SLEEP_MS),
        ("2026-01-02T00:00:00Z", None, NOW + D),
        ("2026-01-01T00:00:00.500Z", None, NOW + 500),
        ("wait", "2026-01-01T01:00:00+01:00", NOW),
        ("2025-06-01T00:00:00Z", None, NOW),  # in the past: wake immediately
        ("2026-01-02", None, NOW + D),  # a 10-char date is tried as a date
        ("2027-01-02T00:00:00Z", None, NOW + MAX_SLEEP_MS),
    ],
)
def test_sleep_target(op_name: str | None, opts_duration: str | None, expected: int) -> None:
    assert sleep_target(op_name, opts_duration, now_ms=NOW) == expected


@pytest.mark.parametrize(
    ("op_name", "opts_duration", "fragment"),
    [
        ("400d", None, "sleep duration '400d' exceeds the maximum of 366d"),
        (None, "367d", "sleep duration '367d' exceeds the maximum of 366d"),
        ("53w", None, "exceeds the maximum of 366d"),
        ("2027-01-02T00:00:01Z", None, "more than the maximum of 366d"),
        ("not-a-duration", None, "sleep duration 'not-a-duration' is not a valid duration"),
        ("-5s", None, "must not be negative"),
        ("wait", "soon", "sleep duration 'soon' is not a valid duration"),
    ],
)
def test_sleep_target_rejects(
    op_name: str | None, opts_duration: str | None, fragment: str
) -> None:
    with pytest.raises(InvalidDurationError) as info:
        sleep_target(op_name, opts_duration, now_ms=NOW)
    assert fragment in str(info.value)


def test_max_sleep_is_366_days() -> None:
    assert MAX_SLEEP_MS == 366 * D
    assert utc_ms(2027, 1, 2) - NOW == MAX_SLEEP_MS
