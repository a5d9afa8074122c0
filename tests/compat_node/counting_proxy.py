"""A loopback HTTP proxy that counts what passes through it (requests, bytes, paths).

Put between ``wayline dev`` and the Node app (server -> app calls) and between the app
and the server (the app's API calls: checkpoints, ``/v0/runs``), it shows how many SDK
calls and checkpoints a run takes and how many bytes they carry, without touching
either side. Real HTTP both ways; the ``Host`` header is passed on unchanged, so the app
registers its functions at the proxy's address and every call goes through it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
)


@dataclass(frozen=True, slots=True)
class Exchange:
    method: str
    path: str
    status: int
    request_bytes: int
    response_bytes: int
    body: bytes = b""
    """The request body when it is at most ``KEPT_BODY_BYTES``."""


KEPT_BODY_BYTES = 16 * 1024


class CountingProxy:
    """Forwards every request to ``target`` (scheme://host:port) and records it."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._client = httpx.Client(timeout=120.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                try:
                    resp = proxy._client.request(
                        self.command, proxy.target + self.path, content=body, headers=headers
                    )
                    status, content, out = resp.status_code, resp.content, resp.headers
                except httpx.HTTPError as exc:
                    status, content, out = 502, str(exc).encode(), httpx.Headers()
                kept = body if len(body) <= KEPT_BODY_BYTES else b""
                proxy._record(
                    Exchange(self.command, self.path, status, len(body), len(content), kept)
                )
                self.send_response(status)
                for key, value in out.multi_items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"proxy-{self.port}", daemon=True
        )
        self._thread.start()

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def exchanges(self, *, method: str | None = None, path_part: str = "") -> list[Exchange]:
        with self._lock:
            return [
                e
                for e in self._exchanges
                if (method is None or e.method == method) and path_part in e.path
            ]

    def clear(self) -> None:
        with self._lock:
            self._exchanges.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
