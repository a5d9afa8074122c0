"""Cron triggers: parsing ``[TZ=Area/City ]<5 fields>`` and computing fire times in epoch ms.

Inngest parses crons with robfig/cron (5 standard fields plus ``@daily``-style descriptors and
a ``TZ=``/``CRON_TZ=`` prefix). Wayline evaluates them with croniter in the spec's zone.

DST policy (all instants are real UTC instants; only wall-clock matching is local):

* Spring forward: a wall time inside the gap does not exist. croniter fires it at the first
  valid instant after the gap (``30 2 * * *`` in New York fires at 03:00 EDT on the
  transition day), so a daily job is never skipped.
* Fall back: a wall time in the repeated hour exists twice. A job with a fixed hour field
  fires only at the first occurrence, so a daily job fires once. A job whose hour field is
  ``*`` (e.g. ``*/15 * * * *``) keeps its real-time cadence through the repeated hour, as
  Vixie cron does for wildcard jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from wayline.errors import InvalidCronError

_DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_FIELD_COUNT = 5
_FIELDS = (("minute", 60), ("hour", 24), ("day-of-month", 31), ("month", 12), ("day-of-week", 7))
"""Each field's name and how many values it has (the largest sensible step)."""
_MONTHS = ("", "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_TZ_PREFIXES = ("TZ=", "CRON_TZ=")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Fall-back skips at most an hour's worth of fires in a row (60 for a fixed-hour "* 1 * * *");
# the bound only guards against looping forever on a croniter surprise.
_MAX_SKIPS = 1000


@dataclass(frozen=True, slots=True)
class CronSpec:
    """A validated cron trigger: the expression without its prefix, and its IANA zone."""

    expression: str
    tz: str = "UTC"

    def __str__(self) -> str:
        return self.expression if self.tz == "UTC" else f"TZ={self.tz} {self.expression}"


def _split_tz(text: str, field: str) -> tuple[str, str]:
    for prefix in _TZ_PREFIXES:
        if text.startswith(prefix):
            zone, _, rest = text[len(prefix) :].partition(" ")
            return _checked_zone(zone, text, field), rest.strip()
    return "UTC", text


def _checked_zone(zone: str, text: str, field: str) -> str:
    if not zone:
        raise InvalidCronError(f"{field} '{text}' has an empty TZ= prefix", field=field)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError covers keys that name a directory (e.g. "America") rather than a zone file.
        raise InvalidCronError(
            f"{field} '{text}' names unknown time zone '{zone}' (expected e.g. 'Europe/Paris')",
            field=field,
        ) from None
    return zone


def _checked_expression(expr: str, text: str, field: str) -> str:
    if expr.startswith("@"):
        if expr.lower() not in _DESCRIPTORS:
            allowed = ", ".join(sorted(_DESCRIPTORS))
            raise InvalidCronError(
                f"{field} '{text}' uses unsupported descriptor '{expr}' (allowed: {allowed})",
                field=field,
            )
        return expr.lower()
    fields = expr.split()
    if len(fields) != _FIELD_COUNT:
        raise InvalidCronError(
            f"{field} '{text}' has {len(fields)} fields; expected exactly 5 "
            "(minute hour day-of-month month day-of-week)",
            field=field,
        )
    for position, value in enumerate(fields):
        _check_field(value, position, text, field)
    normalized = " ".join(fields)
    try:
        # Stepping once from a fixed instant also rejects specs that can never fire (Feb 30).
        croniter(normalized, _EPOCH).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidCronError(
            f"{field} '{text}' never fires: no calendar date matches it", field=field
        ) from None
    except (CroniterError, ValueError) as err:
        raise InvalidCronError(
            f"{field} '{text}' is not a valid cron: {err}", field=field
        ) from None
    return normalized


def _check_field(value: str, position: int, text: str, field: str) -> None:
    """What croniter lets through but robfig/cron refuses (and would fire wrongly): a range
    that runs backwards (``1-0`` silently becomes ``*``) and a step beyond the field."""
    name, span = _FIELDS[position]
    for item in value.split(","):
        base, _, step = item.partition("/")
        if step and (not step.isascii() or not step.isdigit() or not 1 <= int(step) <= span):
            raise InvalidCronError(
                f"{field} '{text}': {name} step '{step}' must be from 1 to {span}", field=field
            )
        low, dash, high = base.partition("-")
        start, end = _value(low, position), _value(high, position)
        if dash and start is not None and end is not None and start > end:
            raise InvalidCronError(
                f"{field} '{text}': {name} range '{base}' runs backwards (start after end)",
                field=field,
            )


def _value(text: str, position: int) -> int | None:
    """A field value as a number (month and weekday names too); None if it is not one."""
    if text.isascii() and text.isdigit():
        return int(text[:9])
    names = _MONTHS if position == 3 else _WEEKDAYS if position == 4 else ()
    upper = text.upper()
    return names.index(upper) if upper in names else None


def parse_cron(expr: str, *, field: str = "cron") -> CronSpec:
    """Validate ``[TZ=Zone |CRON_TZ=Zone ]<expression>`` and return its spec."""
    text = expr.strip()
    if not text:
        raise InvalidCronError(f"{field} must not be empty", field=field)
    zone, body = _split_tz(text, field)
    return CronSpec(expression=_checked_expression(body, text, field), tz=zone)


def _to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _is_repeat_of_wall_time(moment: datetime, zone: ZoneInfo) -> bool:
    """True if ``moment`` is the second occurrence of a wall time repeated at fall-back."""
    wall = moment.replace(tzinfo=None)
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    # In a gap the folds invert (fold=1 is the earlier instant), so this is only true in an
    # overlap, and only for its later instant.
    return _to_ms(first) < _to_ms(second) == _to_ms(moment)


def _fires(spec: CronSpec, after_ms: int) -> Iterator[int]:
    """Fire times strictly after ``after_ms``, in order, with the DST policy applied."""
    zone = ZoneInfo(spec.tz)
    start = (_EPOCH + timedelta(milliseconds=after_ms)).astimezone(zone)
    it = croniter(spec.expression, start)
    wildcard_hour = it.expanded[1] == ["*"]
    last = after_ms
    skipped = 0
    while skipped < _MAX_SKIPS:
        try:
            moment: datetime = it.get_next(datetime)
        except CroniterError:
            break  # only reachable for a hand-built CronSpec that parse_cron would reject
        fire = _to_ms(moment)
        # A gap-shifted fire can coincide with a real one; a repeated wall time is a duplicate.
        if fire <= last or (not wildcard_hour and _is_repeat_of_wall_time(moment, zone)):
            skipped += 1
            continue
        skipped = 0
        last = fire
        yield fire
    raise InvalidCronError(f"cron '{spec}' has no fire time after {after_ms}", field="cron")


def _spec(spec_or_expr: CronSpec | str) -> CronSpec:
    return spec_or_expr if isinstance(spec_or_expr, CronSpec) else parse_cron(spec_or_expr)


def next_fire(spec_or_expr: CronSpec | str, *, after_ms: int) -> int:
    """The first fire time strictly after ``after_ms``, as epoch ms."""
    return next(_fires(_spec(spec_or_expr), after_ms))


def fires_between(
    spec_or_expr: CronSpec | str, *, after_ms: int, until_ms: int, limit: int
) -> list[int]:
    """Fire times in ``(after_ms, until_ms]``, oldest first, at most ``limit`` of them.

    ``limit`` bounds catch-up work after downtime; the caller decides what to do with the rest.
    """
    result: list[int] = []
    if limit <= 0 or until_ms <= after_ms:
        return result
    for fire in _fires(_spec(spec_or_expr), after_ms):
        if fire > until_ms:
            break
        result.append(fire)
        if len(result) == limit:
            break
    return result
