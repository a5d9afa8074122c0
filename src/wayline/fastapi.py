"""Serve Wayline functions from a FastAPI app.

Example::

    import fastapi
    import wayline.fastapi

    app = fastapi.FastAPI()
    wayline.fastapi.serve(app, client, [send_welcome])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fastapi

from .sdk.client import Wayline
from .sdk.comm import CommHandler
from .sdk.config import DEFAULT_SERVE_PATH
from .sdk.function import Function
from .starlette import METHODS, endpoint

FRAMEWORK = "fast_api"


def serve(
    app: fastapi.FastAPI,
    client: Wayline,
    functions: Sequence[Function[Any, Any]],
    *,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> CommHandler:
    """Serve ``functions`` on ``serve_path`` (default ``/api/inngest``) of ``app``.

    Args:
        app: The FastAPI app.
        client: The Wayline client the functions were made with.
        functions: The functions to serve.
        serve_origin: The origin the server should call, if not the request's own.
        serve_path: The path to serve on; it is also the path reported at sync.

    Returns:
        The framework-agnostic handler (its ``function_ids`` lists what is served).

    Raises:
        ConfigError: production mode without a signing key, or no functions.

    Example::

        wayline.fastapi.serve(app, client, [send_welcome], serve_path="/api/wayline")
    """
    handler = CommHandler(
        client, functions, framework=FRAMEWORK, serve_origin=serve_origin, serve_path=serve_path
    )
    path = serve_path or client.config.serve_path or DEFAULT_SERVE_PATH
    # Left out of the OpenAPI schema: it is the server's endpoint, not part of the app's API.
    # A plain Starlette route: FastAPI's own (dependency solving, response checks) cost ~30 us
    # a call for nothing, since the endpoint takes the raw request and returns a Response.
    app.add_route(path, endpoint(handler), methods=METHODS, include_in_schema=False)
    return handler
