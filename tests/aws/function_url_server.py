"""A Function URL on loopback: each HTTP request becomes one invocation of a Lambda
handler with the payload-format-2.0 event a Function URL sends (as ``Driver.api`` builds
it), so an app can reach the api function over real HTTP (e.g. its checkpoints)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from .driver import FakeLambdaContext

HOST = "abc.lambda-url.us-east-1.on.aws"


class FunctionUrl:
    """An ASGI app that hands every request to ``invoke(event, context)`` (run in a
    worker thread, as the handler blocks) and answers with its response."""

    def __init__(self, invoke: Callable[[dict[str, Any], Any], Any]) -> None:
        self._invoke = invoke
        self.calls = 0
        self.seconds = 0.0
        """Time spent in the handler, summed over calls."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": scope["path"],
            "rawQueryString": scope.get("query_string", b"").decode(),
            "headers": {**headers, "host": HOST},
            "requestContext": {
                "http": {
                    "method": scope["method"],
                    "path": scope["path"],
                    "sourceIp": "203.0.113.9",
                    "protocol": "HTTP/1.1",
                },
                "domainName": HOST,
                "requestId": str(uuid.uuid4()),
            },
            "body": base64.b64encode(raw).decode(),
            "isBase64Encoded": True,
        }
        started = time.perf_counter()
        response = await run_in_threadpool(self._invoke, event, FakeLambdaContext())
        self.calls += 1
        self.seconds += time.perf_counter() - started
        body = response.get("body") or ""
        data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        out = [(k.encode(), str(v).encode()) for k, v in (response.get("headers") or {}).items()]
        start = {"type": "http.response.start", "status": response["statusCode"], "headers": out}
        await send(start)
        await send({"type": "http.response.body", "body": data})
