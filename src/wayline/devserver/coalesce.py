"""One socket write per HTTP response instead of two.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body when
the app sends ``http.response.body``, each straight to the socket (uvloop writes at once when
nothing is queued). On loopback every write is a full TCP send that also wakes the reader:
two per answer, most of the ~17 % of the dev server's CPU that uvicorn's ``send`` took on the
peer bench's W2 (bench/RESULTS.md, "HTTP stack"). The transport below holds the writes made
in one turn of the event loop and sends them together at the end of it: a head and the body
that follows it leave in one segment. Streams (SSE) still go out chunk by chunk, each chunk
at the end of the turn that wrote it, and more than ``FLUSH_AT`` bytes held go out at once
(uvicorn's flow control sees them: a stream that never yields to the loop is not held in
memory).
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FLUSH_AT = 64 * 1024


class CoalescingTransport:
    """A transport that sends what was written in one loop turn as one write. Everything
    but writing and closing goes to the socket's own transport."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))
        self._pending_size += len(data)
        if self._pending_size >= FLUSH_AT:
            self.flush()

    def writelines(self, lines: list[bytes]) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if not self._transport.is_closing():  # the peer went away: nothing to send to
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # e.g. a 400 answer written just before the connection closes
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._pending_size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        coalescing: Any = CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(coalescing)
