"""The dev server's HTTP API: Inngest-compatible endpoints over the engine service.

Every error is a 4xx with ``{"error": "..."}`` naming the problem, and nothing is stored
or started when a request is rejected.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import signing
from ..clock import OffsetClock
from ..engine import events as events_mod
from ..engine import expr, json_input, search, wire
from ..engine.durations import parse_time
from ..engine.flow.config import flow_config
from ..engine.model import JSON, Event, FunctionDef, Run
from ..engine.registration import parse_register
from ..engine.service import Service
from ..engine.triggers import functions_for_event
from ..engine.webhook_registry import WebhookRegistry, declared_webhooks
from ..errors import StoreError, ValidationError
from .checkpoint_fastpath import CheckpointFastPath
from .checkpoints import CheckpointApi
from .dashboard import Dashboard, DashboardConfig
from .event_body import read_event_chunks
from .event_fastpath import EventFastPath
from .event_group import EventGroup
from .realtime import RealtimeApi
from .run_search import parse_run_search
from .runops import RunOpsApi
from .views import event_view, function_view, run_summary, run_view
from .webhooks import WebhooksApi

log = logging.getLogger("wayline.api")

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class ApiConfig:
    signing_keys: tuple[str, ...] = ()
    event_keys: tuple[str, ...] = ()
    test_clock: OffsetClock | None = None
    allow_private_apps: bool = True
    """Local apps live on loopback; metadata endpoints are refused regardless."""


def _composite(app_id: str, function_id: str) -> str:
    """Accept a function's own id or its composite ``<app>-<fn>`` id."""
    prefix = f"{app_id}-"
    return function_id if function_id.startswith(prefix) else prefix + function_id


def _matched(functions: list[FunctionDef], event: Event) -> list[str]:
    """The functions whose triggers match ``event``, as synced now (evaluated at the time
    the event was received, for expressions that read ``now``)."""
    wire = event.to_wire()
    return [fn.id for fn in functions_for_event(functions, wire, now_ms=event.received_at)]


