"""What the dashboard reads: run search, event-form validation, app health probes.

The pages talk to the engine only through ``Service`` and its store ports, so the same code
serves ``wayline dev`` (SQLite) and ``wayline dashboard --stack`` (DynamoDB + S3).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ..engine import events as events_mod
from ..engine.events import EventInput
from ..engine.model import JSON, Run, RunStatus
from ..engine.service import Service
from ..errors import ValidationError

PAGE_SIZE = 50
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
    function_id: str | None = None
    status: str | None = None
    last: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.function_id or self.status or self.last)

    def describe(self) -> str:
        parts = [
            f"function = {self.function_id}" if self.function_id else "",
            f"status = {self.status}" if self.status else "",
            f"last {self.last}" if self.last else "",
        ]
        return ", ".join(p for p in parts if p)


def parse_filter(params: Mapping[str, str]) -> RunFilter:
    """Filters from the query string; unknown values are a ``ValidationError`` naming them."""
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise ValidationError(
            f"status must be one of {', '.join(STATUSES)}; got {status!r}", field="status"
        )
    last = params.get("last") or None
    if last is not None and last not in WINDOWS_MS:
        raise ValidationError(
            f"last must be one of {', '.join(WINDOWS_MS)}; got {last!r}", field="last"
        )
    return RunFilter(function_id=params.get("function_id") or None, status=status, last=last)


def find_runs(service: Service, query: RunFilter, *, now: int, limit: int = PAGE_SIZE) -> list[Run]:
    """Newest runs matching ``query``: the ONE place the pages search runs.

    Until the run search API lands this reads ``list_runs`` (newest first, by function) and
    filters status and time here, over a bounded window of recent runs.
    """
    since = now - WINDOWS_MS[query.last] if query.last else None
    candidates = service.store.runs.list_runs(function_id=query.function_id, limit=limit * 10)
    found = [
        run
        for run in candidates
        if (query.status is None or run.status.value == query.status)
        and (since is None or run.created_at >= since)
    ]
    return found[:limit]


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
    except json.JSONDecodeError as exc:
        return None, FormErrors(data=f"Line {exc.lineno}, column {exc.colno}: {exc.msg}")
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
