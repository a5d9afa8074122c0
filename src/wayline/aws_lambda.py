"""Serve Wayline functions from AWS Lambda behind a Function URL or API Gateway (v1 or v2).

Example (``handler.py``, with the Lambda handler set to ``handler.handler``)::

    import wayline.aws_lambda

    handler = wayline.aws_lambda.serve(client, [send_welcome])
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .sdk.checkpoint import LAMBDA_MARGIN
from .sdk.client import Wayline
from .sdk.comm import CommHandler, CommRequest
from .sdk.function import Function

FRAMEWORK = "aws_lambda"

LambdaHandler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    # v1 may carry repeated headers in multiValueHeaders only; the first value is enough.
    headers: dict[str, str] = {}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if values:
            headers[name.lower()] = str(values[0])
    for name, value in (event.get("headers") or {}).items():
        if value is not None:
            headers[name.lower()] = str(value)
    return headers


def _query(event: Mapping[str, Any]) -> dict[str, str]:
    raw = event.get("rawQueryString")
    if isinstance(raw, str):  # v2 / Function URL: the exact query string
        return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
    return {
        k: str(v) for k, v in (event.get("queryStringParameters") or {}).items() if v is not None
    }


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return b""
    return body.encode("utf-8") if isinstance(body, str) else b""


def to_request(event: Mapping[str, Any]) -> CommRequest:
    """A ``CommRequest`` from a Function URL / API Gateway v2 or an API Gateway v1 event."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    headers = _headers(event)
    if http:  # payload format 2.0
        method, path = (
            str(http.get("method", "GET")),
            str(event.get("rawPath") or http.get("path") or "/"),
        )
    else:
        method, path = str(event.get("httpMethod", "GET")), str(event.get("path") or "/")
    host = headers.get("host") or str(context.get("domainName") or "localhost")
    scheme = headers.get("x-forwarded-proto", "https")
    query = _query(event)
    url = f"{scheme}://{host}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    return CommRequest(method=method, url=url, headers=headers, query=query, body=_body(event))


def _time_left_s(context: Any) -> float | None:
    """The invocation's remaining time minus a margin: a checkpointing call hands its next
    step back to the server before Lambda would kill it mid-step."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    left_s = float(remaining()) / 1000
    return max(0.0, left_s - LAMBDA_MARGIN.total_seconds())


def serve(
    client: Wayline,
    functions: Sequence[Function[Any, Any]],
    *,
    serve_origin: str | None = None,
    serve_path: str | None = None,
) -> LambdaHandler:
    """A Lambda handler serving ``functions`` (every path of the URL is the serve endpoint).

    Args:
        client: The Wayline client the functions were made with.
        functions: The functions to serve.
        serve_origin: The origin the server should call, if not the request's own.
        serve_path: The path reported at sync, if not the request's own.

    Returns:
        ``handler(event, context) -> dict``, for Function URLs and API Gateway v1/v2.

    Raises:
        ConfigError: production mode without a signing key, or no functions.

    Example::

        handler = wayline.aws_lambda.serve(client, [send_welcome])
    """
    comm = CommHandler(
        client, functions, framework=FRAMEWORK, serve_origin=serve_origin, serve_path=serve_path
    )

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        response = comm.handle_sync(to_request(event), time_left_s=_time_left_s(context))
        return {
            "statusCode": response.status,
            "headers": response.headers,
            "body": response.body.decode("utf-8"),
            "isBase64Encoded": False,
        }

    return handler
