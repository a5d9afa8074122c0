"""The dashboard's actions on runs, events and functions (issue 9): rerun, redrive from the
failed step, replay an event, pause and resume a function.

Each is a same-origin form POST to a dashboard route (the guard in ``dashboard`` checks
``Origin`` / ``Sec-Fetch-Site`` and the ``Host``) that calls the engine through ``RunOps``,
exactly what the REST API calls, so the page never holds a signing key. On success the
browser is redirected (post/redirect/get) to what the action made: the new run, the new
event, the functions list. A refusal (a redrive of a run that did not fail, a function
removed since the page was drawn) re-renders the page it came from with a 409 / 404 and
the engine's own message, so the user reads why nothing happened. ``read_only``
(``wayline dashboard --stack``) draws no button and refuses the routes with a 405.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..engine import redrive
from ..engine.runops import RunOps
from ..engine.service import Service
from ..errors import ConflictError, NotFoundError

Page = Callable[[Request], Awaitable[Response]]
Guard = Callable[..., Page]


class Pages(Protocol):
    """The pages an action falls back to when it is refused (``dashboard.Dashboard``)."""

    def run_page(
        self, request: Request, run_id: str, *, status: int = 200, action_error: str | None = None
    ) -> Response: ...

    def functions_page(
        self, request: Request, *, status: int = 200, action_error: str | None = None
    ) -> Response: ...

    def not_found(self, request: Request, what: str, ident: str) -> Response: ...


READ_ONLY = "this dashboard is read-only"


class DashboardActions:
    def __init__(self, service: Service, pages: Pages, *, read_only: bool) -> None:
        self._ops = RunOps(service)
        self._pages = pages
        self._read_only = read_only

    async def rerun(self, request: Request) -> Response:
        """Rerun from the start: a new run of the same function with the same events."""
        return self._rerun(request, redrive.FROM_START)

    async def redrive(self, request: Request) -> Response:
        """Redrive a Failed run: its completed steps are replayed from their results."""
        return self._rerun(request, redrive.FROM_FAILED_STEP)

    def _rerun(self, request: Request, mode: str) -> Response:
        run_id = request.path_params["run_id"]
        if self._read_only:
            return HTMLResponse(READ_ONLY, 405)
        try:
            new = self._ops.rerun(run_id, mode=mode)
        except NotFoundError:
            return self._pages.not_found(request, "run", run_id)
        except ConflictError as exc:
            return self._pages.run_page(request, run_id, status=409, action_error=str(exc))
        return RedirectResponse(f"/runs/{new.id}", status_code=303)

    async def replay_event(self, request: Request) -> Response:
        """A new event with the same name and data, routed; shows the new event's page."""
        event_id = request.path_params["event_id"]
        if self._read_only:
            return HTMLResponse(READ_ONLY, 405)
        try:
            event = self._ops.replay_event(event_id)
        except NotFoundError:
            return self._pages.not_found(request, "event", event_id)
        return RedirectResponse(f"/events/{event.internal_id}", status_code=303)

    async def pause(self, request: Request) -> Response:
        return self._set_paused(request, paused=True)

    async def resume(self, request: Request) -> Response:
        return self._set_paused(request, paused=False)

    def _set_paused(self, request: Request, *, paused: bool) -> Response:
        function_id = request.path_params["function_id"]
        if self._read_only:
            return HTMLResponse(READ_ONLY, 405)
        try:
            self._ops.set_paused(function_id, paused=paused)
        except NotFoundError as exc:
            return self._pages.functions_page(request, status=404, action_error=str(exc))
        return RedirectResponse(f"/functions#fn-{function_id}", status_code=303)

    def routes(self, guard: Guard) -> list[Route]:
        def action(path: str, handler: Page) -> Route:
            return Route(path, guard(handler, action=True), methods=["POST"])

        return [
            action("/runs/{run_id}/rerun", self.rerun),
            action("/runs/{run_id}/redrive", self.redrive),
            action("/events/{event_id}/replay", self.replay_event),
            action("/functions/{function_id}/pause", self.pause),
            action("/functions/{function_id}/resume", self.resume),
        ]
