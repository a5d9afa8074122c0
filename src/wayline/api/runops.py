"""REST endpoints that act on runs, events and functions (issue 9): rerun and redrive.

Kept apart from ``rest.py`` so each operation owns its handlers; ``Api.routes`` mounts
them behind the same signing-key guard. Bodies and replies follow the rest of the v1 API:
``{"data": ...}`` on success, ``{"error": "..."}`` with a 4xx naming the problem.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine import json_input, redrive, signals
from ..engine.bulk import BulkReruns, parse_filter
from ..engine.runops import RunOps
from ..engine.service import Service
from ..errors import ConflictError, NotFoundError, ValidationError
from .views import event_view, function_view, run_view

Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Handler], Handler]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _data(value: object, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": value, "metadata": {}}, status_code=status)


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``)."""
    raw = await request.body()
    body = json_input.parse(raw, field="body") if raw.strip() else {}
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object")
    return body


def handled(handler: Handler) -> Handler:
    """Map the error tree to statuses: 400 bad input, 404 unknown id, 409 wrong state."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ValidationError as exc:
            return _error(400, str(exc))
        except NotFoundError as exc:
            return _error(404, str(exc))
        except ConflictError as exc:
            return _error(409, str(exc))

    return wrapped


class RunOpsApi:
    def __init__(self, service: Service) -> None:
        self._service = service
        self._ops = RunOps(service)
        self._bulk = BulkReruns(service)

    async def rerun(self, request: Request) -> Response:
        """``POST /v1/runs/{id}/rerun`` ``{"from": "start" | "failed_step"}``."""
        body = await json_object(request)
        mode = redrive.check_mode(body.get("from"))
        new = self._ops.rerun(request.path_params["run_id"], mode=mode)
        return _data(run_view(new), status=201)

    async def replay_event(self, request: Request) -> Response:
        """``POST /v1/events/{id}/replay``: a new event, same name and data, routed."""
        event = self._ops.replay_event(request.path_params["event_id"])
        return _data({"id": event.internal_id, "event": event_view(event)}, status=201)

    async def pause(self, request: Request) -> Response:
        """``POST /v1/apps/{app}/functions/{fn}/pause``: no new runs, queued calls wait."""
        return self._set_paused(request, paused=True)

    async def resume(self, request: Request) -> Response:
        """``POST /v1/apps/{app}/functions/{fn}/resume``: queued calls continue."""
        return self._set_paused(request, paused=False)

    def _set_paused(self, request: Request, *, paused: bool) -> Response:
        app_id, fn_id = request.path_params["app_id"], request.path_params["function_id"]
        prefix = f"{app_id}-"
        function_id = fn_id if fn_id.startswith(prefix) else prefix + fn_id
        changed = self._ops.set_paused(function_id, paused=paused)
        fn = self._service.store.apps.get_function(function_id)
        if fn is None:  # pragma: no cover - removed by a sync in between
            raise NotFoundError(f"function {function_id!r} not found")
        since = self._service.pauses.paused_since(function_id, now=self._service.now())
        return _data({**function_view(fn, paused_since=since), "changed": changed})

    async def bulk_rerun(self, request: Request) -> Response:
        """``POST /v1/reruns``: a dry run counts; otherwise a paced job starts (202)."""
        body = await json_object(request)
        flt = parse_filter(body)
        dry_run = body.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise ValidationError("dry_run must be true or false", field="dry_run")
        if dry_run:
            return _data(self._bulk.dry_run(flt))
        return _data(self._bulk.create(flt), status=202)

    async def bulk_progress(self, request: Request) -> Response:
        """``GET /v1/reruns/{id}``: how far a bulk rerun got, and the runs it made."""
        return _data(self._bulk.get(request.path_params["job_id"]))

    async def send_signal(self, request: Request) -> Response:
        """``POST /v1/signals {"signal", "data"}``: resume the one run waiting on it."""
        body = await json_object(request)
        name = signals.check_name(body.get("signal"))
        run_id = self._service.signals.send(name, body.get("data"), now=self._service.now())
        return _data({"run_id": run_id})

    def routes(self, guard: Guard) -> list[Route]:
        fn_path = "/v1/apps/{app_id}/functions/{function_id}"
        return [
            Route(f"{fn_path}/pause", guard(handled(self.pause)), methods=["POST"]),
            Route(f"{fn_path}/resume", guard(handled(self.resume)), methods=["POST"]),
            Route(
                "/v1/events/{event_id}/replay", guard(handled(self.replay_event)), methods=["POST"]
            ),
            Route("/v1/runs/{run_id}/rerun", guard(handled(self.rerun)), methods=["POST"]),
            Route("/v1/signals", guard(handled(self.send_signal)), methods=["POST"]),
            Route("/v1/reruns", guard(handled(self.bulk_rerun)), methods=["POST"]),
            Route("/v1/reruns/{job_id}", guard(handled(self.bulk_progress)), methods=["GET"]),
        ]
