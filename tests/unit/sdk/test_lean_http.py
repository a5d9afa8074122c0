"""The lean checkpoint client against a real socket server on 127.0.0.1 that answers with
scripted bytes: keep-alive reuse, a server-closed idle connection, chunked and
close-delimited answers, bad framing, and the httpx path when a proxy is configured."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.sdk import lean_http
from wayline.sdk.effects import HttpFailure, HttpRequest, HttpResponse, Transport

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"


class Scripted:
    """Answers each request with the next scripted answer; None closes the connection
    without answering. Counts connections accepted and requests read."""

    def __init__(self, answers: list[bytes | None], *, close_after_each: bool = False) -> None:
        self.answers = answers
        self.close_after_each = close_after_each
        self.connections = 0
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1/checkpoint/r%2F1/async"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while self.answers:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buf = rest[length:]
                answer = self.answers.pop(0)
                if answer is None:
                    return
                conn.sendall(answer)
                if self.close_after_each:
                    return


@pytest.fixture
def transport() -> Iterator[Transport]:
    t = Transport()
    yield t
    t.close()


def post(url: str) -> HttpRequest:
    return HttpRequest("POST", url, {"authorization": "Bearer k"}, b'{"a":1}', timeout_s=5)


def test_sync_requests_share_one_keep_alive_connection(transport: Transport) -> None:
    server = Scripted([OK, OK, OK])
    for _ in range(3):
        res = transport.send_checkpoint(post(server.url))
        assert isinstance(res, HttpResponse) and (res.status, res.body) == (200, b"{}")
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/checkpoint/r%2F1/async HTTP/1.1\r\n")
    assert b"authorization: Bearer k\r\n" in first and first.endswith(b'\r\n\r\n{"a":1}')


def test_async_requests_share_one_connection_per_loop(transport: Transport) -> None:
    server = Scripted([OK, OK, OK])

    async def three() -> list[HttpResponse | HttpFailure]:
        return [await transport.send_checkpoint_async(post(server.url)) for _ in range(3)]

    answers = asyncio.run(three())
    assert [a.status for a in answers if isinstance(a, HttpResponse)] == [200, 200, 200]
    assert server.connections == 1


@pytest.mark.parametrize("is_async", [False, True])
def test_a_connection_the_server_closed_is_replaced(transport: Transport, is_async: bool) -> None:
    server = Scripted([OK, None, OK])

    async def go() -> list[HttpResponse | HttpFailure]:
        return [await transport.send_checkpoint_async(post(server.url)) for _ in range(2)]

    if is_async:
        answers = asyncio.run(go())
    else:
        answers = [transport.send_checkpoint(post(server.url)) for _ in range(2)]
    assert [a.status for a in answers if isinstance(a, HttpResponse)] == [200, 200]
    assert server.connections == 2


@pytest.mark.parametrize("is_async", [False, True])
def test_chunked_and_close_delimited_answers_are_read(transport: Transport, is_async: bool) -> None:
    chunked = (
        b"HTTP/1.1 409 Conflict\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nsta\r\n2\r\nle\r\n0\r\n\r\n"
    )
    closing = b"HTTP/1.1 500 Oops\r\nconnection: close\r\n\r\nbroken"
    server = Scripted([chunked, closing])

    async def go() -> list[HttpResponse | HttpFailure]:
        return [await transport.send_checkpoint_async(post(server.url)) for _ in range(2)]

    answers = asyncio.run(go()) if is_async else [transport.send_checkpoint(post(server.url))]
    if not is_async:
        answers.append(transport.send_checkpoint(post(server.url)))
    assert [(a.status, a.body) for a in answers if isinstance(a, HttpResponse)] == [
        (409, b"stale"),
        (500, b"broken"),
    ]


@pytest.mark.parametrize("is_async", [False, True])
def test_unknown_framing_and_refused_connections_fail_the_attempt(
    transport: Transport, is_async: bool
) -> None:
    server = Scripted([b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxx"])
    closed = socket.create_server(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}/x"
    closed.close()

    def send(url: str) -> HttpResponse | HttpFailure:
        if is_async:
            return asyncio.run(transport.send_checkpoint_async(post(url)))
        return transport.send_checkpoint(post(url))

    framing, no_server = send(server.url), send(refused)
    assert isinstance(framing, HttpFailure) and "transfer-encoding" in framing.message
    assert isinstance(no_server, HttpFailure)


def test_a_proxy_in_the_environment_keeps_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    assert not lean_http.usable_for("http://127.0.0.1:8288/v1/checkpoint/r/async")
    monkeypatch.delenv("HTTP_PROXY")
    assert lean_http.usable_for("http://127.0.0.1:8288/v1/checkpoint/r/async")
    assert not lean_http.usable_for("ftp://127.0.0.1/x")


@pytest.mark.parametrize("is_async", [False, True])
def test_a_transport_made_under_a_proxy_sends_through_httpx_and_the_proxy(
    monkeypatch: pytest.MonkeyPatch, is_async: bool
) -> None:
    server = Scripted([OK])
    closed = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed.getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    closed.close()
    transport = Transport()
    try:
        if is_async:
            res = asyncio.run(transport.send_checkpoint_async(post(server.url)))
        else:
            res = transport.send_checkpoint(post(server.url))
    finally:
        transport.close()
    assert isinstance(res, HttpFailure)  # the (dead) proxy was used, not the server
    assert server.connections == 0


@given(
    st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
    st.sampled_from(["127.0.0.1", "h", "[::1]", "user:pw@h", "", "h:bad"]),
    st.sampled_from(["", ":8288", ":80", ":443", ":0"]),
    st.text(alphabet="/?#;=&a %\t\r\n", max_size=8),
)
def test_the_origin_fast_path_splits_urls_as_urlsplit_does(
    scheme: str, host: str, port: str, rest: str
) -> None:
    url = f"{scheme}://{host}{port}{rest}"
    assert lean_http._origin(url) == lean_http._parse(url)
