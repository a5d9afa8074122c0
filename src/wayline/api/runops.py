"""REST endpoints that act on runs, events and functions (issue 9): rerun and redrive.

Kept apart from ``rest.py`` so each operation owns its handlers; ``Api.routes`` mounts
them behind the same signing-key guard. Bodies and replies follow the rest of the v1 API:
``{"data": ...}`` on success, ``{"error": "..."}`` with a 4xx naming the problem.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine import redrive
from ..engine.runops import RunOps
from ..engine.service import Service
from ..errors import ConflictError, NotFoundError, ValidationError
from .views import event_view, run_view

Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Handler], Handler]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _data(value: object, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": value, "metadata": {}}, status_code=status)


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``)."""
    raw = await request.body()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ValidationError(f"body is not valid JSON: {exc}") from exc
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

    def routes(self, guard: Guard) -> list[Route]:
        return [
            Route(
                "/v1/events/{event_id}/replay", guard(handled(self.replay_event)), methods=["POST"]
            ),
            Route("/v1/runs/{run_id}/rerun", guard(handled(self.rerun)), methods=["POST"]),
        ]
