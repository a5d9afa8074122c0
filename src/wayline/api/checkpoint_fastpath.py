"""``POST /v1/checkpoint/{runId}/async`` (and ``/v1/http/runs/{runId}/async``) without the
generic Starlette stack.

A checkpoint arrives once per step, and profiling ``wayline dev`` on the peer bench put ~35 %
of the server's time in the middleware stack and routing around it (server-kind header,
error and exception middleware, the router's regex walk, a ``Request`` object). This raw
ASGI app sits in front of the API, answers exactly those two paths for ``POST`` with the
same rules as ``checkpoints.CheckpointApi`` — the ``/v0`` guard's auth, the body limit
before reading, ``json_input`` and ``checkpoint.parse``, the service's verdict given by
its group commit (``checkpoint_group``) — and the
same responses (``JSONResponse`` bodies, ``x-inngest-server-kind: dev``), and passes every
other request, method or ``root_path`` through untouched. An unexpected error answers the
same ``500 Internal Server Error`` Starlette's error middleware does, then propagates.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..engine import checkpoint, json_input
from ..errors import ValidationError
from . import checkpoints
from .checkpoints import CheckpointApi
from .raw_asgi import UNAUTHORIZED, first_headers, send_response

_PATH = re.compile(r"/v1/(?:checkpoint|http/runs)/([^/]+)/async")
"""``checkpoints.PATHS``; ``{run_id}`` is Starlette's default ``str`` convertor, ``[^/]+``."""
_SAVED = JSONResponse({})
"""The answer to every saved checkpoint, rendered once (``send_response`` only reads it)."""


class CheckpointFastPath:
    def __init__(
        self, app: ASGIApp, api: CheckpointApi, authorized: Callable[[str | None], bool]
    ) -> None:
        self._app = app
        self._api = api
        self._authorized = authorized

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            matched = _PATH.fullmatch(scope["path"])
            if matched is not None:
                await self._checkpoint(matched.group(1), scope, receive, send)
                return
        await self._app(scope, receive, send)

    async def _checkpoint(self, run_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self._answer(run_id, scope, receive)
        except Exception:
            await send_response(send, PlainTextResponse("Internal Server Error", status_code=500))
            raise
        await send_response(send, response)

    async def _answer(self, run_id: str, scope: Scope, receive: Receive) -> Response:
        headers = first_headers(scope)
        if not self._authorized(headers.get("authorization")):
            return _error(401, UNAUTHORIZED)
        limit = checkpoints.MAX_BODY_BYTES
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _error(413, f"body is {declared} bytes; the limit is {limit}")
        raw = await _body(receive, limit)
        if len(raw) > limit:
            return _error(413, f"body is {len(raw)} bytes; the limit is {limit}")
        try:
            body = json_input.parse(raw, field="body")
            parsed = checkpoint.parse(body, run_id=run_id)
        except ValidationError as exc:
            return _error(400, str(exc))
        verdict = await self._api.verdict(parsed)
        if not verdict.accepted:
            return _error(verdict.status, verdict.message)
        return _SAVED


async def _body(receive: Receive, limit: int) -> bytes:
    """The body, or its first chunks once past ``limit`` (refused whole, not read on)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > limit or not message.get("more_body", False):
            break
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
