"""One socket write per response on the dev server's protocol (``devserver/coalesce.py``),
seen on a real uvicorn server over loopback: what uvicorn writes reaches the socket's own
transport (recorded, then passed on) as one write per loop turn, streams still flow chunk by
chunk, a big write that never yields goes out at once, and a malformed request still gets
its 400 before the connection closes."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from wayline.devserver.coalesce import FLUSH_AT, CoalescingHttpToolsProtocol

from .conftest import free_port


class RecordedTransport:
    """The socket's transport, recording each write it is given before passing it on."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


WRITES: list[bytes] = []


class RecordedProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        recorded: Any = RecordedTransport(cast(asyncio.Transport, transport), WRITES)
        super().connection_made(recorded)


async def small(_: Request) -> Response:
    return JSONResponse({"ok": True})


async def ticking(_: Request) -> Response:
    async def chunks() -> Any:
        for n in range(3):
            yield f"data: {n}\n\n".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(chunks(), media_type="text/event-stream")


async def big(_: Request) -> Response:
    async def chunks() -> Any:
        for _ in range(4):
            yield b"x" * (FLUSH_AT // 2)  # never yields to the loop in between

    return StreamingResponse(chunks())


APP = Starlette(routes=[Route("/small", small), Route("/ticking", ticking), Route("/big", big)])


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        APP,
        host="127.0.0.1",
        port=port,
        http=RecordedProtocol,
        loop=request.param,
        log_level="error",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def writes_of(action: Any) -> list[bytes]:
    WRITES.clear()
    action()
    time.sleep(0.05)  # the server thread's last turn
    return list(WRITES)


def test_a_response_head_and_body_leave_in_one_write(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        for _ in range(3):  # keep-alive: one write per response on the same connection
            writes = writes_of(lambda: client.get("/small"))
            assert len(writes) == 1
            assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
            assert writes[0].endswith(b'\r\n\r\n{"ok":true}')


def test_a_stream_still_goes_out_chunk_by_chunk(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        seen: list[str] = []

        def read() -> None:
            with client.stream("GET", "/ticking") as res:
                seen.extend(res.iter_text())

        writes = writes_of(read)
    assert "".join(seen) == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert len(writes) >= 3  # the head with the first chunk, then one per tick, then the end
    assert b"data: 0" in writes[0]
    assert writes[-1].endswith(b"0\r\n\r\n")


def test_a_big_body_is_not_held_back_until_the_turn_ends(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        res: list[httpx.Response] = []
        writes = writes_of(lambda: res.append(client.get("/big")))
    assert res[0].content == b"x" * (FLUSH_AT * 2)
    # sent as soon as FLUSH_AT is crossed: with the chunk that crossed it, never more
    assert [len(w) // 1024 for w in writes] == [64, 64, 0], [len(w) for w in writes]


def test_a_malformed_request_gets_its_400_before_the_close(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b"Invalid HTTP request received.")
