"""``wayline dev`` on uvicorn's httptools parser and the uvloop event loop (the default where
installed) and on h11 + asyncio (``WAYLINE_HTTP=h11 WAYLINE_LOOP=asyncio``): a real server
process serves the API and an ``--app`` on the chosen stack, answers malformed requests with
400 on either parser, and stops cleanly on SIGINT and SIGTERM while a keep-alive connection
and a realtime SSE stream are open."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from compat.harness import free_port
from wayline.cli import main
from wayline.devserver import http_runtime
from wayline.devserver.claim import StartupError
from wayline.devserver.http_runtime import HttpRuntime, runtime_from_env, uvicorn_http

PLAIN = {"WAYLINE_HTTP": "h11", "WAYLINE_LOOP": "asyncio"}
EXIT_AFTER = {signal.SIGINT: 0, signal.SIGTERM: -signal.SIGTERM}

# Served by `wayline dev --app`, so it runs on the server's own loop: it reports the loop's
# class and which of uvicorn's HTTP protocol modules the process has imported.
PROBE_APP = """
import asyncio, json, sys

PROTOCOLS = ("uvicorn.protocols.http.httptools_impl", "uvicorn.protocols.http.h11_impl")

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    loop = type(asyncio.get_running_loop())
    body = json.dumps({
        "loop": loop.__module__,
        "protocols": [m.rsplit(".", 1)[1] for m in PROTOCOLS if m in sys.modules],
    }).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
"""


def test_the_fast_stack_is_the_default_where_installed() -> None:
    assert runtime_from_env({}) == HttpRuntime(http="httptools", loop="uvloop")
    assert runtime_from_env({"WAYLINE_HTTP": "auto", "WAYLINE_LOOP": " UVLOOP "}) == HttpRuntime(
        http="httptools", loop="uvloop"
    )
    assert runtime_from_env(PLAIN) == HttpRuntime(http="h11", loop="asyncio")


def test_without_uvloop_or_httptools_the_servers_fall_back_to_asyncio_and_h11(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on Windows or PyPy (no uvloop build); asking for the missing one says so."""
    monkeypatch.setattr(http_runtime, "_installed", lambda module: False)
    plain = runtime_from_env({})
    assert plain == HttpRuntime(http="h11", loop="asyncio")
    assert plain.loop_factory() is None
    assert uvicorn_http(plain.http) == "h11"
    with pytest.raises(StartupError) as caught:
        runtime_from_env({"WAYLINE_LOOP": "uvloop"})
    assert str(caught.value) == (
        "WAYLINE_LOOP=uvloop but uvloop is not installed (pip install uvloop)"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WAYLINE_HTTP": "zttp"}, "WAYLINE_HTTP must be auto, httptools or h11, got 'zttp'"),
        ({"WAYLINE_LOOP": "trio"}, "WAYLINE_LOOP must be auto, uvloop or asyncio, got 'trio'"),
    ],
)
def test_an_unknown_choice_is_refused_with_the_variable_and_its_values(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(StartupError) as caught:
        runtime_from_env(env)
    assert str(caught.value) == message


def test_wayline_dev_refuses_an_unknown_choice_before_it_binds_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("WAYLINE_LOOP", "trio")
    db = tmp_path / "dev.sqlite3"
    assert main(["dev", "--port", str(free_port()), "--db", str(db)]) == 1
    assert "wayline dev: WAYLINE_LOOP must be auto, uvloop or asyncio" in capsys.readouterr().err
    assert not db.exists()


def test_the_runtime_runs_the_server_on_the_loop_it_names() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert HttpRuntime(http="httptools", loop="uvloop").run(loop_module()).startswith("uvloop")
    assert HttpRuntime(http="h11", loop="asyncio").run(loop_module()).startswith("asyncio")


@dataclass
class Dev:
    proc: subprocess.Popen[bytes]
    port: int
    app_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_dev(tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Dev:
    (tmp_path / "probe_app.py").write_text(PROBE_APP)
    for name in ("WAYLINE_HTTP", "WAYLINE_LOOP", "WAYLINE_SIGNING_KEY", "INNGEST_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    port, app_port, log = free_port(), free_port(), tmp_path / "dev.log"
    command = [sys.executable, "-m", "wayline", "dev", "--port", str(port)]
    command += ["--db", str(tmp_path / "dev.sqlite3"), "--app", "probe_app:app"]
    command += ["--app-port", str(app_port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    dev = Dev(proc, port, app_port, log)
    deadline = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{dev.url}/health", timeout=1).status_code == 200:
                return dev
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"wayline dev did not start:\n{log.read_text()}")


@pytest.fixture
def running(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Dev]:
    dev = start_dev(tmp_path, request.param, monkeypatch)
    try:
        yield dev
    finally:
        if dev.proc.poll() is None:
            dev.proc.kill()  # the pid we started, if a test failed before stopping it
            dev.proc.wait()


def raw_exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` on a new connection; what the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


MALFORMED = [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    b"POST /e/key HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"G@T /health HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
]

CUT_SHORT = [
    b"POST /e/key HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n",
    b'POST /e/key HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n[{"name": "a/b"',
]


def open_sse_stream(dev: Dev) -> socket.socket:
    """A realtime subscription whose first bytes have arrived (the stream is open)."""
    token = httpx.post(
        f"{dev.url}/v1/realtime/token", json={"channel": "c", "topics": ["t"]}, timeout=5
    ).json()["data"]["key"]
    sock = socket.create_connection(("127.0.0.1", dev.port), timeout=5)
    sock.sendall(
        f"GET /v1/realtime/subscribe?channel=c&token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    head = b""
    while b"retry:" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


@pytest.mark.parametrize(
    ("running", "expected", "stop_with"),
    [
        ({}, ("uvloop", ["httptools_impl"]), signal.SIGINT),
        ({}, ("uvloop", ["httptools_impl"]), signal.SIGTERM),
        (PLAIN, ("asyncio.unix_events", ["h11_impl"]), signal.SIGTERM),
    ],
    ids=["httptools-uvloop-sigint", "httptools-uvloop-sigterm", "h11-asyncio-sigterm"],
    indirect=["running"],
)
def test_dev_serves_on_the_chosen_stack_and_stops_cleanly(
    running: Dev, expected: tuple[str, list[str]], stop_with: signal.Signals
) -> None:
    probe = httpx.get(f"http://127.0.0.1:{running.app_port}/probe", timeout=5).json()
    assert (probe["loop"], probe["protocols"]) == expected
    for raw in MALFORMED:
        assert raw_exchange(running.port, raw).startswith(b"HTTP/1.1 400 "), raw
    for raw in CUT_SHORT:  # the client goes away mid-body: no traceback in the log (below)
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
            sock.sendall(raw)
            time.sleep(0.1)

    with httpx.Client(base_url=running.url, timeout=5) as keep_alive:
        for _ in range(3):  # one connection, reused
            assert keep_alive.post("/e/key", json={"name": "a/b", "data": {}}).status_code == 200
        with open_sse_stream(running) as stream:
            running.proc.send_signal(stop_with)
            # uvicorn stops gracefully, then re-raises the signal: Ctrl-C exits 0 (the CLI
            # catches KeyboardInterrupt), SIGTERM ends the process by SIGTERM.
            assert running.proc.wait(timeout=10) == EXIT_AFTER[stop_with]
            rest = b""
            while chunk := stream.recv(65536):
                rest += chunk
            assert rest.endswith(b"0\r\n\r\n"), rest  # ended by the server, not cut off

    log = running.log.read_text()
    assert "Traceback" not in log, log
