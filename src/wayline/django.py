"""Serve Wayline functions from a Django project (WSGI or ASGI).

Example (``urls.py``)::

    import wayline.django

    urlpatterns = [wayline.django.serve(client, [send_welcome])]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Django ships no type information; django-stubs is not a dependency.
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.views.decorators.csrf import csrf_exempt

from .sdk.client import Wayline
from .sdk.comm import CommHandler, CommRequest, CommResponse
from .sdk.config import DEFAULT_SERVE_PATH
from .sdk.function import Function

FRAMEWORK = "django"


def _request(request: HttpRequest) -> CommRequest:
    return CommRequest(
        method=request.method or "GET",
        url=request.build_absolute_uri(),
        headers=dict(request.headers.items()),
        query=request.GET.dict(),
        body=request.body,
    )


def _response(comm: CommResponse) -> HttpResponse:
    response = HttpResponse(comm.body, status=comm.status)
    for name, value in comm.headers.items():
        response[name] = value
    return response


def serve(
    client: Wayline,
    functions: Sequence[Function[Any, Any]],
    *,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> URLPattern:
    """A URL pattern serving ``functions`` on ``serve_path`` (default ``api/inngest``).

    The view is async when any function (or failure handler) is ``async def``, so it runs
    on the server's loop under ASGI; otherwise it is a plain sync view. Either view runs
    either kind of function. CSRF checks are off for it: the server signs its requests.

    Args:
        client: The Wayline client the functions were made with.
        functions: The functions to serve.
        serve_origin: The origin the server should call, if not the request's own.
        serve_path: The path to serve on; it is also the path reported at sync.

    Returns:
        A ``django.urls.path`` to add to ``urlpatterns``.

    Raises:
        ConfigError: production mode without a signing key, or no functions.

    Example::

        urlpatterns = [wayline.django.serve(client, [send_welcome])]
    """
    handler = CommHandler(
        client, functions, framework=FRAMEWORK, serve_origin=serve_origin, serve_path=serve_path
    )
    route = (serve_path or client.config.serve_path or DEFAULT_SERVE_PATH).lstrip("/")
    if any(h.is_async for fn in functions for h in fn.handlers()):

        async def wayline_serve_async(request: HttpRequest) -> HttpResponse:
            return _response(await handler.handle(_request(request)))

        return path(route, csrf_exempt(wayline_serve_async), name="wayline-serve")

    def wayline_serve(request: HttpRequest) -> HttpResponse:
        return _response(handler.handle_sync(_request(request)))

    return path(route, csrf_exempt(wayline_serve), name="wayline-serve")
