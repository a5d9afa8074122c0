"""Run search: the order and cursor every store shares, and the CEL filter on top.

Runs are listed newest first by ``(created_at, id)``. A cursor names the last run a page
held, so the next page starts strictly after it, whatever was created in between; it is
opaque to clients (base64url of ``<created_at>:<run id>``) and checked when it comes back.

``search_runs`` adds the ``if`` filter, a CEL expression over a run's triggering event.
No index can serve an arbitrary expression, so it is evaluated on the runs the store
returns, page by page, and the work is bounded: at most ``scan_budget`` runs are read per
request. The result says how many were read (``scanned``) and carries a cursor whenever
the budget ran out before the end, so a client can go on from where the scan stopped.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace

from ..errors import ValidationError
from . import expr
from .model import Run
from .ports import RunQuery, RunStore

MAX_LIMIT = 1000
"""Largest page a search returns."""
DEFAULT_SCAN_BUDGET = 1000
"""Runs a filtered search reads per request, at most."""
_MIN_SCAN_PAGE = 100


@dataclass(frozen=True, slots=True)
class SearchResult:
    runs: list[Run]
    cursor: str | None
    scanned: int
    """Runs read to answer: the page itself, plus those the ``if`` filter left out."""


def order_key(run: Run) -> tuple[int, str]:
    """Where ``run`` sorts (descending) in every search."""
    return (run.created_at, run.id)


def run_cursor(run: Run) -> str:
    """The cursor of a page whose last run is ``run``."""
    return cursor_at(run.created_at, run.id)


def cursor_at(created_at: int, run_id: str) -> str:
    """The cursor of a page whose last run was created at ``created_at`` with ``run_id``."""
    raw = f"{created_at}:{run_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_cursor(cursor: str) -> tuple[int, str]:
    """``(created_at, run_id)`` of a cursor; ``ValidationError`` (field ``cursor``) if it
    is not one this server made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
        created, _, run_id = raw.partition(":")
        created_at = int(created)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationError(
            f"cursor {cursor!r} is not a cursor returned by this API", field="cursor"
        ) from None
    if not run_id or created_at < 0:
        raise ValidationError(
            f"cursor {cursor!r} is not a cursor returned by this API", field="cursor"
        )
    return created_at, run_id


def validate_query(query: RunQuery) -> None:
    """Raise ``ValidationError`` naming the field of a query no store should run."""
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ValidationError(
            f"limit must be an integer from 1 to {MAX_LIMIT}, got {query.limit}", field="limit"
        )
    for name in ("since", "until"):
        value = getattr(query, name)
        if value is not None and value < 0:
            raise ValidationError(f"{name} must not be before 1970", field=name)
    if query.cursor is not None:
        parse_cursor(query.cursor)


def matches(query: RunQuery, run: Run) -> bool:
    """Whether ``run`` satisfies every filter of ``query`` except the cursor and limit.

    Stores check each run they return with it: an index read is eventually consistent
    and may list a run under a status it has just left.
    """
    return (
        (query.function_id is None or run.function_id == query.function_id)
        and (not query.statuses or run.status in query.statuses)
        and (query.since is None or run.created_at >= query.since)
        and (query.until is None or run.created_at < query.until)
        and (query.event_id is None or query.event_id in run.event_ids)
    )


def after_cursor(query: RunQuery, run: Run) -> bool:
    """Whether ``run`` sorts strictly after the query's cursor (True without one)."""
    if query.cursor is None:
        return True
    return order_key(run) < parse_cursor(query.cursor)


def search_runs(
    runs: RunStore, query: RunQuery, *, condition: str | None, scan_budget: int, now_ms: int
) -> SearchResult:
    """The page ``query`` asks for, keeping only runs whose trigger matches ``condition``.

    Without a condition this is one store call. With one, store pages are read until the
    page is full, the runs run out, or ``scan_budget`` runs have been read; the cursor
    then points just after the last run read, never past one that was not examined.
    """
    validate_query(query)
    if condition is not None:
        expr.validate(condition, field="if")
    if condition is None:
        page = runs.search_runs(query)
        return SearchResult(page.runs, page.cursor, scanned=len(page.runs))
    found: list[Run] = []
    scanned, cursor = 0, query.cursor
    while len(found) < query.limit and scanned < scan_budget:
        size = min(scan_budget - scanned, max(query.limit, _MIN_SCAN_PAGE), MAX_LIMIT)
        page = runs.search_runs(replace(query, limit=size, cursor=cursor))
        for index, run in enumerate(page.runs):
            scanned += 1
            trigger = run.events[0] if run.events else {}
            if expr.matches(condition, event=trigger, now_ms=now_ms):
                found.append(run)
            if len(found) == query.limit:
                last = index == len(page.runs) - 1
                cursor = page.cursor if last else run_cursor(run)
                return SearchResult(found, cursor, scanned)
        cursor = page.cursor
        if cursor is None:
            break
    return SearchResult(found, cursor, scanned)
