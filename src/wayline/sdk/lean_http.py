"""A lean HTTP/1.1 client for checkpoint POSTs only, with keep-alive pools.

Profiled on the peer bench, ~60 % of an app's CPU went to httpx for the per-step checkpoint
POSTs (a new ``AsyncClient`` and connection per call, anyio and httpcore layers). A checkpoint
is one small request with a small answer to a known server, so this speaks just enough
HTTP/1.1: a ``content-length`` body out; ``content-length``, ``chunked`` or close-delimited
answers in; keep-alive; TLS through the SDK's ``ssl`` context; one timeout for the whole
exchange. Connections are pooled per event loop (asyncio streams belong to their loop) and per
thread (blocking sockets), keyed by scheme, host and port.

``usable_for`` says when not to use it: a proxy configured in the environment (httpx honours
``HTTP(S)_PROXY``/``NO_PROXY``; the caller then keeps the httpx path) or a URL it does not
handle. Any failure is an ``HttpFailure``, a failed attempt under the checkpoint retry rules.
A request on a reused connection that dies before any answer byte (the server closed an idle
keep-alive) is sent once more on a fresh connection, as browsers and httpx do.
"""

from __future__ import annotations

import asyncio
import functools
import select
import socket
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass

from .effects import HttpFailure, HttpRequest, HttpResponse

__all__ = ["AsyncPool", "SyncPool", "usable_for"]

MAX_IDLE_PER_ORIGIN = 256
"""Idle connections kept per origin: a loop with many calls in flight checkpoints on as many
connections at once, and the ones beyond the pool's size are closed after use. As many as
``wayline dev`` has calls in flight: with 32, a burst of 500 runs reconnected ~4 % of an
app's CPU away. Keeping them open adds no connection, it only keeps those the burst made."""
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int


class _FramingError(Exception):
    """The answer's framing is not one this client reads; the attempt failed."""


class _NoAnswerError(Exception):
    """The connection closed before any byte of an answer (a stale keep-alive)."""


def _origin(url: str) -> tuple[_Origin, str] | None:
    """The origin ``url`` is sent to and the request target, or None when this client does
    not send there. The origin part is parsed once per origin (``urlsplit`` per checkpoint
    was ~4 % of an app's CPU)."""
    start = url.find("://")
    slash = url.find("/", start + 3) if start > 0 else -1
    base, rest = (url, "") if slash < 0 else (url[:slash], url[slash:])
    if "?" in base or "#" in base or not url.isprintable() or " " in url:
        return _parse(url)  # rare: let urlsplit judge it all
    origin = _base_origin(base)
    if origin is None:
        return None
    path, _, query = rest.partition("#")[0].partition("?")
    return origin, (path or "/") + ("?" + query if query else "")


@functools.lru_cache(maxsize=64)
def _base_origin(base: str) -> _Origin | None:
    parsed = _parse(base)
    return parsed[0] if parsed is not None else None


def _parse(url: str) -> tuple[_Origin, str] | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return _Origin(parts.scheme, parts.hostname, port), target


def usable_for(url: str, proxies: Mapping[str, str] | None = None) -> bool:
    """True when the lean client may send to ``url``: http(s), and no proxy for its scheme in
    ``proxies`` (``urllib.request.getproxies_environment()``, read now when not given)."""
    parsed = _origin(url)
    if parsed is None:
        return False
    if proxies is None:
        proxies = urllib.request.getproxies_environment()
    return not (proxies.get(parsed[0].scheme) or proxies.get("all"))


