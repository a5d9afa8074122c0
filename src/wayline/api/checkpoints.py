"""``POST /v1/checkpoint/{runId}/async``: step results an SDK reports mid-call.

The npm ``inngest`` v4 SDK (and Wayline's) sends one after each ``step.run`` of a call
whose request carried ``ctx.fn_id`` / ``ctx.qi_id``, authenticated like ``/v0/runs/*``
(``Authorization: Bearer <hashed signing key>``; a dev server without keys takes the
SDK's bare ``Bearer ``). Also mounted under the older ``/v1/http/runs`` prefix, as the
Inngest server does. Answers: 200 ``{}`` once saved; 400 bad body (naming the field) or
an op a checkpoint cannot carry; 409 a call that no longer owns the run (the SDK stops);
413 over the size limits; 503 when the store could not save it (the SDK retries). See
``engine.checkpoint`` for the rules; the checkpoints that arrive together are saved in
one transaction (``checkpoint_group``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine import checkpoint, json_input
from ..engine.service import Service
from ..errors import ValidationError
from .checkpoint_group import CheckpointGroup

Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Handler], Handler]

MAX_BODY_BYTES = checkpoint.MAX_STATE_BYTES
"""No checkpoint can be larger than the state a run may hold."""
PATHS = ("/v1/checkpoint/{run_id}/async", "/v1/http/runs/{run_id}/async")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class CheckpointApi:
    def __init__(self, service: Service) -> None:
        self._service = service
        self._group = CheckpointGroup(service)

    @property
    def service(self) -> Service:
        return self._service

    async def verdict(self, parsed: checkpoint.Checkpoint) -> checkpoint.Verdict:
        """The service's verdict on ``parsed``, given once it is committed (with the
        others of its group)."""
        return await self._group.verdict(parsed)

    async def checkpoint(self, request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(413, f"body is {declared} bytes; the limit is {MAX_BODY_BYTES}")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, f"body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            body = json_input.parse(raw, field="body")
            parsed = checkpoint.parse(body, run_id=request.path_params["run_id"])
        except ValidationError as exc:
            return _error(400, str(exc))
        verdict = await self.verdict(parsed)
        if not verdict.accepted:
            return _error(verdict.status, verdict.message)
        return JSONResponse({})

    def routes(self, guard: Guard) -> list[Route]:
        return [Route(path, guard(self.checkpoint), methods=["POST"]) for path in PATHS]