def error(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def data(value: object, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": value, "metadata": {}}, status_code=status)


async def json_body(request: Request, *, empty: JSON = None) -> JSON:
    """The request's JSON body through ``json_input`` (finite numbers, valid Unicode,
    bounded nesting); ``empty`` stands in for a missing body. Raises ``ValidationError``."""
    raw = await request.body()
    return json_input.parse(raw, field="body") if raw.strip() else empty


class ServerKindHeader:
    """Adds ``X-Inngest-Server-Kind: dev`` to every response, as the Inngest server does."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers.append((wire.SERVER_KIND.encode(), b"dev"))
                message["headers"] = headers
            await send(message)

        await self._app(scope, receive, send_with_header)  # type: ignore[arg-type]


class Api:
    def __init__(
        self,
        service: Service,
        config: ApiConfig,
        on_clock_advanced: Callable[[], None] = lambda: None,
    ) -> None:
        self._service = service
        self._config = config
        self._on_clock_advanced = on_clock_advanced
        self._events = EventGroup(service)

    # ------------------------------------------------------------ auth

    def _authorized(self, request: Request) -> bool:
        return self.authorized_header(request.headers.get("authorization"))

    def authorized_header(self, authorization: str | None) -> bool:
        """The guard's rule on an ``Authorization`` header value (also the fast path's)."""
        if not self._config.signing_keys:
            return True
        return signing.bearer_matches(authorization, self._config.signing_keys)

    def _guard(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if not self._authorized(request):
                return error(401, "missing or invalid signing key in the Authorization header")
            return await handler(request)

        return guarded

    # ------------------------------------------------------------ events

    async def send_events(self, request: Request) -> Response:
        return await self.ingest(request.path_params["key"], request.headers.get, request.stream())

    async def ingest(
        self, key: str, header: Callable[[str], str | None], body: AsyncIterator[bytes]
    ) -> JSONResponse:
        """``POST /e/{key}``'s answer (the route's and ``event_fastpath``'s): ``header``
        reads a request header, ``body`` yields the body's chunks. 200 once the events are
        stored and routed (with the others of their group: ``event_group``)."""
        if self._config.event_keys and key not in self._config.event_keys:
            return JSONResponse(
                {"ids": [], "status": 401, "error": "event key not found"}, status_code=401
            )
        try:
            seed = events_mod.check_seed(header(events_mod.SEED_HEADER))
            inputs = await read_event_chunks(body, header("content-length"))
        except ValidationError as exc:
            return JSONResponse({"ids": [], "status": 400, "error": str(exc)}, status_code=400)
        except ClientDisconnect:
            # The client went away mid-body: nothing was stored, and the answer reaches no
            # one (the server drops sends after a disconnect); not a server error to log.
            log.info("an event request's client disconnected before its body was complete")
            return JSONResponse(
                {"ids": [], "status": 400, "error": "the body ended before it was complete"},
                status_code=400,
            )
        try:
            ids = await self._events.send(inputs, seed=seed)
        except StoreError as exc:
            return JSONResponse(
                {"ids": [], "status": 503, "error": f"the events were not stored ({exc}); retry"},
                status_code=503,
            )
        return JSONResponse({"ids": ids, "status": 200})

    async def list_events(self, request: Request) -> Response:
        q = request.query_params
        try:
            limit = min(int(q.get("limit", "50")), 1000)
        except ValueError:
            return error(400, "limit must be an integer from 1 to 1000")
        found = self._service.store.events.list_events(
            name=q.get("name") or None, limit=max(limit, 1), before_id=q.get("cursor") or None
        )
        functions = self._service.store.apps.list_functions()
        return data([event_view(e, _matched(functions, e)) for e in found])

    async def get_event(self, request: Request) -> Response:
        event = self._service.store.events.get_event(request.path_params["event_id"])
        if event is None:
            return error(404, f"event {request.path_params['event_id']!r} not found")
        functions = self._service.store.apps.list_functions()
        return data(event_view(event, _matched(functions, event)))

    async def event_runs(self, request: Request) -> Response:
        return self.runs_of_event(request.path_params["event_id"])

    def runs_of_event(self, event_id: str) -> JSONResponse:
        """``GET /v1/events/{event_id}/runs``'s answer (the route's and ``event_fastpath``'s)."""
        runs = self._service.store.runs.list_runs(event_id=event_id)
        return data([run_summary(r) for r in runs])

    # ------------------------------------------------------------ runs

    async def search_runs(self, request: Request) -> Response:
        """``GET /v1/runs``: newest first; ``metadata.scanned`` says how many runs the
        ``if`` filter read (at most ``DEFAULT_SCAN_BUDGET``), ``metadata.cursor`` where
        the next page starts (null at the end)."""
        try:
            query, condition = parse_run_search(request.query_params)
            found = self._service.search_runs(query, condition, search.DEFAULT_SCAN_BUDGET)
        except ValidationError as exc:
            return error(400, str(exc), parameter=exc.field)
        return JSONResponse(
            {
                "data": [run_summary(r) for r in found.runs],
                "metadata": {"cursor": found.cursor, "scanned": found.scanned},
            }
        )

    def _run_or_404(self, request: Request) -> Run | JSONResponse:
        run_id = request.path_params["run_id"]
        run = self._service.store.runs.get_run(run_id)
        return error(404, f"run {run_id!r} not found") if run is None else run

    async def get_run(self, request: Request) -> Response:
        run = self._run_or_404(request)
        return run if isinstance(run, Response) else data(run_view(run))

    async def cancel_run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        run = self._service.cancel(run_id, reason="cancelled via the REST API")
        if run is None:
            return error(404, f"run {run_id!r} not found")
        return data(run_summary(run))

    async def bulk_cancel(self, request: Request) -> Response:
        """``POST /v1/cancellations``: an empty filter is refused, never "cancel all"."""
        try:
            body = await json_body(request, empty={})
            if not isinstance(body, dict):
                return error(400, "body must be a JSON object")
            fields = _strings(
                body, "app_id", "function_id", "started_before", "started_after", "if"
            )
        except ValidationError as exc:
            return error(400, str(exc))
        function_id, before = fields["function_id"], fields["started_before"]
        if not function_id or not before:
            return error(
                400,
                "a cancellation needs at least function_id and started_before "
                "(an empty filter would cancel everything)",
            )
        if fields["app_id"]:
            function_id = _composite(fields["app_id"], function_id)
        if self._service.store.apps.get_function(function_id) is None:
            return error(404, f"function {function_id!r} not found")
        try:
            condition = fields["if"] or None
            if condition:
                expr.validate(condition, field="if")
            after = fields["started_after"]
            cancelled = self._service.cancel_matching(
                function_id=function_id,
                started_before=parse_time(before, field="started_before"),
                started_after=parse_time(after, field="started_after") if after else None,
                condition=condition,
            )
        except ValidationError as exc:
            return error(400, str(exc))
        return data({"function_id": function_id, "cancelled": len(cancelled), "run_ids": cancelled})

    async def run_batch(self, request: Request) -> Response:
        run = self._run_or_404(request)
        return run if isinstance(run, Response) else JSONResponse([dict(e) for e in run.events])

    async def run_actions(self, request: Request) -> Response:
        run = self._run_or_404(request)
        return run if isinstance(run, Response) else JSONResponse(dict(run.memos))

    # ------------------------------------------------------------ apps

    async def register(self, request: Request) -> Response:
        expected = request.headers.get(wire.EXPECTED_SERVER_KIND)
        if expected and expected != "dev":
            return error(400, f"this is a dev server; the SDK expects a {expected!r} server")
        try:
            body = await json_body(request)
            app, functions = parse_register(
                body, now=self._service.now(), allow_private=self._config.allow_private_apps
            )
            hooks = declared_webhooks(body, app_id=app.id, now=self._service.now())
        except ValidationError as exc:
            return error(400, str(exc))
        modified = self._service.sync_app(app, functions)
        modified = WebhookRegistry(self._service).sync_declared(app.id, hooks) or modified
        warnings = [f"function {f.id!r}: {w}" for f in functions for w in flow_config(f).warnings]
        for warning in warnings:
            log.warning("sync of app %r: %s", app.id, warning)
        return JSONResponse(
            {"ok": True, "modified": modified, "app_id": app.id, "warnings": warnings}
        )

    async def app_functions(self, request: Request) -> Response:
        app_id = request.path_params["app_id"]
        if self._service.store.apps.get_app(app_id) is None:
            return error(404, f"app {app_id!r} not found")
        pauses, now = self._service.pauses, self._service.now()
        return data(
            [
                function_view(f, paused_since=pauses.paused_since(f.id, now=now))
                for f in self._service.store.apps.list_functions(app_id)
            ]
        )

    # ------------------------------------------------------------ misc

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def dev_info(self, request: Request) -> Response:
        apps = self._service.store.apps.list_apps()
        return JSONResponse(
            {
                "version": "wayline-0.1.0",
                "apps": [{"id": a.id, "url": a.url, "sdk": a.sdk} for a in apps],
                "functions": len(self._service.store.apps.list_functions()),
            }
        )

    async def advance_clock(self, request: Request) -> Response:
        clock = self._config.test_clock
        if clock is None:
            return error(404, "the test API is disabled (start with --test-api)")
        try:
            body = await json_body(request, empty={})
        except ValidationError as exc:
            return error(400, str(exc))
        advance = body.get("advance_ms", 0) if isinstance(body, dict) else None
        if isinstance(advance, float) and advance.is_integer():
            advance = int(advance)  # 1000.0 from a client that computed it
        if isinstance(advance, bool) or not isinstance(advance, int):
            return error(400, f"advance_ms must be an integer, got {advance!r}")
        limit = events_mod.MAX_TS_MS - clock.now_ms()  # dates stay within what events allow
        if not 0 <= advance <= limit:
            return error(
                400,
                f"advance_ms must be from 0 to {limit} (the clock stops at 2100), got {advance}",
            )
        now = clock.advance(advance)
        self._on_clock_advanced()
        return JSONResponse({"now_ms": now})

    def routes(self) -> list[Route]:
        g = self._guard
        return [
            Route("/health", self.health, methods=["GET"]),
            Route("/dev", self.dev_info, methods=["GET"]),
            Route("/e/{key}", self.send_events, methods=["POST"]),
            Route("/fn/register", g(self.register), methods=["POST"]),
            Route("/v0/runs/{run_id}/batch", g(self.run_batch), methods=["GET"]),
            Route("/v0/runs/{run_id}/actions", g(self.run_actions), methods=["GET"]),
            Route("/v0/runs/{run_id}", g(self.cancel_run), methods=["DELETE"]),
            Route("/v1/events", g(self.list_events), methods=["GET"]),
            Route("/v1/events/{event_id}", g(self.get_event), methods=["GET"]),
            Route("/v1/events/{event_id}/runs", g(self.event_runs), methods=["GET"]),
            Route("/v1/runs", g(self.search_runs), methods=["GET"]),
            Route("/v1/runs/{run_id}", g(self.get_run), methods=["GET"]),
            Route("/v1/runs/{run_id}", g(self.cancel_run), methods=["DELETE"]),
            Route("/v1/cancellations", g(self.bulk_cancel), methods=["POST"]),
            Route("/v1/apps/{app_id}/functions", g(self.app_functions), methods=["GET"]),
            Route("/test/clock", self.advance_clock, methods=["POST"]),
            *RunOpsApi(self._service).routes(g),
            *WebhooksApi(self._service).routes(g),
            *CheckpointApi(self._service).routes(g),
        ]


def _strings(body: dict[str, JSON], *names: str) -> dict[str, str]:
    """Each named field as a string ("" when absent); any other type is refused."""
    out: dict[str, str] = {}
    for name in names:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise ValidationError(
                f"{name} must be a string, got {type(value).__name__}", field=name
            )
        out[name] = value or ""
    return out


def create_app(
    service: Service,
    config: ApiConfig,
    *,
    lifespan: object = None,
    on_clock_advanced: Callable[[], None] = lambda: None,
    dashboard: DashboardConfig | None = None,
    realtime: RealtimeApi | None = None,
    fast_paths: bool = True,
) -> ASGIApp:
    """The API, plus the dashboard pages when ``dashboard`` is given (``wayline dev`` and
    ``wayline dashboard --stack``; never the public AWS api, which builds its own routes).
    A read-only dashboard comes with the read (GET) half of the API only. ``fast_paths``:
    the raw ASGI paths in front of the hottest routes (checkpoints, event ingest and the
    runs-by-event poll), which answer exactly as those routes do; off only to compare."""
    api = Api(service, config, on_clock_advanced)
    routes: list[BaseRoute] = list(api.routes())
    if realtime is not None:  # wayline dev (see api/realtime.py)
        routes += realtime.routes(api._guard)
    if dashboard is not None:
        if dashboard.read_only:
            routes = [r for r in api.routes() if r.methods and r.methods <= {"GET", "HEAD"}]
        routes += Dashboard(service, dashboard).routes()
    app = Starlette(routes=routes, lifespan=lifespan)  # type: ignore[arg-type]
    if not fast_paths or (dashboard is not None and dashboard.read_only):
        return ServerKindHeader(app)  # read-only: no POST routes, so no fast paths
    events = EventFastPath(ServerKindHeader(app), api)
    return CheckpointFastPath(events, CheckpointApi(service), api.authorized_header)
