"""Serve Wayline functions from a Flask app (sync views; async functions work too).

Example::

    import flask
    import wayline.flask

    app = flask.Flask(__name__)
    wayline.flask.serve(app, client, [send_welcome])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flask

from .sdk.client import Wayline
from .sdk.comm import CommHandler, CommRequest
from .sdk.config import DEFAULT_SERVE_PATH
from .sdk.function import Function

FRAMEWORK = "flask"


def serve(
    app: flask.Flask,
    client: Wayline,
    functions: Sequence[Function[Any, Any]],
    *,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> CommHandler:
    """Serve ``functions`` on ``serve_path`` (default ``/api/inngest``) of ``app``.

    The view is synchronous; an ``async def`` function runs on its own event loop for the
    request, so ``flask[async]`` is not needed.

    Args:
        app: The Flask app.
        client: The Wayline client the functions were made with.
        functions: The functions to serve.
        serve_origin: The origin the server should call, if not the request's own.
        serve_path: The path to serve on; it is also the path reported at sync.

    Returns:
        The framework-agnostic handler (its ``function_ids`` lists what is served).

    Raises:
        ConfigError: production mode without a signing key, or no functions.

    Example::

        wayline.flask.serve(app, client, [send_welcome])
    """
    handler = CommHandler(
        client, functions, framework=FRAMEWORK, serve_origin=serve_origin, serve_path=serve_path
    )

    def wayline_serve() -> flask.Response:
        request = flask.request
        comm = handler.handle_sync(
            CommRequest(
                method=request.method,
                url=request.url,
                headers=dict(request.headers.items()),
                query=request.args.to_dict(flat=True),
                body=request.get_data(),
            )
        )
        return flask.Response(comm.body, status=comm.status, headers=comm.headers)

    path = serve_path or client.config.serve_path or DEFAULT_SERVE_PATH
    app.add_url_rule(
        path, endpoint="wayline_serve", view_func=wayline_serve, methods=["GET", "POST", "PUT"]
    )
    return handler
