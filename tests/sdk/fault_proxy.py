"""A loopback HTTP proxy that records every exchange by run and can refuse checkpoints.

Put between ``wayline dev`` and the app it counts SDK calls and the bytes the server sends
(each call's ``ctx.run_id`` read from its body); put between the app and the server it
counts checkpoints (``/v1/checkpoint/{run}/async``) and, when told, answers them itself
with an error instead of forwarding, as a struggling server would. Real HTTP both ways.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}
)
_CHECKPOINT = re.compile(r"^/v1/checkpoint/([^/?]+)/async")


@dataclass(frozen=True, slots=True)
class Exchange:
    method: str
    path: str
    run_id: str
    status: int
    request_bytes: int
    steps: tuple[str, ...]
    """A checkpoint's step names."""


def _run_of(path: str, body: bytes) -> tuple[str, tuple[str, ...]]:
    try:
        raw = json.loads(body) if body else None
    except ValueError:
        raw = None
    found = _CHECKPOINT.match(path)
    if found is not None:
        steps = raw.get("steps") if isinstance(raw, dict) else None
        names = tuple(str(s.get("name")) for s in steps or [] if isinstance(s, dict))
        return found.group(1), names
    ctx = raw.get("ctx") if isinstance(raw, dict) else None
    return (str(ctx.get("run_id") or "") if isinstance(ctx, dict) else ""), ()


class FaultProxy:
    """Forwards to ``target``; ``refuse_checkpoints`` = a status to answer checkpoints with."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.refuse_checkpoints: dict[str, int] = {}
        """Run-id prefix (the event key is not known to the proxy) -> status; "*" for all."""
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._client = httpx.Client(timeout=120.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffered: headers and body leave in one write. Two small writes meet the
            # client's delayed ACK (Nagle) and cost ~40 ms per exchange.
            wbufsize = 64 * 1024

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                run_id, steps = _run_of(self.path, body)
                refused = proxy._refusal(self.path, run_id)
                if refused is not None:
                    status, content, out = refused, b'{"error":"refused"}', httpx.Headers()
                else:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    try:
                        resp = proxy._client.request(
                            self.command, proxy.target + self.path, content=body, headers=headers
                        )
                        status, content, out = resp.status_code, resp.content, resp.headers
                    except httpx.HTTPError as exc:
                        status, content, out = 502, str(exc).encode(), httpx.Headers()
                exchange = Exchange(self.command, self.path, run_id, status, len(body), steps)
                proxy._record(exchange)
                self.send_response(status)
                for key, value in out.multi_items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = _forward  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _refusal(self, path: str, run_id: str) -> int | None:
        if _CHECKPOINT.match(path) is None:
            return None
        with self._lock:
            return self.refuse_checkpoints.get(run_id, self.refuse_checkpoints.get("*"))

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def calls(self, run_id: str) -> list[Exchange]:
        """SDK calls of a run (server -> app)."""
        with self._lock:
            return [e for e in self._exchanges if e.run_id == run_id and "fnId=" in e.path]

    def checkpoints(self, run_id: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self._exchanges if e.run_id == run_id and _CHECKPOINT.match(e.path)]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
