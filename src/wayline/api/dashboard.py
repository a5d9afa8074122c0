"""The dashboard: server-rendered pages over the engine service (runs, a run's waterfall,
events and the send-event form, functions, apps).

Every page is complete HTML from Jinja2 (``curl`` and tests see the content); a small
plain-JS file only refreshes marked regions (``data-poll``) while something is live.

Local use only, and it acts with the server's own rights, so:

* requests whose ``Host`` is not a loopback name are refused (DNS rebinding);
* actions are POSTs that must come from the dashboard's own origin (``Origin`` /
  ``Sec-Fetch-Site``), so another site cannot make the browser cancel a run;
* pages never contain the signing key or event keys: they read the store server-side and
  need no key; ``read_only`` (``wayline dashboard --stack``) renders no action at all;
* a CSP of ``default-src 'self'``: no inline script, all payloads escaped by Jinja.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..engine.model import FunctionDef, Run, RunStatus, StepRecord
from ..engine.search import SearchResult
from ..engine.service import Service
from ..errors import StoreError, ValidationError
from ..trace import build_trace, error_view
from . import dashboard_data as data
from . import dashboard_format as fmt
from .dashboard_actions import DashboardActions

log = logging.getLogger("wayline.dashboard")

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
MAX_FORM_BYTES = 4 * 1024 * 1024
"""An urlencoded send-event form; the event itself is then held to the event API's limits."""
EXAMPLE_DATA = '{\n  "user_id": "u1"\n}'

Page = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    store_label: str = "dev · sqlite"
    """Where the data comes from, shown in the header (``aws · stack NAME · region``)."""
    read_only: bool = False
    """No Cancel, no send-event form (``--stack``: the stack's queues are not reachable)."""
    allowed_hosts: frozenset[str] | None = LOOPBACK_HOSTS
    """``Host`` names served; None serves any (``wayline dev --host 0.0.0.0``)."""
    app_urls: tuple[str, ...] = ()
    """App URLs the server was told about (``-u``), listed even before they sync."""
    probe_apps: bool = True


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("wayline.api", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        absolute=fmt.absolute,
        clock=fmt.clock,
        iso=fmt.iso,
        duration=fmt.duration,
        pretty=fmt.pretty_json,
        size=fmt.size,
        error_view=error_view,
        short=lambda value: str(value)[-10:],
    )
    env.globals.update(
        status_icons=fmt.STATUS_ICONS, kind_icons=fmt.KIND_ICONS, is_redrive=data.is_redrive
    )
    return env


