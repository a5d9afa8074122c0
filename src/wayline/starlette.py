"""Serve Wayline functions from a Starlette app (any ASGI app built on Starlette).

Example::

    from starlette.applications import Starlette
    import wayline.starlette

    app = Starlette()
    wayline.starlette.serve(app, client, [send_welcome])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from .sdk.client import Wayline
from .sdk.comm import CommHandler, CommRequest
from .sdk.config import DEFAULT_SERVE_PATH
from .sdk.function import Function

FRAMEWORK = "starlette"
METHODS = ["GET", "POST", "PUT"]


def endpoint(handler: CommHandler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for the serve path (FastAPI mounts it the same way)."""

    async def serve_endpoint(request: Request) -> Response:
        comm = await handler.handle(
            CommRequest(
                method=request.method,
                url=str(request.url),
                headers=dict(request.headers.items()),
                query=dict(request.query_params.items()),
                body=await request.body(),
            )
        )
        return Response(content=comm.body, status_code=comm.status, headers=comm.headers)

    return serve_endpoint


def serve(
    app: Starlette,
    client: Wayline,
    functions: Sequence[Function[Any, Any]],
    *,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> CommHandler:
    """Serve ``functions`` on ``serve_path`` (default ``/api/inngest``) of ``app``.

    Args:
        app: The Starlette app.
        client: The Wayline client the functions were made with.
        functions: The functions to serve.
        serve_origin: The origin the server should call, if not the request's own.
        serve_path: The path to serve on; it is also the path reported at sync.

    Returns:
        The framework-agnostic handler (its ``function_ids`` lists what is served).

    Raises:
        ConfigError: production mode without a signing key, or no functions.

    Example::

        wayline.starlette.serve(app, client, [send_welcome])
    """
    handler = CommHandler(
        client, functions, framework=FRAMEWORK, serve_origin=serve_origin, serve_path=serve_path
    )
    path = serve_path or client.config.serve_path or DEFAULT_SERVE_PATH
    app.add_route(path, endpoint(handler), methods=METHODS)
    return handler