def _head(request: HttpRequest, origin: _Origin, target: str) -> bytes:
    default = 443 if origin.scheme == "https" else 80
    host = origin.host if ":" not in origin.host else f"[{origin.host}]"
    authority = host if origin.port == default else f"{host}:{origin.port}"
    body = request.body or b""
    lines = [f"{request.method} {target} HTTP/1.1", f"host: {authority}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() not in _OWN]
    lines += [f"content-length: {len(body)}", "accept: */*", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


_OWN = frozenset({"host", "content-length", "transfer-encoding", "connection"})


def _parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise _FramingError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _FramingError(f"bad header line {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(code), headers


def _framing(status: int, headers: dict[str, str], method: str) -> str | int:
    """How the body is delimited: a length, "chunked", or "close" (read to EOF)."""
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return 0
    coding = headers.get("transfer-encoding", "").lower()
    if coding:
        if coding != "chunked":
            raise _FramingError(f"unsupported transfer-encoding {coding!r}")
        return "chunked"
    length = headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise _FramingError(f"bad content-length {length!r}")
        return int(length)
    return "close"


def _keeps_alive(headers: dict[str, str], framing: str | int) -> bool:
    return framing != "close" and "close" not in headers.get("connection", "").lower()


_FAILED = (_FramingError, _NoAnswerError, OSError, ValueError)
"""What makes an attempt fail (ValueError: a malformed chunk size or status)."""


# --- asyncio ------------------------------------------------------------------------------


_Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_LoopIdle = tuple[dict[_Origin, list[_Conn]], AsyncGenerator[None, None]]


class AsyncPool:
    """Keep-alive connections per event loop, shared by every call on that loop."""

    def __init__(self, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls = tls
        self._idle: dict[asyncio.AbstractEventLoop, _LoopIdle] = {}

    async def _start(self, loop: asyncio.AbstractEventLoop) -> _LoopIdle:
        """The loop's first checkpoint: its pool, and the keeper that closes it."""
        entry = self._idle.get(loop)
        if entry is None:
            for old in [each for each in self._idle if each.is_closed()]:
                del self._idle[old]  # a loop closed without shutting down its generators
            idle: dict[_Origin, list[_Conn]] = {}
            keeper = self._keeper(loop, idle)
            entry = self._idle[loop] = (idle, keeper)
            await keeper.__anext__()
        return entry

    async def _keeper(
        self, loop: asyncio.AbstractEventLoop, idle: dict[_Origin, list[_Conn]]
    ) -> AsyncGenerator[None, None]:
        """Closes the loop's idle connections when the loop shuts down: ``asyncio.run`` (one
        per call in a sync handler running an async function) finalizes async generators
        before it closes the loop, so the sockets close on their own loop."""
        try:
            yield
        finally:
            self._idle.pop(loop, None)
            for conns in idle.values():
                for _, writer in conns:
                    writer.close()
            idle.clear()

    async def send(self, request: HttpRequest) -> HttpResponse | HttpFailure:
        parsed = _origin(request.url)
        if parsed is None:
            return HttpFailure(f"unsupported URL {request.url!r}")
        origin, target = parsed
        data = _head(request, origin, target)
        loop = asyncio.get_running_loop()
        entry = self._idle.get(loop) or await self._start(loop)
        pool = entry[0].get(origin) or entry[0].setdefault(origin, [])
        if pool and (pool[0][0].at_eof() or pool[0][1].is_closing()):
            pool.pop(0)[1].close()  # the oldest idle one, closed by the server: let it go
        try:
            async with asyncio.timeout(request.timeout_s):
                while pool:
                    conn = pool.pop()
                    if conn[0].at_eof() or conn[1].is_closing():
                        conn[1].close()
                        continue
                    try:
                        return await self._exchange(conn, data, request.method, pool)
                    except (_NoAnswerError, ConnectionError):
                        conn[1].close()  # a stale keep-alive: once more on a new one
                ssl_ctx = self._tls() if origin.scheme == "https" else None
                conn = await asyncio.open_connection(
                    origin.host,
                    origin.port,
                    ssl=ssl_ctx,
                    server_hostname=origin.host if ssl_ctx else None,
                )
                return await self._exchange(conn, data, request.method, pool)
        except TimeoutError:
            return HttpFailure(f"ReadTimeout: no answer within {request.timeout_s} s")
        except (*_FAILED, EOFError) as exc:
            return HttpFailure(f"{type(exc).__name__}: {exc}")

    async def _exchange(
        self, conn: _Conn, data: bytes, method: str, pool: list[_Conn]
    ) -> HttpResponse:
        reader, writer = conn
        try:
            writer.write(data)
            if writer.transport.get_write_buffer_size():
                await writer.drain()  # only when the socket did not take it all at once
            try:
                raw = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _NoAnswerError("connection closed before an answer") from exc
                raise
            except asyncio.LimitOverrunError as exc:
                raise _FramingError("answer head too large") from exc
            status, headers = _parse_head(raw)
            framing = _framing(status, headers, method)
            if framing == "chunked":
                body = await _read_chunked(reader)
            elif framing == "close":
                body = await reader.read()
            else:
                assert isinstance(framing, int)
                body = await reader.readexactly(framing) if framing else b""
        except BaseException:
            writer.close()
            raise
        if _keeps_alive(headers, framing) and len(pool) < MAX_IDLE_PER_ORIGIN:
            pool.append(conn)
        else:
            writer.close()
        return HttpResponse(status, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = await reader.readuntil(b"\r\n")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


# --- blocking -----------------------------------------------------------------------------


class SyncPool:
    """Keep-alive sockets per thread (a socket is used by one thread at a time)."""

    def __init__(self, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls = tls
        self._local = threading.local()

    def _pool(self, origin: _Origin) -> list[_SockConn]:
        idle: dict[_Origin, list[_SockConn]] | None = getattr(self._local, "idle", None)
        if idle is None:
            idle = self._local.idle = {}
        return idle.setdefault(origin, [])

    def send(self, request: HttpRequest) -> HttpResponse | HttpFailure:
        parsed = _origin(request.url)
        if parsed is None:
            return HttpFailure(f"unsupported URL {request.url!r}")
        origin, target = parsed
        data = _head(request, origin, target)
        pool = self._pool(origin)
        try:
            while pool:
                conn = pool.pop()
                if conn.stale():
                    conn.close()
                    continue
                try:
                    return conn.exchange(data, request, pool)
                except (_NoAnswerError, ConnectionError):
                    conn.close()
            sock = socket.create_connection((origin.host, origin.port), request.timeout_s)
            if origin.scheme == "https":
                sock = self._tls().wrap_socket(sock, server_hostname=origin.host)
            return _SockConn(sock).exchange(data, request, pool)
        except TimeoutError:
            return HttpFailure(f"ReadTimeout: no answer within {request.timeout_s} s")
        except _FAILED as exc:
            return HttpFailure(f"{type(exc).__name__}: {exc}")


class _SockConn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def stale(self) -> bool:
        """An idle keep-alive that is readable was closed (or broken) by the server."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        self.sock.close()

    def _more(self) -> bytes:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return chunk

    def _until(self, sep: bytes, limit: int = MAX_HEAD_BYTES) -> bytes:
        while (at := self.buf.find(sep)) < 0:
            if len(self.buf) > limit:
                raise _FramingError("answer head too large")
            if not self._more():
                raise ConnectionError("connection closed mid-answer")
        out, self.buf = self.buf[: at + len(sep)], self.buf[at + len(sep) :]
        return out

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._more():
                raise ConnectionError("connection closed mid-answer")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def exchange(self, data: bytes, request: HttpRequest, pool: list[_SockConn]) -> HttpResponse:
        try:
            self.sock.settimeout(request.timeout_s)
            self.sock.sendall(data)
            if not self.buf and not self._more():
                raise _NoAnswerError("connection closed before an answer")
            status, headers = _parse_head(self._until(b"\r\n\r\n"))
            framing = _framing(status, headers, request.method)
            if framing == "chunked":
                body = self._chunked()
            elif framing == "close":
                while self._more():
                    pass
                body, self.buf = self.buf, b""
            else:
                assert isinstance(framing, int)
                body = self._exactly(framing)
        except BaseException:
            self.close()
            raise
        if _keeps_alive(headers, framing) and len(pool) < MAX_IDLE_PER_ORIGIN and not self.buf:
            pool.append(self)
        else:
            self.close()
        return HttpResponse(status, headers, body)

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._until(b"\r\n").split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._until(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(self._exactly(size))
            self._exactly(2)
