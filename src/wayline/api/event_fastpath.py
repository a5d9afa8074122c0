"""``POST /e/{key}`` and ``GET /v1/events/{event_id}/runs`` without the generic Starlette
stack.

Every run starts with an event ingest, and a client that waits for its run polls the
runs of its event; through Starlette each request also pays the server-kind header
middleware, the error and exception middleware, the router's walk over ~40 routes and a
``Request`` object. This raw ASGI app sits in front of the API (behind
``checkpoint_fastpath``) and answers exactly those two routes with the API's own answer
methods (``Api.ingest``, ``Api.runs_of_event``), so the rules and response bodies are the
route's by construction: the event key, the seed header, the body streamed through
``EventStream``, the ``/v1`` guard's auth. It adds ``x-inngest-server-kind: dev`` as
``ServerKindHeader`` does, and passes every other request, method or ``root_path``
through untouched. An unexpected error answers the same ``500 Internal Server Error``
Starlette's error middleware does, then propagates; a client that goes away while the
body is read raises ``ClientDisconnect`` as ``Request.stream`` does.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .raw_asgi import UNAUTHORIZED, first_headers, send_response

if TYPE_CHECKING:
    from .rest import Api

_INGEST = re.compile(r"/e/([^/]+)")
"""``/e/{key}``: Starlette's default ``str`` convertor is ``[^/]+``."""
_EVENT_RUNS = re.compile(r"/v1/events/([^/]+)/runs")


class EventFastPath:
    def __init__(self, app: ASGIApp, api: Api) -> None:
        self._app = app
        self._api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            if method == "POST" and path.startswith("/e/"):
                matched = _INGEST.fullmatch(path)
                if matched is not None:
                    headers = first_headers(scope)
                    body = _chunks(receive)
                    await _answer(send, self._api.ingest(matched.group(1), headers.get, body))
                    return
            elif method == "GET" and path.startswith("/v1/events/"):
                matched = _EVENT_RUNS.fullmatch(path)
                if matched is not None:
                    await _answer(send, self._event_runs(matched.group(1), scope))
                    return
        await self._app(scope, receive, send)

    async def _event_runs(self, event_id: str, scope: Scope) -> Response:
        if not self._api.authorized_header(first_headers(scope).get("authorization")):
            return JSONResponse({"error": UNAUTHORIZED}, status_code=401)
        return self._api.runs_of_event(event_id)


async def _answer(send: Send, answer: Awaitable[Response]) -> None:
    try:
        response = await answer
    except Exception:
        await send_response(send, PlainTextResponse("Internal Server Error", status_code=500))
        raise
    await send_response(send, response)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks as ``Request.stream`` yields them."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
