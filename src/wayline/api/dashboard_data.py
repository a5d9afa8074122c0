"""What the dashboard reads: run search, event-form validation, app health probes.

The pages talk to the engine only through ``Service`` and its store ports, so the same code
serves ``wayline dev`` (SQLite) and ``wayline dashboard --stack`` (DynamoDB + S3).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import httpx
from starlette.datastructures import QueryParams

from ..engine import events as events_mod
from ..engine import json_input, search
from ..engine.events import EventInput
from ..engine.json_input import MAX_DEPTH
from ..engine.model import JSON, RunStatus
from ..engine.ports import RunQuery
from ..engine.search import SearchResult
from ..engine.service import Service
from ..errors import ValidationError
from .run_search import PARAMETERS, parse_run_search

PAGE_SIZE = 50
"""Events listed per page."""
WINDOWS_MS: Mapping[str, int] = {
    "15m": 15 * 60_000,
    "1h": 3_600_000,
    "24h": 86_400_000,
    "7d": 7 * 86_400_000,
}
"""The list's time filter: a shared link stays relative ("last 1 h"), not absolute."""

STATUSES = tuple(s.value for s in RunStatus)
PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class RunFilter:
    """The runs list's filters: ``GET /v1/runs``'s parameters, plus ``last`` (a relative
    window the page turns into ``since``, so a shared link stays "last 1 h")."""

    query: RunQuery = field(default_factory=RunQuery)
    condition: str | None = None
    last: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    """The filter parameters as given (without the cursor): for links and the form."""

    @property
    def function_id(self) -> str | None:
        return self.query.function_id

    @property
    def status(self) -> str | None:
        return self.query.statuses[0].value if len(self.query.statuses) == 1 else None

    @property
    def active(self) -> bool:
        return bool(self.params)

    def describe(self) -> str:
        return ", ".join(
            f"last {value}" if name == "last" else f"{name} = {value}"
            for name, value in self.params.items()
        )


FILTER_PARAMETERS = (*PARAMETERS, "last")
PAGE_PARAMETERS = frozenset({"fragment", "step"})
"""Parameters of the page itself, not filters."""


def parse_filter(params: QueryParams, *, now: int) -> RunFilter:
    """Filters from the query string, checked exactly as ``GET /v1/runs`` checks them (a
    ``ValidationError`` naming the parameter); empty values count as not given."""
    given = [(k, v) for k, v in params.multi_items() if v.strip() and k not in PAGE_PARAMETERS]
    last = next((v for k, v in given if k == "last"), None)
    if last is not None and last not in WINDOWS_MS:
        raise ValidationError(
            f"last must be one of {', '.join(WINDOWS_MS)}; got {last!r}", field="last"
        )
    query, condition = parse_run_search(QueryParams([(k, v) for k, v in given if k != "last"]))
    if last is not None and query.since is None:
        query = replace(query, since=now - WINDOWS_MS[last])
    shown = {k: v for k, v in given if k not in ("cursor", "limit")}
    return RunFilter(query=query, condition=condition, last=last, params=shown)


def find_runs(service: Service, query: RunFilter) -> SearchResult:
    """Newest runs matching ``query``: the ONE place the pages search runs (the run search
    API, so the list and ``GET /v1/runs`` always agree)."""
    return service.search_runs(query.query, query.condition, search.DEFAULT_SCAN_BUDGET)


# ----------------------------------------------------------------------------- event form


@dataclass(frozen=True, slots=True)
class FormErrors:
    name: str | None = None
    data: str | None = None

    def __bool__(self) -> bool:
        return bool(self.name or self.data)


def parse_event_form(name: str, data_text: str) -> tuple[EventInput | None, FormErrors]:
    """The send-event form: a name and a JSON object, validated with the event API's rules.

    JSON syntax errors say where ("Line 3, column 18: ..."), as the editor shows them inline.
    """
    name = name.strip()
    if not name:
        return None, FormErrors(name="name is required, e.g. app/user.created")
    try:
        data: JSON = json.loads(data_text or "{}")
        json_input.check(data, path="data")
    except json.JSONDecodeError as exc:
        return None, FormErrors(data=f"Line {exc.lineno}, column {exc.colno}: {exc.msg}")
    except RecursionError:
        return None, FormErrors(data=f"data is nested too deeply; the limit is {MAX_DEPTH}")
    except ValidationError as exc:
        return None, FormErrors(data=str(exc))
    if not isinstance(data, dict):
        return None, FormErrors(data='data must be a JSON object, e.g. {"user_id": "u1"}')
    try:
        [event] = events_mod.parse_request(json.dumps({"name": name, "data": data}).encode())
    except ValidationError as exc:
        field = "name" if "name" in str(exc) else "data"
        return None, FormErrors(**{field: str(exc)})
    return event, FormErrors()


# ----------------------------------------------------------------------------- app health


def redact_url(url: str) -> str:
    """Scheme, host, port and path: no ``user:password@``, no query (it may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True, slots=True)
class Health:
    url: str
    """Redacted: never shows URL credentials."""
    ok: bool
    detail: str


async def probe(url: str) -> Health:
    """GET the app's serve URL (what an SDK answers with its introspection)."""
    shown = redact_url(url)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, follow_redirects=False) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return Health(shown, False, f"cannot reach app at {shown}: {reason}")
    took = int((time.monotonic() - started) * 1000)
    if response.status_code >= 400:
        return Health(shown, False, f"HTTP {response.status_code} after {took} ms")
    return Health(shown, True, f"HTTP {response.status_code} in {took} ms")
