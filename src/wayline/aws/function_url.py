"""Serve an ASGI app from a Lambda Function URL: event (payload format 2.0) -> ASGI HTTP
request -> Function URL response.

This is what lets the api function run the dev server's own Starlette routes, with
their validation and error messages, instead of a second implementation of the API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Message

__all__ = ["FunctionUrlAdapter"]

log = logging.getLogger("wayline.api")


def _scope(event: Mapping[str, Any]) -> dict[str, Any]:
    http = event.get("requestContext", {}).get("http", {})
    raw_path = str(event.get("rawPath") or http.get("path") or "/")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    cookies = event.get("cookies") or []
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    host = headers.get("host", "lambda-url")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": str(http.get("method", "GET")).upper(),
        "scheme": headers.get("x-forwarded-proto", "https"),
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": str(event.get("rawQueryString") or "").encode(),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "server": (host, 443),
        "client": (str(http.get("sourceIp", "0.0.0.0")), 0),
    }


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return str(body).encode()


class FunctionUrlAdapter:
    """Calls ``app`` once per event; returns the Function URL response dict."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    def __call__(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return asyncio.run(self._handle(event))

    async def _handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        request: list[Message] = [
            {"type": "http.request", "body": _body(event), "more_body": False}
        ]
        status = 500
        headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def receive() -> Message:
            return request.pop(0) if request else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for key, value in message.get("headers", []):
                    name, text = key.decode("latin-1").lower(), value.decode("latin-1")
                    headers[name] = f"{headers[name]},{text}" if name in headers else text
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self._app(_scope(event), receive, send)
        except Exception:
            # Starlette answers 500 and then re-raises; an app that raised before
            # answering gets the same 500 here instead of a failed invocation (a 502).
            log.exception("unhandled error in the API")
            if not headers:
                status, chunks = 500, [json.dumps({"error": "internal server error"}).encode()]
                headers["content-type"] = "application/json"
        payload = b"".join(chunks)
        try:
            return {"statusCode": status, "headers": headers, "body": payload.decode("utf-8")}
        except UnicodeDecodeError:
            return {
                "statusCode": status,
                "headers": headers,
                "body": base64.b64encode(payload).decode(),
                "isBase64Encoded": True,
            }
