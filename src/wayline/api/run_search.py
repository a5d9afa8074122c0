"""``GET /v1/runs``: run search parameters parsed into a ``RunQuery``, each checked on its
own so that a 400 names the parameter that was wrong and what it accepts."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import QueryParams

from ..engine import expr, search
from ..engine.durations import parse_time
from ..engine.model import RunStatus
from ..engine.ports import RunQuery
from ..errors import ValidationError

PARAMETERS = ("function_id", "status", "since", "until", "event_id", "if", "limit", "cursor")
DEFAULT_LIMIT = 50
_STATUSES = {status.value.lower(): status for status in RunStatus}


def parse_run_search(params: QueryParams) -> tuple[RunQuery, str | None]:
    """The query and the ``if`` condition a request asks for; ``ValidationError`` whose
    ``field`` is the offending parameter otherwise. An empty parameter (``status=``, as an
    empty form field sends it) is no filter."""
    unknown = sorted(set(params.keys()) - set(PARAMETERS))
    if unknown:
        raise ValidationError(
            f"unknown parameter {unknown[0]!r}; accepted: {', '.join(PARAMETERS)}",
            field=unknown[0],
        )
    single = {name: _single(params, name) for name in PARAMETERS if name != "status"}
    condition = single["if"] or None
    if condition is not None:
        expr.validate(condition, field="if")
    query = RunQuery(
        function_id=single["function_id"] or None,
        statuses=_statuses(params.getlist("status")),
        since=_time(single, "since"),
        until=_time(single, "until"),
        event_id=single["event_id"] or None,
        limit=_limit(single["limit"]),
        cursor=single["cursor"] or None,
    )
    search.validate_query(query)
    return query, condition


def _single(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise ValidationError(f"parameter {name!r} is given {len(values)} times", field=name)
    return values[0].strip() if values else None


def _statuses(values: list[str]) -> tuple[RunStatus, ...]:
    """``status=Running,Failed`` and ``status=Running&status=Failed`` alike."""
    found: list[RunStatus] = []
    for value in (part.strip() for raw in values for part in raw.split(",")):
        if not value:
            continue  # ``status=`` from an empty form field: no filter
        status = _STATUSES.get(value.lower())
        if status is None:
            raise ValidationError(
                f"status {value!r} is not a run status; one of: "
                + ", ".join(s.value for s in RunStatus),
                field="status",
            )
        if status not in found:
            found.append(status)
    return tuple(found)


def _time(single: Mapping[str, str | None], name: str) -> int | None:
    """An ISO 8601 time (``2026-01-01T00:00:00Z``) or epoch milliseconds."""
    value = single[name]
    if not value:
        return None
    if value.isdigit():
        return int(value)
    return parse_time(value, field=name)


def _limit(value: str | None) -> int:
    if not value:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= search.MAX_LIMIT:
        raise ValidationError(
            f"limit must be an integer from 1 to {search.MAX_LIMIT}, got {value!r}", field="limit"
        )
    return limit