class Dashboard:
    def __init__(self, service: Service, config: DashboardConfig) -> None:
        self._service = service
        self._config = config
        self._env = _environment()
        self._actions = DashboardActions(service, self, read_only=config.read_only)

    # ------------------------------------------------------------ plumbing

    def _render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        now = self._service.now()
        html = self._env.get_template(template).render(
            request=request,
            now=now,
            rel=lambda ms: fmt.relative(ms, now),
            config=self._config,
            nav=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)

    def _guard(self, page: Page, *, action: bool = False) -> Page:
        allowed = self._config.allowed_hosts

        async def guarded(request: Request) -> Response:
            if allowed is not None and _host_name(request) not in allowed:
                return HTMLResponse("dashboard is served on loopback names only", 403)
            if action and not _same_origin(request):
                return HTMLResponse("cross-origin request refused", 403)
            try:
                return await page(request)
            except StoreError as exc:  # e.g. expired AWS credentials, a missing table
                log.warning("dashboard could not read the store: %s", exc)
                return self._render(request, "store_error.html", 503, problem=str(exc))

        return guarded

    # ------------------------------------------------------------ runs

    async def runs(self, request: Request) -> Response:
        now = self._service.now()
        try:
            query = data.parse_filter(request.query_params, now=now)
            found = data.find_runs(self._service, query)
        except ValidationError as exc:
            return self._runs_page(request, data.RunFilter(), None, str(exc), status=400)
        return self._runs_page(request, query, found, None)

    def _runs_page(
        self,
        request: Request,
        query: data.RunFilter,
        found: SearchResult | None,
        filter_error: str | None,
        status: int = 200,
    ) -> Response:
        runs = found.runs if found else []
        params = dict(request.query_params)
        fragment = request.query_params.get("fragment") and filter_error is None
        older = (
            "/runs?" + urlencode({**query.params, "cursor": found.cursor})
            if found and found.cursor
            else None
        )
        return self._render(
            request,
            "_run_rows.html" if fragment else "runs.html",
            status,
            runs=runs,
            traces={r.id: build_trace(r) for r in runs},
            query=query,
            found=found,
            paged=bool(params.get("cursor")),
            older_url=older,
            filter_error=filter_error,
            functions=self._functions(),
            windows=list(data.WINDOWS_MS),
            statuses=data.STATUSES,
            # Live rows only on the first page: a later page would shift under the reader.
            live_url=None if params.get("cursor") else _with_fragment(request, "rows"),
            clear_url="/runs",
            has_apps=bool(self._service.store.apps.list_apps()),
        )

    async def run(self, request: Request) -> Response:
        return self.run_page(request, request.path_params["run_id"])

    def run_page(
        self, request: Request, run_id: str, *, status: int = 200, action_error: str | None = None
    ) -> Response:
        """The run's page; ``action_error`` says why an action on it was refused."""
        run = self._service.store.runs.get_run(run_id)
        if run is None:
            return self.not_found(request, "run", run_id)
        trace = build_trace(run)
        selected = _selected_step(run, request.query_params.get("step"))
        template = "_run_body.html" if request.query_params.get("fragment") else "run.html"
        function = self._service.store.apps.get_function(run.function_id)
        return self._render(
            request,
            template,
            status,
            run=run,
            trace=trace,
            waterfall=fmt.waterfall(trace, self._service.now()),
            selected=selected,
            failed_at=_failed_at(run),
            events=run.events,
            function=function,
            lineage=data.lineage(self._service, run, function),
            paused_since=self._paused_since(run.function_id),
            action_error=action_error,
            # A refused action renders at its POST path: poll the run's own page.
            live_url=f"/runs/{run.id}?" + urlencode({**_step_param(request), "fragment": "body"}),
        )

    def not_found(self, request: Request, what: str, ident: str) -> Response:
        return self._render(request, "not_found.html", 404, what=what, ident=ident)

    def _paused_since(self, function_id: str) -> int | None:
        return self._service.pauses.paused_since(function_id, now=self._service.now())

    async def cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if self._config.read_only:
            return HTMLResponse("this dashboard is read-only", 405)
        self._service.cancel(run_id, reason="cancelled from the dashboard")
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    # ------------------------------------------------------------ events

    async def events(self, request: Request) -> Response:
        sent = [
            i
            for i in request.query_params.getlist("sent")[:10]
            if self._service.store.events.get_event(i) is not None
        ]
        name = request.query_params.get("name") or ""
        return self._events_page(request, name=name, data_text=EXAMPLE_DATA, sent=sent)

    def _events_page(
        self,
        request: Request,
        *,
        name: str,
        data_text: str,
        errors: data.FormErrors | None = None,
        sent: list[str] | None = None,
        status: int = 200,
    ) -> Response:
        found = self._service.store.events.list_events(limit=data.PAGE_SIZE)
        runs = {
            e.internal_id: self._service.store.runs.list_runs(event_id=e.internal_id) for e in found
        }
        fragment = request.method == "GET" and request.query_params.get("fragment")
        return self._render(
            request,
            "_event_rows.html" if fragment else "events.html",
            status,
            events=found,
            runs_by_event=runs,
            form_name=name,
            form_data=data_text,
            errors=errors or data.FormErrors(),
            sent=sent or [],
            trigger_names=sorted(
                {t.event for f in self._functions() for t in f.triggers if t.event}
            ),
        )

    async def send_event(self, request: Request) -> Response:
        if self._config.read_only:
            return HTMLResponse("this dashboard is read-only", 405)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return HTMLResponse(f"form body over {MAX_FORM_BYTES} bytes", 413)
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        name, text = (form.get("name") or [""])[0], (form.get("data") or [""])[0]
        event, errors = data.parse_event_form(name, text)
        if event is None:
            return self._events_page(request, name=name, data_text=text, errors=errors, status=400)
        ids = self._service.send_events([event])
        # Post/redirect/get: a reload shows the result again instead of sending again.
        query = urlencode([("name", name), *(("sent", i) for i in ids)])
        return RedirectResponse(f"/events?{query}#send", status_code=303)

    async def event(self, request: Request) -> Response:
        event_id = request.path_params["event_id"]
        event = self._service.store.events.get_event(event_id)
        if event is None:
            return self.not_found(request, "event", event_id)
        runs = self._service.store.runs.list_runs(event_id=event_id)
        template = "_event_runs.html" if request.query_params.get("fragment") else "event.html"
        return self._render(
            request,
            template,
            event=event,
            runs=runs,
            live_url=_with_fragment(request, "runs"),
        )

    # ------------------------------------------------------------ functions, apps

    def _functions(self) -> list[FunctionDef]:
        return sorted(self._service.store.apps.list_functions(), key=lambda f: f.id)

    async def functions(self, request: Request) -> Response:
        return self.functions_page(request)

    def functions_page(
        self, request: Request, *, status: int = 200, action_error: str | None = None
    ) -> Response:
        functions = self._functions()
        return self._render(
            request,
            "functions.html",
            status,
            functions=functions,
            paused={f.id: self._paused_since(f.id) for f in functions},
            action_error=action_error,
        )

    async def apps(self, request: Request) -> Response:
        apps = self._service.store.apps.list_apps()
        functions = self._functions()
        urls = [a.url for a in apps] + [
            u for u in self._config.app_urls if u not in {a.url for a in apps}
        ]
        health: Mapping[str, data.Health] = {}
        if self._config.probe_apps and urls:
            results = await asyncio.gather(*(data.probe(u) for u in urls))
            health = dict(zip(urls, results, strict=True))
        return self._render(
            request,
            "apps.html",
            apps=apps,
            unsynced=[u for u in urls if u not in {a.url for a in apps}],
            functions_by_app={a.id: [f for f in functions if f.app_id == a.id] for a in apps},
            health=health,
            redact=data.redact_url,
        )

    async def home(self, request: Request) -> Response:
        return await self.runs(request)

    def routes(self) -> list[BaseRoute]:
        g = self._guard
        static = StaticFiles(directory=str(Path(__file__).with_name("static")))
        return [
            Route("/", g(self.home), methods=["GET"]),
            Route("/runs", g(self.runs), methods=["GET"]),
            Route("/runs/{run_id}", g(self.run), methods=["GET"]),
            Route("/runs/{run_id}/cancel", g(self.cancel, action=True), methods=["POST"]),
            Route("/events", g(self.events), methods=["GET"]),
            Route("/events", g(self.send_event, action=True), methods=["POST"]),
            Route("/events/{event_id}", g(self.event), methods=["GET"]),
            Route("/functions", g(self.functions), methods=["GET"]),
            Route("/apps", g(self.apps), methods=["GET"]),
            *self._actions.routes(g),
            Mount("/static", app=static, name="static"),
        ]


_SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _host_name(request: Request) -> str:
    """``Host`` without its port: ``127.0.0.1``, ``localhost``, ``[::1]``."""
    host = request.headers.get("host") or ""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def _same_origin(request: Request) -> bool:
    """A POST from our own pages: same ``Origin`` as ``Host`` (or no cross-site hint)."""
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return origin.split("://", 1)[-1] == request.headers.get("host")


def _with_fragment(request: Request, fragment: str) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "fragment"}
    return f"{request.url.path}?{urlencode({**params, 'fragment': fragment})}"


def _step_param(request: Request) -> dict[str, str]:
    step = request.query_params.get("step")
    return {"step": step} if step else {}


def _failed_at(run: Run) -> StepRecord | None:
    """The step whose error failed the run (same name and message), if any."""
    if run.status is not RunStatus.FAILED:
        return None
    error = error_view(run.output)
    for step in reversed(run.steps):
        step_error = error_view(step.error)
        if (
            error
            and step_error
            and (step_error.name, step_error.message)
            == (
                error.name,
                error.message,
            )
        ):
            return step
    return None


def _selected_step(run: Run, step_id: str | None) -> str | None:
    """``?step=`` if given, else the first failed step, else the last step."""
    ids = [s.id for s in run.steps]
    if step_id in ids:
        return step_id
    failed = [s.id for s in run.steps if s.error is not None]
    if failed:
        return failed[-1]
    return ids[-1] if ids else None
