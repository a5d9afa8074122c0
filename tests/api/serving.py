"""Serve an ASGI app on a free loopback port from a thread (real HTTP for page tests), on the
HTTP stack ``wayline dev`` runs (httptools writing one segment per response, uvloop; or what
WAYLINE_HTTP / WAYLINE_LOOP choose)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from wayline.devserver.http_runtime import runtime_from_env, uvicorn_http


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    runtime = runtime_from_env(os.environ)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            http=uvicorn_http(runtime.http),
            loop=runtime.loop,
            log_level="error",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
