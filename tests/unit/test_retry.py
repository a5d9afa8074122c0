from __future__ import annotations

import datetime as dt
import importlib

import pytest

from wayline.engine.retry import (
    BACKOFF_TABLE_MS,
    DEFAULT_RETRIES,
    MAX_JITTER_MS,
    MAX_RETRIES,
    backoff_ms,
    parse_retry_after,
)

S = 1_000
M = 60 * S
H = 60 * M
NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_constants() -> None:
    assert DEFAULT_RETRIES == 4
    assert MAX_RETRIES == 20
    assert MAX_JITTER_MS == 30 * S
    assert BACKOFF_TABLE_MS == (
        15 * S,
        30 * S,
        1 * M,
        2 * M,
        5 * M,
        10 * M,
        20 * M,
        40 * M,
        1 * H,
        2 * H,
    )


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [
        (0, 0, 15 * S),
        (1, 0, 30 * S),
        (2, 0, 1 * M),
        (3, 0, 2 * M),
        (4, 0, 5 * M),
        (5, 0, 10 * M),
        (6, 0, 20 * M),
        (7, 0, 40 * M),
        (8, 0, 1 * H),
        (9, 0, 2 * H),
        (10, 0, 2 * H),  # capped at the last entry
        (19, 0, 2 * H),
        (1000, 0, 2 * H),
        (0, 1, 15 * S + 1),
        (0, 29_999, 45 * S - 1),
        (9, 12_345, 2 * H + 12_345),
    ],
)
def test_backoff_ms(attempt: int, jitter: int, expected: int) -> None:
    assert backoff_ms(attempt, jitter_ms=jitter) == expected


@pytest.mark.parametrize(
    ("attempt", "jitter", "fixed", "expected"),
    [
        (0, 0, 0, 0),
        (0, 29_999, 1_000, 1_000),  # the fixed interval ignores jitter
        (9, 5_000, 250, 250),
        (1000, 0, 5 * S, 5 * S),
        (3, 40_000, 100, 100),  # jitter is not validated: it is not used
    ],
)
def test_backoff_fixed_interval(attempt: int, jitter: int, fixed: int, expected: int) -> None:
    assert backoff_ms(attempt, jitter_ms=jitter, fixed_interval_ms=fixed) == expected


@pytest.mark.parametrize(
    ("attempt", "jitter", "fixed", "fragment"),
    [
        (-1, 0, None, "attempt must be >= 0"),
        (0, -1, None, "jitter_ms must be in [0, 30000)"),
        (0, 30_000, None, "jitter_ms must be in [0, 30000)"),
        (0, 0, -1, "fixed_interval_ms must be >= 0"),
    ],
)
def test_backoff_rejects_bad_arguments(
    attempt: int, jitter: int, fixed: int | None, fragment: str
) -> None:
    with pytest.raises(ValueError) as info:
        backoff_ms(attempt, jitter_ms=jitter, fixed_interval_ms=fixed)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("abc", None),
        ("1.5", None),
        ("-5", None),
        ("\uff11\uff12", None),  # non-ASCII digits are not delta-seconds
        ("10 seconds", None),
        ("120", 120 * S),
        (" 120 ", 120 * S),
        ("1", 1 * S),
        ("0", 1 * S),  # clamped up to 1s
        ("86400", 24 * H),
        ("86401", 24 * H),  # clamped down to 24h
        ("9" * 5000, 24 * H),
        # HTTP-date: IMF-fixdate, obsolete RFC 850 and asctime forms (RFC 7231 7.1.1.1).
        ("Thu, 01 Jan 2026 00:01:00 GMT", 1 * M),
        ("Thursday, 01-Jan-26 00:01:00 GMT", 1 * M),
        ("Thu Jan  1 00:01:00 2026", 1 * M),
        ("Thu, 01 Jan 2026 01:01:00 +0100", 1 * M),
        ("Wed, 31 Dec 2025 23:00:00 GMT", 1 * S),  # in the past
        ("Sat, 03 Jan 2026 00:00:00 GMT", 24 * H),
        ("Thu, 01 Jan 2026 25:61:00 GMT", None),
        # ISO-8601, as the Python SDK's RetryAfterError sends it.
        ("2026-01-01T00:00:30.000Z", 30 * S),
        ("2026-01-01T00:00:00.500Z", 1 * S),
        ("2026-01-01T02:00:00+01:00", 1 * H),
        ("2026-01-01T00:05:00", 5 * M),
        ("2025-12-31T00:00:00Z", 1 * S),
        ("2026-01-03T00:00:00Z", 24 * H),
    ],
)
def test_parse_retry_after(value: str | None, expected: int | None) -> None:
    assert parse_retry_after(value, now_ms=NOW) == expected


@pytest.mark.parametrize("delta", [dt.timedelta(seconds=30), dt.timedelta(hours=3)])
def test_parse_retry_after_reads_python_sdk_header(delta: dt.timedelta) -> None:
    transforms = importlib.import_module("inngest._internal.transforms")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    header = transforms.to_iso_utc(now + delta)
    assert parse_retry_after(header, now_ms=NOW) == delta // dt.timedelta(milliseconds=1)
