"""``step.fetch`` through a real ``wayline dev``: the server makes the request and memoizes
the answer, so the app may be down between reporting the request and using the response.

The app runs in its own process (``fetch_app.py``) so it can be killed for real; the target
is a loopback server in this process that counts its hits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import wayline
from compat.harness import COMPLETED, Compat, DevServer, free_port, wait_until

from .support import wait_for_step

APP = Path(__file__).with_name("fetch_app.py")
BIG_BYTES = 4 * 1024 * 1024 + 1


class Target:
    """``/slow`` holds its answer until released; ``/flaky`` answers 503 twice, then 200;
    ``/big`` answers more than the step.fetch limit."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.authorization: list[str] = []
        self.bodies: list[Any] = []
        self.reached = threading.Event()
        self.release = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                path = self.path
                target.hits[path] = target.hits.get(path, 0) + 1
                length = int(self.headers.get("content-length") or 0)
                if length:
                    target.bodies.append(json.loads(self.rfile.read(length)))
                target.authorization.append(self.headers.get("authorization") or "")
                status, payload = 200, b'{"answer": 42}'
                if path == "/slow":
                    target.reached.set()
                    target.release.wait(30)
                elif path == "/flaky" and target.hits[path] <= 2:
                    status, payload = 503, b"busy"
                elif path == "/big":
                    payload = b"x" * BIG_BYTES
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("x-target", "yes")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


class AppProcess:
    """``fetch_app.py`` on a fixed port, killed (SIGKILL) and restarted by the test."""

    def __init__(self, tmp_path: Path, server_url: str, target_url: str) -> None:
        self.token = f"secret-token-{uuid.uuid4().hex}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        self.pid_log = tmp_path / "app-pids.log"
        self._args = [sys.executable, str(APP), str(self.port), server_url, target_url]
        self._log = tmp_path / "app.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "FETCH_APP_LOG": str(self.pid_log), "FETCH_TOKEN": self.token}
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(self._args, stdout=log, stderr=log, env=env)
        wait_until(self._up, timeout=30, message=lambda: self._log.read_text()[-2000:])

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the app exited: {self._log.read_text()[-2000:]}")
        try:
            return httpx.get(self.url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def pids(self) -> list[int]:
        return [int(line) for line in self.pid_log.read_text().split()]


@pytest.fixture
def target() -> Iterator[Target]:
    fake = Target()
    yield fake
    fake.close()


@pytest.fixture
def app(compat: Compat, tmp_path: Path, target: Target) -> Iterator[AppProcess]:
    process = AppProcess(tmp_path, compat.server_url, target.url)
    process.start()
    compat.app_id = "fetch"
    compat.expected_function_ids = ["fetch-durable", "fetch-checked"]
    compat.app_url = process.url
    compat.server = DevServer(
        port=compat.port,
        db_path=compat.db_path,
        log_path=compat.log_path,
        app_urls=[process.url],
        retry_interval=0.2,
        cwd=tmp_path,
    )
    try:
        compat.server.start()
        compat.wait_registered()
        yield process
    finally:
        process.kill()


def _send(compat: Compat, name: str, data: dict[str, Any]) -> str:
    client = wayline.Wayline(app_id="fetch-test", is_dev=True, base_url=compat.server_url)
    [event_id] = client.send(wayline.Event(name=name, data=data))
    return event_id


def _stored_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_the_response_is_memoized_while_the_app_is_down(
    compat: Compat, app: AppProcess, target: Target
) -> None:
    token = app.token
    event_id = _send(compat, "fetch/durable", {})
    assert target.reached.wait(30), "the server never made the request"

    # The app reported the fetch and is now killed; only then does the target answer.
    app.kill()
    target.release.set()
    wait_for_step(compat, event_id, "fetch-durable", "slow")
    app.start()
    run = compat.wait_run(event_id, "fetch-durable", status=COMPLETED)

    first, second = app.pids()
    assert run["output"] == {"status": 200, "body": {"answer": 42}, "used_by": second}
    assert first != second
    assert target.hits == {"/slow": 1}
    assert target.bodies == [{"q": 1}]
    assert target.authorization == [f"Bearer {token}"]
    # The credential went to the target only: not to the database, the log or the pages.
    assert token.encode() not in _stored_bytes(compat.db_path)
    assert token not in compat.log_path.read_text()
    run_id = str(run.get("run_id") or run.get("id"))
    page = httpx.get(f"{compat.server_url}/runs/{run_id}", timeout=10)
    assert page.status_code == 200 and token not in page.text
    step = next(s for s in run["steps"] if s["name"] == "slow")
    assert step["output"]["status_code"] == 200
    assert step["output"]["headers"]["x-target"] == "yes"


def test_a_5xx_is_retried_until_it_succeeds(
    compat: Compat, app: AppProcess, target: Target
) -> None:
    event_id = _send(compat, "fetch/checked", {"url": f"{target.url}/flaky"})
    run = compat.wait_run(event_id, "fetch-checked", status=COMPLETED)
    assert run["output"] == {"status": 200, "body": '{"answer": 42}'}
    assert target.hits == {"/flaky": 3}


def test_refused_and_oversized_requests_fail_the_step_clearly(
    compat: Compat, app: AppProcess, target: Target
) -> None:
    metadata = _send(compat, "fetch/checked", {"url": "http://169.254.169.254/latest/meta-data"})
    big = _send(compat, "fetch/checked", {"url": f"{target.url}/big"})

    refused = compat.wait_run(metadata, "fetch-checked", status=COMPLETED)["output"]
    assert refused["error"] == "InvalidGateway"
    assert "step.fetch url" in refused["message"] and "metadata" in refused["message"]

    oversized = compat.wait_run(big, "fetch-checked", status=COMPLETED)["output"]
    assert oversized["error"] == "InvalidGateway"
    assert "limit of 4194304 bytes" in oversized["message"]
    assert target.hits == {"/big": 1}  # not retried
