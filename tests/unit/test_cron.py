from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wayline.engine.cron import CronSpec, fires_between, next_fire, parse_cron
from wayline.errors import InvalidCronError, ValidationError

NY = "America/New_York"
PARIS = "Europe/Paris"


def at(text: str) -> int:
    """Epoch ms of an ISO time with an explicit offset (no local-zone guessing in tests)."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def local(ms: int, tz: str) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(tz)).isoformat()


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("* * * * *", CronSpec("* * * * *")),
        ("*/1 * * * *", CronSpec("*/1 * * * *")),
        ("0 9 * * MON-FRI", CronSpec("0 9 * * MON-FRI")),
        ("  0   9 * *  * ", CronSpec("0 9 * * *")),
        ("TZ=Europe/Paris 0 9 * * *", CronSpec("0 9 * * *", PARIS)),
        ("CRON_TZ=America/New_York 30 2 * * *", CronSpec("30 2 * * *", NY)),
        ("TZ=UTC 0 0 1 * *", CronSpec("0 0 1 * *", "UTC")),
        ("TZ=Etc/GMT+5 0 0 * * *", CronSpec("0 0 * * *", "Etc/GMT+5")),
        ("@daily", CronSpec("@daily")),
        ("@HOURLY", CronSpec("@hourly")),
        ("@midnight", CronSpec("@midnight")),
        ("@yearly", CronSpec("@yearly")),
        ("@annually", CronSpec("@annually")),
        ("@monthly", CronSpec("@monthly")),
        ("@weekly", CronSpec("@weekly")),
        ("TZ=Asia/Tokyo @daily", CronSpec("@daily", "Asia/Tokyo")),
        ("0 0 29 2 *", CronSpec("0 0 29 2 *")),
        ("0 0 ? * *", CronSpec("0 0 ? * *")),
    ],
)
def test_parse_cron_accepts(expr: str, expected: CronSpec) -> None:
    assert parse_cron(expr) == expected


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("* * * *", "has 4 fields; expected exactly 5"),
        ("* * * * * *", "has 6 fields; expected exactly 5"),
        ("0 * * * * * 2026", "has 7 fields"),
        ("bad", "has 1 fields"),
        ("61 * * * *", "not a valid cron"),
        ("* 24 * * *", "not a valid cron"),
        ("* * 32 * *", "not a valid cron"),
        ("* * * 13 *", "not a valid cron"),
        ("* * * * FOO", "not a valid cron"),
        ("H * * * *", "not a valid cron"),
        ("0 0 30 2 *", "never fires"),
        ("@reboot", "unsupported descriptor '@reboot'"),
        ("@every 1h", "unsupported descriptor '@every 1h'"),
        ("TZ=Mars/Olympus 0 9 * * *", "unknown time zone 'Mars/Olympus'"),
        ("TZ=America 0 9 * * *", "unknown time zone 'America'"),
        ("TZ=../etc/passwd 0 9 * * *", "unknown time zone '../etc/passwd'"),
        ("TZ=utc 0 9 * * *", "unknown time zone 'utc'"),
        ("TZ= 0 9 * * *", "empty TZ= prefix"),
        ("TZ=Europe/Paris", "has 0 fields"),
        # issue 12: croniter reads these silently as something else
        ("1-0 * * * *", "minute range '1-0' runs backwards"),
        ("0 9 * * FRI-MON", "day-of-week range 'FRI-MON' runs backwards"),
        ("0 0 1 DEC-JAN *", "month range 'DEC-JAN' runs backwards"),
        ("*/99999999999999 * * * *", "minute step '99999999999999' must be from 1 to 60"),
        ("0 */25 * * *", "hour step '25' must be from 1 to 24"),
        ("0 0 1-5/0 * *", "step '0' must be from 1 to 31"),
    ],
)
def test_parse_cron_rejects(expr: str, fragment: str) -> None:
    with pytest.raises(InvalidCronError) as info:
        parse_cron(expr, field="triggers[0].cron")
    message = str(info.value)
    assert fragment in message
    assert message.startswith("triggers[0].cron")
    assert info.value.field == "triggers[0].cron"
    assert isinstance(info.value, ValidationError)


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (CronSpec("0 9 * * *"), "0 9 * * *"),
        (CronSpec("0 9 * * *", PARIS), "TZ=Europe/Paris 0 9 * * *"),
    ],
)
def test_spec_str_round_trips(spec: CronSpec, text: str) -> None:
    assert str(spec) == text
    assert parse_cron(str(spec)) == spec


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/1 * * * *", "2026-01-01T12:00:00+00:00", "2026-01-01T12:01:00+00:00"),
        ("*/1 * * * *", "2026-01-01T12:00:00.001+00:00", "2026-01-01T12:01:00+00:00"),
        ("*/1 * * * *", "2026-01-01T11:59:59.999+00:00", "2026-01-01T12:00:00+00:00"),
        ("* * * * *", "2026-12-31T23:59:30+00:00", "2027-01-01T00:00:00+00:00"),
        ("*/15 * * * *", "2026-01-01T12:07:00+00:00", "2026-01-01T12:15:00+00:00"),
        ("0 9 * * *", "2026-01-01T09:00:00+00:00", "2026-01-02T09:00:00+00:00"),
        ("0 9 * * MON-FRI", "2026-01-02T10:00:00+00:00", "2026-01-05T09:00:00+00:00"),
        ("@daily", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"),
        ("@hourly", "2026-01-01T00:30:00+00:00", "2026-01-01T01:00:00+00:00"),
        ("@weekly", "2026-01-01T00:00:00+00:00", "2026-01-04T00:00:00+00:00"),
        ("0 0 29 2 *", "2026-01-01T00:00:00+00:00", "2028-02-29T00:00:00+00:00"),
        # Paris is UTC+1 in winter, UTC+2 in summer.
        ("TZ=Europe/Paris 0 9 * * *", "2026-01-15T12:00:00+00:00", "2026-01-16T09:00:00+01:00"),
        ("TZ=Europe/Paris 0 9 * * *", "2026-01-16T07:59:59+00:00", "2026-01-16T09:00:00+01:00"),
        ("TZ=Europe/Paris 0 9 * * *", "2026-07-01T12:00:00+00:00", "2026-07-02T09:00:00+02:00"),
        ("TZ=Europe/Paris 0 9 * * *", "2026-03-28T12:00:00+01:00", "2026-03-29T09:00:00+02:00"),
        ("TZ=Europe/Paris 0 9 * * *", "2026-10-24T12:00:00+02:00", "2026-10-25T09:00:00+01:00"),
        ("TZ=Asia/Kolkata 0 0 * * *", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+05:30"),
    ],
)
def test_next_fire(expr: str, after: str, expected: str) -> None:
    assert next_fire(expr, after_ms=at(after)) == at(expected)
    assert next_fire(parse_cron(expr), after_ms=at(after)) == at(expected)


def test_next_fire_is_strictly_after() -> None:
    fire = next_fire("0 * * * *", after_ms=at("2026-01-01T00:00:00+00:00"))
    assert fire == at("2026-01-01T01:00:00+00:00")
    assert next_fire("0 * * * *", after_ms=fire) == at("2026-01-01T02:00:00+00:00")


def test_next_fire_validates_string_specs() -> None:
    with pytest.raises(InvalidCronError, match="has 6 fields"):
        next_fire("* * * * * *", after_ms=0)


# DST: New York springs forward at 2026-03-08 02:00 EST -> 03:00 EDT and falls back at
# 2026-11-01 02:00 EDT -> 01:00 EST.
@pytest.mark.parametrize(
    ("expr", "after", "until", "expected"),
    [
        pytest.param(
            "TZ=America/New_York 30 2 * * *",
            "2026-03-06T12:00:00-05:00",
            "2026-03-10T12:00:00-04:00",
            [
                "2026-03-07T02:30:00-05:00",
                "2026-03-08T03:00:00-04:00",  # 02:30 does not exist: first instant after the gap
                "2026-03-09T02:30:00-04:00",
                "2026-03-10T02:30:00-04:00",
            ],
            id="spring-forward-daily-in-gap",
        ),
        pytest.param(
            "TZ=America/New_York 30 2 8 3 *",
            "2026-03-01T00:00:00-05:00",
            "2026-12-31T00:00:00-05:00",
            ["2026-03-08T03:00:00-04:00"],
            id="spring-forward-one-shot-not-skipped",
        ),
        pytest.param(
            "TZ=America/New_York */30 * * * *",
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T04:00:00-04:00",
            [
                "2026-03-08T01:30:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:30:00-04:00",
                "2026-03-08T04:00:00-04:00",
            ],
            id="spring-forward-interval",
        ),
        pytest.param(
            "TZ=America/New_York 30 1 * * *",
            "2026-10-30T12:00:00-04:00",
            "2026-11-03T12:00:00-05:00",
            [
                "2026-10-31T01:30:00-04:00",
                "2026-11-01T01:30:00-04:00",  # once, at the first 01:30; not again at EST
                "2026-11-02T01:30:00-05:00",
                "2026-11-03T01:30:00-05:00",
            ],
            id="fall-back-daily-once",
        ),
        pytest.param(
            "TZ=America/New_York 30 1 * * *",
            "2026-11-01T01:10:00-05:00",  # already inside the repeated hour
            "2026-11-02T12:00:00-05:00",
            ["2026-11-02T01:30:00-05:00"],
            id="fall-back-daily-from-inside-repeat",
        ),
        pytest.param(
            "TZ=America/New_York 0,30 1 * * *",
            "2026-11-01T00:00:00-04:00",
            "2026-11-01T03:00:00-05:00",
            ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00"],
            id="fall-back-fixed-hour-each-wall-time-once",
        ),
        pytest.param(
            "TZ=America/New_York */30 * * * *",
            "2026-11-01T00:00:00-04:00",
            "2026-11-01T02:30:00-05:00",
            [
                "2026-11-01T00:30:00-04:00",
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",  # wildcard hour keeps real-time cadence
                "2026-11-01T01:30:00-05:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:30:00-05:00",
            ],
            id="fall-back-interval-keeps-cadence",
        ),
        pytest.param(
            "TZ=Europe/Paris 30 2 * * *",
            "2026-03-28T12:00:00+01:00",
            "2026-03-30T12:00:00+02:00",
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
            id="paris-spring-forward",
        ),
        pytest.param(
            "TZ=Europe/Paris 30 2 * * *",
            "2026-10-24T12:00:00+02:00",
            "2026-10-26T12:00:00+01:00",
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
            id="paris-fall-back-once",
        ),
    ],
)
def test_dst_policy(expr: str, after: str, until: str, expected: list[str]) -> None:
    fires = fires_between(expr, after_ms=at(after), until_ms=at(until), limit=100)
    assert fires == [at(text) for text in expected]
    tz = parse_cron(expr).tz
    assert [local(ms, tz) for ms in fires] == expected


@pytest.mark.parametrize(
    ("after", "until", "limit", "expected"),
    [
        ("12:00:00", "12:05:00", 10, ["12:01", "12:02", "12:03", "12:04", "12:05"]),
        ("12:00:00", "12:05:00", 2, ["12:01", "12:02"]),
        ("12:00:30", "12:03:00", 10, ["12:01", "12:02", "12:03"]),
        ("12:00:00", "12:00:59", 10, []),
        ("12:00:00", "12:00:00", 10, []),
        ("12:05:00", "12:00:00", 10, []),
        ("12:00:00", "12:05:00", 0, []),
        ("12:00:00", "12:05:00", -1, []),
    ],
)
def test_fires_between(after: str, until: str, limit: int, expected: list[str]) -> None:
    day = "2026-01-01T"
    fires = fires_between(
        "*/1 * * * *",
        after_ms=at(f"{day}{after}+00:00"),
        until_ms=at(f"{day}{until}+00:00"),
        limit=limit,
    )
    assert fires == [at(f"{day}{hhmm}:00+00:00") for hhmm in expected]


def test_fires_between_large_limit_is_not_truncated() -> None:
    fires = fires_between(
        "* * * * *",
        after_ms=at("2026-01-01T00:00:00+00:00"),
        until_ms=at("2026-01-02T00:00:00+00:00"),
        limit=5000,
    )
    assert len(fires) == 1440
    assert all(b - a == 60_000 for a, b in itertools.pairwise(fires))


def test_fall_back_day_has_one_fire_per_wall_minute_for_fixed_hour() -> None:
    fires = fires_between(
        "TZ=America/New_York * 1 * * *",
        after_ms=at("2026-11-01T00:00:00-04:00"),
        until_ms=at("2026-11-01T03:00:00-05:00"),
        limit=1000,
    )
    assert len(fires) == 60
    assert local(fires[-1], NY) == "2026-11-01T01:59:00-04:00"
