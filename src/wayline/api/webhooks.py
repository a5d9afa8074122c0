"""Webhook endpoints: definitions under ``/v1/webhooks`` (signing key), deliveries at
``POST /webhooks/{id}`` (public: third parties call it; the optional signature and the
unguessable id are its protection). A refused delivery gets a 4xx naming the reason and
stores nothing; no reply and no log line carries a webhook's secret."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..engine import webhooks
from ..engine.service import Service
from ..engine.webhook_registry import WebhookRegistry
from ..engine.webhooks import Rejection
from .runops import Guard, handled, json_object


def _data(value: object, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": value, "metadata": {}}, status_code=status)


class WebhooksApi:
    def __init__(self, service: Service) -> None:
        self._registry = WebhookRegistry(service)

    async def create(self, request: Request) -> Response:
        hook = self._registry.create(await json_object(request))
        return _data(webhooks.view(hook), status=201)

    async def list_all(self, request: Request) -> Response:
        return _data([webhooks.view(h) for h in self._registry.all()])

    async def get(self, request: Request) -> Response:
        return _data(webhooks.view(self._registry.get(request.path_params["webhook_id"])))

    async def delete(self, request: Request) -> Response:
        self._registry.delete(request.path_params["webhook_id"])
        return _data({"id": request.path_params["webhook_id"], "deleted": True})

    async def receive(self, request: Request) -> Response:
        hook = self._registry.get(request.path_params["webhook_id"])
        try:
            body = await _read_at_most(request, hook.max_bytes)
            result = self._registry.receive(
                hook,
                body,
                {k.lower(): v for k, v in request.headers.items()},
                dict(request.query_params),
            )
        except Rejection as exc:
            return JSONResponse({"error": exc.reason, "status": exc.status}, exc.status)
        return JSONResponse({**result, "status": 200})

    def routes(self, guard: Guard) -> list[Route]:
        one = "/v1/webhooks/{webhook_id}"
        return [
            Route("/v1/webhooks", guard(handled(self.create)), methods=["POST"]),
            Route("/v1/webhooks", guard(handled(self.list_all)), methods=["GET"]),
            Route(one, guard(handled(self.get)), methods=["GET"]),
            Route(one, guard(handled(self.delete)), methods=["DELETE"]),
            Route("/webhooks/{webhook_id}", handled(self.receive), methods=["POST"]),
        ]


async def _read_at_most(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is longer than ``limit``: never read whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Rejection(413, f"body is {declared} bytes; this webhook takes at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejection(413, f"body is over {limit} bytes, the limit of this webhook")
        chunks.append(chunk)
    return b"".join(chunks)
