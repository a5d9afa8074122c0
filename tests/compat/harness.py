"""Harness for the compatibility suite.

Every test gets its own pair of processes talking over loopback HTTP:

* an app written with the OFFICIAL ``inngest`` SDK, served in-process from a
  background thread (FastAPI through ``uvicorn.Server``, Flask through
  ``werkzeug.serving.make_server``);
* a real ``wayline dev`` subprocess with its own SQLite file, pointed at the
  app with ``-u``.

:class:`Compat` owns both and offers a small synchronous client for the dev
server's HTTP API (send events, wait for runs, restart, move the clock).
Nothing here is shared between tests, so the suite is safe under xdist.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

import fastapi
import flask
import httpx
import inngest
import inngest.fast_api
import inngest.flask
import pytest
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from werkzeug.serving import BaseWSGIServer, make_server

JSONDict: TypeAlias = dict[str, Any]
Framework: TypeAlias = Literal["fastapi", "flask"]
Flavor: TypeAlias = Literal["sync", "async"]

DEFAULT_APP_ID = "compat"
SERVE_PATH = "/api/inngest"

QUEUED = "Queued"
RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"
CANCELLED = "Cancelled"
SKIPPED = "Skipped"
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED, SKIPPED})

POLL_INTERVAL = 0.05
RUN_TIMEOUT = 20.0
STARTUP_TIMEOUT = 20.0
REGISTER_TIMEOUT = 15.0
STOP_GRACE = 5.0

FRAMEWORKS: list[Framework] = ["fastapi", "flask"]

# Flask serves async handlers only through asgiref (``flask[async]``), which is
# not a dependency of this project, so Flask apps are exercised with sync
# functions and FastAPI apps with both flavours.
VARIANTS = [
    pytest.param("fastapi", "async", id="fastapi-async"),
    pytest.param("fastapi", "sync", id="fastapi-sync"),
    pytest.param("flask", "sync", id="flask-sync"),
]

#: ``@variants`` parametrizes a test over ``(framework, flavor)``.
variants = pytest.mark.parametrize(("framework", "flavor"), VARIANTS)
#: ``@frameworks`` parametrizes a test over ``framework`` only.
frameworks = pytest.mark.parametrize("framework", FRAMEWORKS)


class HarnessError(AssertionError):
    """The harness could not bring the system under test into the wanted state."""


# --------------------------------------------------------------------------
# Small thread-safe recorders for app-side state.
# --------------------------------------------------------------------------


class Counter:
    """A thread-safe counter (app handlers run on server threads)."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def incr(self) -> int:
        with self._lock:
            self._value += 1
            return self._value

    @property
    def value(self) -> int:
        with self._lock:
            return self._value

    def __repr__(self) -> str:
        return f"Counter({self.value})"


class Tally:
    """Thread-safe counters and notes, keyed by ``<test key>:<what>`` (apps run on threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = defaultdict(int)
        self._notes: dict[str, list[Any]] = defaultdict(list)

    def incr(self, name: str) -> int:
        with self._lock:
            self._counts[name] += 1
            return self._counts[name]

    def count(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def note(self, name: str, value: object) -> None:
        with self._lock:
            self._notes[name].append(value)

    def notes(self, name: str) -> list[Any]:
        with self._lock:
            return list(self._notes[name])


class Recorder:
    """A thread-safe append-only list."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._lock = threading.Lock()

    def append(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)

    @property
    def items(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __repr__(self) -> str:
        return f"Recorder({self.items!r})"


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float = RUN_TIMEOUT,
    message: str | Callable[[], str] = "condition not met",
) -> None:
    """Poll ``predicate`` every 50 ms until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise HarnessError(f"timed out after {timeout:.1f}s: {text}")
        time.sleep(POLL_INTERVAL)


# --------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A currently free loopback TCP port outside the kernel's ephemeral range.

    Outgoing connections take their local port from the ephemeral range
    (32768-60999 on Linux), so picking below it avoids a client socket grabbing
    the port between this check and the server's bind.
    """
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if _port_is_free(port):
            return port
    # Fall back to letting the kernel choose.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------
# In-process app servers
# --------------------------------------------------------------------------


class AppServer(Protocol):
    @property
    def port(self) -> int: ...

    def stop(self) -> None: ...


class UvicornAppServer:
    """Serves an ASGI app from a background thread with ``uvicorn.Server``."""

    def __init__(self, app: fastapi.FastAPI) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"uvicorn-app-{self.port}",
            daemon=True,
        )
        self._thread.start()
        wait_until(
            lambda: self._server.started or not self._thread.is_alive(),
            timeout=STARTUP_TIMEOUT,
            message="uvicorn app server did not start",
        )
        if not self._server.started:
            raise HarnessError("uvicorn app server thread died during startup")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STOP_GRACE)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=STOP_GRACE)
        self._sock.close()


class WerkzeugAppServer:
    """Serves a WSGI app from a background thread with werkzeug (threaded)."""

    def __init__(self, app: flask.Flask) -> None:
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.port: int = int(self._server.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"werkzeug-app-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=STOP_GRACE)
        self._server.server_close()


WebApp: TypeAlias = fastapi.FastAPI | flask.Flask


def build_web_app(
    framework: Framework,
    client: inngest.Inngest,
    functions: Sequence[inngest.Function[Any]],
) -> WebApp:
    """A bare FastAPI or Flask app serving ``functions`` with the official SDK."""
    fns = list(functions)
    if framework == "fastapi":
        fastapi_app = fastapi.FastAPI()
        inngest.fast_api.serve(fastapi_app, client, fns)
        return fastapi_app
    if any(fn.is_handler_async or fn.is_on_failure_handler_async for fn in fns):
        raise HarnessError("Flask apps in this suite serve sync functions only (no flask[async])")
    flask_app = flask.Flask(f"compat-{client.app_id}")
    inngest.flask.serve(flask_app, client, fns)
    return flask_app


@dataclass(frozen=True)
class RecordedRequest:
    """One request the app received: method, raw body bytes, lower-cased headers."""

    method: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class RecordingMiddleware:
    """ASGI middleware recording every request to the serve path (as RecordedRequest).

    Add it to a FastAPI app with ``app.add_middleware(RecordingMiddleware,
    requests=recorder)``; the body is read in full, recorded, and replayed to the app.
    """

    def __init__(self, app: ASGIApp, requests: Recorder, path: str = SERVE_PATH) -> None:
        self._app = app
        self._requests = requests
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self._path:
            await self._app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self._requests.append(RecordedRequest(method=scope["method"], body=body, headers=headers))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self._app(scope, replay, send)


def start_web_app(web_app: WebApp) -> AppServer:
    if isinstance(web_app, fastapi.FastAPI):
        return UvicornAppServer(web_app)
    return WerkzeugAppServer(web_app)


def function_ids(functions: Iterable[inngest.Function[Any]]) -> list[str]:
    """Composite ids (``<appId>-<fnId>``) the server should register, incl. ``-failure``."""
    ids: list[str] = []
    for fn in functions:
        ids.append(fn.id)
        if fn.on_failure_fn_id is not None:
            ids.append(fn.on_failure_fn_id)
    return ids


# --------------------------------------------------------------------------
# Signing keys
# --------------------------------------------------------------------------


def bearer_token(signing_key: str) -> str:
    """What SDKs send as ``Authorization: Bearer ...`` for ``signing_key``.

    The SHA-256 hex digest of the bytes the key's hex spells, after dropping its
    ``signkey-<env>-`` prefix (as the official SDKs compute it).
    """
    bare = re.sub(r"^signkey-\w+-", "", signing_key, count=1)
    return hashlib.sha256(bytes.fromhex(bare)).hexdigest()


# --------------------------------------------------------------------------
# The `wayline dev` subprocess
# --------------------------------------------------------------------------


class DevServer:
    """A ``wayline dev`` subprocess; output (stdout+stderr) goes to ``log_path``."""

    def __init__(
        self,
        *,
        port: int,
        db_path: Path,
        log_path: Path,
        app_urls: Sequence[str],
        retry_interval: float,
        cwd: Path,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.db_path = db_path
        self.log_path = log_path
        self.app_urls = list(app_urls)
        self.retry_interval = retry_interval
        self.cwd = cwd
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "wayline",
            "dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db",
            str(self.db_path),
            "--retry-interval",
            _fmt_number(self.retry_interval),
            "--test-api",
        ]
        for url in self.app_urls:
            cmd += ["-u", url]
        return cmd + self.extra_args

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            raise HarnessError("wayline dev is already running")
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start #{self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                # Its own session: a Ctrl-C aimed at pytest does not reach it;
                # the fixture's teardown stops it.
                start_new_session=True,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = "no response yet"
        with httpx.Client(base_url=self.url, timeout=2.0) as http:
            while True:
                proc = self._proc
                if proc is None:
                    raise HarnessError("wayline dev was not started")
                code = proc.poll()
                if code is not None:
                    raise HarnessError(
                        f"wayline dev exited with code {code} during startup\n{self.tail()}"
                    )
                try:
                    res = http.get("/health")
                    last = f"{res.status_code} {res.text[:200]}"
                    if res.status_code == 200 and res.json().get("status") == "ok":
                        return
                except (httpx.HTTPError, ValueError) as exc:
                    last = repr(exc)
                if time.monotonic() >= deadline:
                    raise HarnessError(
                        f"wayline dev not healthy after {STARTUP_TIMEOUT:.0f}s "
                        f"(last /health: {last})\n{self.tail()}"
                    )
                time.sleep(POLL_INTERVAL)

    def _signal(self, sig: signal.Signals) -> None:
        """Signal the server process we started (by its pid, nothing else)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)

    def kill9(self) -> None:
        """Crash the server: SIGKILL, no chance to clean up."""
        proc = self._proc
        if proc is None:
            return
        self._signal(signal.SIGKILL)
        proc.wait(timeout=STOP_GRACE)
        self._log_marker(f"killed -9 (exit {proc.returncode})")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(timeout=STOP_GRACE)
                self._log_marker("did not stop within 5s of SIGTERM; killed")
        self._log_marker(f"stopped (exit {proc.returncode})")

    def _log_marker(self, text: str) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {text}\n".encode())

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no wayline dev log)"
        body = "\n".join(text.splitlines()[-lines:])
        return f"--- wayline dev log ({self.log_path}), last {lines} lines ---\n{body}"


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _dump(obj: object) -> str:
    try:
        return json.dumps(obj, indent=2, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(obj)


# --------------------------------------------------------------------------
# The per-test harness
# --------------------------------------------------------------------------


class Compat:
    """One official-SDK app + one ``wayline dev`` server, plus an API client.

    Usage::

        client = compat.client()          # points at compat.server_url
        @client.create_function(...)
        def fn(ctx: inngest.ContextSync) -> ...: ...
        compat.serve("fastapi", client, [fn])
        run = compat.wait_run(compat.send("my/event"), status=COMPLETED)
    """

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.server_url = f"http://127.0.0.1:{self.port}"
        self.db_path = tmp_path / "wayline.db"
        self.log_path = tmp_path / "wayline-dev.log"
        self.app_id: str | None = None
        self.expected_function_ids: list[str] = []
        self.server: DevServer | None = None
        self.app_server: AppServer | None = None
        self.front_server: AppServer | None = None
        self.app_url: str | None = None
        self.signing_key: str | None = None
        self._http = httpx.Client(base_url=self.server_url, timeout=10.0)

    def __repr__(self) -> str:
        pid = None if self.server is None else self.server.pid
        return f"Compat(server={self.server_url} pid={pid}, app={self.app_url})"

    # -- setup -------------------------------------------------------------

    def client(
        self, app_id: str = DEFAULT_APP_ID, *, signing_key: str | None = None
    ) -> inngest.Inngest:
        """An official SDK client in dev mode pointed at this test's server.

        With ``signing_key`` the SDK authenticates its API calls (register, use_api
        fetches) with it, as it must when the server is started with that key.
        """
        return inngest.Inngest(
            app_id=app_id,
            is_production=False,
            api_base_url=self.server_url,
            event_api_base_url=self.server_url,
            signing_key=signing_key,
        )

    def serve(
        self,
        framework: Framework,
        client: inngest.Inngest,
        functions: Sequence[inngest.Function[Any]],
        *,
        retry_interval: float = 1.0,
        signing_key: str | None = None,
        front: Callable[[int], AppServer] | None = None,
    ) -> None:
        """Serve ``functions`` with ``framework`` and start ``wayline dev -u <app>``.

        ``front`` puts a server in front of the app (given the app's port), e.g. a proxy
        that misbehaves the way some app servers do; the dev server talks to it instead.
        """
        web_app = build_web_app(framework, client, functions)
        self.serve_app(
            web_app,
            app_id=client.app_id,
            function_ids=function_ids(functions),
            retry_interval=retry_interval,
            signing_key=signing_key,
            front=front,
        )

    def serve_app(
        self,
        web_app: WebApp,
        *,
        app_id: str,
        function_ids: Iterable[str],
        retry_interval: float = 1.0,
        signing_key: str | None = None,
        front: Callable[[int], AppServer] | None = None,
    ) -> None:
        """Start an already-built app, then the server; wait for registration.

        With ``signing_key`` the server is started with ``--signing-key`` (it then
        signs its calls to the app and requires the key on its API), and this
        harness's API client authenticates with it.
        """
        if self.server is not None:
            raise HarnessError("serve() may be called once per test")
        self.app_id = app_id
        self.signing_key = signing_key
        if signing_key is not None:
            self._http.headers["authorization"] = f"Bearer {bearer_token(signing_key)}"
        self.expected_function_ids = list(function_ids)
        self.app_server = start_web_app(web_app)
        if front is not None:
            self.front_server = front(self.app_server.port)
        served = self.front_server or self.app_server
        self.app_url = f"http://127.0.0.1:{served.port}{SERVE_PATH}"
        self.server = DevServer(
            port=self.port,
            db_path=self.db_path,
            log_path=self.log_path,
            app_urls=[self.app_url],
            retry_interval=retry_interval,
            cwd=self.tmp_path,
            extra_args=() if signing_key is None else ("--signing-key", signing_key),
        )
        self._require_server().start()
        self.wait_registered()

    def wait_registered(self, timeout: float = REGISTER_TIMEOUT) -> list[JSONDict]:
        """Wait until ``GET /v1/apps/{app_id}/functions`` lists every expected id."""
        app_id = self._require_app_id()
        wanted = set(self.expected_function_ids)
        last: object = None

        def registered() -> bool:
            nonlocal last
            try:
                res = self._http.get(f"/v1/apps/{app_id}/functions")
            except httpx.HTTPError as exc:
                last = repr(exc)
                return False
            last = f"{res.status_code} {res.text[:2000]}"
            if res.status_code != 200:
                return False
            data = res.json().get("data") or []
            return wanted <= {fn.get("id") for fn in data}

        wait_until(
            registered,
            timeout=timeout,
            message=lambda: (
                f"functions {sorted(wanted)} of app {app_id!r} not registered; "
                f"last response: {last}"
            ),
        )
        return list(self._get_json(f"/v1/apps/{app_id}/functions").get("data") or [])

    def restart_server(self, *, kill9: bool = True) -> None:
        """Stop the server (``kill -9`` by default) and start it on the same db and port."""
        server = self._require_server()
        if kill9:
            server.kill9()
        else:
            server.stop()
        self._require_server().start()
        self.wait_registered()

    def close(self) -> None:
        """Stop everything this harness started (server first, then the app)."""
        try:
            if self.server is not None:
                self.server.stop()
        finally:
            try:
                for app_server in (self.front_server, self.app_server):
                    if app_server is not None:
                        app_server.stop()
            finally:
                self._http.close()

    # -- dev server API ------------------------------------------------------

    def send(
        self,
        name: str,
        data: Mapping[str, object] | None = None,
        *,
        id: str | None = None,
    ) -> str:
        """Send one event via ``POST /e/{key}``; returns its internal event id."""
        event: JSONDict = {"name": name, "data": dict(data or {})}
        if id is not None:
            event["id"] = id
        ids = self.send_many([event])
        return ids[0]

    @property
    def http(self) -> httpx.Client:
        """The client for the server's REST API (authorized when a signing key is set)."""
        return self._http

    def send_many(self, events: Sequence[Mapping[str, object]]) -> list[str]:
        res = self._http.post("/e/test-key", json=[dict(e) for e in events])
        self._check(res, f"POST /e/test-key {_dump(list(events))}")
        body = res.json()
        ids = body.get("ids")
        if not isinstance(ids, list) or len(ids) != len(events):
            raise HarnessError(f"unexpected /e response for {len(events)} events: {_dump(body)}")
        return [str(i) for i in ids]

    def runs_for_event(self, event_id: str) -> list[JSONDict]:
        return list(self._get_json(f"/v1/events/{event_id}/runs").get("data") or [])

    def get_run(self, run_id: str) -> JSONDict:
        data = self._get_json(f"/v1/runs/{run_id}").get("data")
        if not isinstance(data, dict):
            raise HarnessError(f"GET /v1/runs/{run_id}: no run object: {data!r}")
        return data

    def list_events(self, name: str) -> list[JSONDict]:
        return list(self._get_json("/v1/events", params={"name": name}).get("data") or [])

    def cancel_run(self, run_id: str) -> JSONDict:
        """``DELETE /v1/runs/{run_id}`` (must be a 200); returns the response's ``data``."""
        res = self._http.delete(f"/v1/runs/{run_id}")
        self._check(res, f"DELETE /v1/runs/{run_id}")
        if res.status_code != 200:
            raise HarnessError(f"DELETE /v1/runs/{run_id} -> {res.status_code}: {res.text[:2000]}")
        data = res.json().get("data")
        if not isinstance(data, dict):
            raise HarnessError(f"DELETE /v1/runs/{run_id}: no run object: {res.text[:2000]}")
        return data

    def advance_clock(self, ms: int) -> int:
        """Move the server's clock forward (``--test-api``); returns ``now_ms``."""
        res = self._http.post("/test/clock", json={"advance_ms": ms})
        self._check(res, f"POST /test/clock advance_ms={ms}")
        return int(res.json()["now_ms"])

    def function_id(self, fn_id: str) -> str:
        """The composite id for a local function id (``fn`` -> ``<appId>-fn``)."""
        return f"{self._require_app_id()}-{fn_id}"

    def wait_run(
        self,
        event_id: str,
        fn_id: str | None = None,
        *,
        status: str | Collection[str] | None = None,
        timeout: float = RUN_TIMEOUT,
    ) -> JSONDict:
        """Wait for the run that ``event_id`` started and return it (with ``steps``).

        ``fn_id`` may be local (``"my-fn"``) or composite (``"app-my-fn"``); when
        omitted, the event must have started exactly one run. Without ``status``
        this returns once the run is terminal; with it, it returns once the run
        has that status and fails at once if the run ends in another one.
        """
        deadline = time.monotonic() + timeout
        last_runs: object = None
        while True:
            try:
                runs = self.runs_for_event(event_id)
                last_runs = runs
            except (httpx.HTTPError, HarnessError) as exc:
                runs = []
                last_runs = repr(exc)
            matching = [r for r in runs if self._fn_matches(r, fn_id)]
            if len(matching) > 1 and fn_id is None:
                raise HarnessError(
                    f"event {event_id} started {len(matching)} runs; pass fn_id\n{_dump(runs)}"
                )
            if matching:
                remaining = max(deadline - time.monotonic(), 0.5)
                return self.wait_run_by_id(
                    str(matching[0]["run_id"]), status=status, timeout=remaining
                )
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"no run for event {event_id}"
                    f"{'' if fn_id is None else f' and function {fn_id!r}'} "
                    f"within {timeout:.1f}s; last /v1/events/{event_id}/runs: "
                    f"{_dump(last_runs)}"
                )
            time.sleep(POLL_INTERVAL)

    def wait_run_by_id(
        self,
        run_id: str,
        *,
        status: str | Collection[str] | None = None,
        timeout: float = RUN_TIMEOUT,
    ) -> JSONDict:
        """Poll ``GET /v1/runs/{run_id}`` until terminal (or ``status``)."""
        wanted = _statuses(status)
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                run: JSONDict | None = self.get_run(run_id)
                last = run
            except (httpx.HTTPError, HarnessError) as exc:
                run = None
                last = repr(exc)
            if run is not None:
                current = run.get("status")
                if wanted is None:
                    if current in TERMINAL_STATUSES:
                        return run
                elif current in wanted:
                    return run
                elif current in TERMINAL_STATUSES:
                    raise HarnessError(
                        f"run {run_id} ended {current!r}, wanted {sorted(wanted)}; "
                        f"run: {_dump(run)}"
                    )
            if time.monotonic() >= deadline:
                want = "a terminal status" if wanted is None else sorted(wanted)
                raise HarnessError(
                    f"run {run_id} did not reach {want} within {timeout:.1f}s; "
                    f"last run: {_dump(last)}"
                )
            time.sleep(POLL_INTERVAL)

    def current_run(self, event_id: str, fn_id: str | None = None) -> JSONDict | None:
        """The run ``event_id`` started (of ``fn_id``), as it is now; None if none yet."""
        runs = [r for r in self.runs_for_event(event_id) if self._fn_matches(r, fn_id)]
        if not runs:
            return None
        return self.get_run(str(runs[0]["run_id"]))

    def poll_until_terminal(
        self, event_id: str, fn_id: str | None = None, *, within: float = 2.0
    ) -> JSONDict | None:
        """Like :meth:`wait_run` but returns None instead of failing after ``within``."""
        deadline = time.monotonic() + within
        while True:
            run = self.current_run(event_id, fn_id)
            if run is not None and run.get("status") in TERMINAL_STATUSES:
                return run
            if time.monotonic() >= deadline:
                return None
            time.sleep(POLL_INTERVAL)

    def runs_for_events_named(self, name: str, fn_id: str | None = None) -> list[JSONDict]:
        """All runs (of ``fn_id``, if given) started by events called ``name``."""
        runs: list[JSONDict] = []
        for event in self.list_events(name):
            event_id = event.get("internal_id") or event.get("id") or event.get("event_id")
            if event_id is None:
                raise HarnessError(f"event without an id in /v1/events: {_dump(event)}")
            runs += [r for r in self.runs_for_event(str(event_id)) if self._fn_matches(r, fn_id)]
        return runs

    def server_tail(self, lines: int = 60) -> str:
        if self.server is None:
            return "(wayline dev not started)"
        return self.server.tail(lines)

    # -- internals -----------------------------------------------------------

    def _fn_matches(self, run: Mapping[str, Any], fn_id: str | None) -> bool:
        if fn_id is None:
            return True
        got = run.get("function_id")
        return got == fn_id or (self.app_id is not None and got == f"{self.app_id}-{fn_id}")

    def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> JSONDict:
        res = self._http.get(path, params=params)
        self._check(res, f"GET {path}")
        body = res.json()
        if not isinstance(body, dict):
            raise HarnessError(f"GET {path}: expected a JSON object, got {body!r}")
        return body

    def _check(self, res: httpx.Response, what: str) -> None:
        if res.status_code >= 300:
            raise HarnessError(f"{what} -> {res.status_code}: {res.text[:2000]}")

    def _require_server(self) -> DevServer:
        if self.server is None:
            raise HarnessError("call serve() first")
        return self.server

    def _require_app_id(self) -> str:
        if self.app_id is None:
            raise HarnessError("call serve() first")
        return self.app_id


def _statuses(status: str | Collection[str] | None) -> frozenset[str] | None:
    if status is None:
        return None
    if isinstance(status, str):
        return frozenset({status})
    return frozenset(status)


# --------------------------------------------------------------------------
# Run inspection helpers
# --------------------------------------------------------------------------


def steps_named(run: Mapping[str, Any], name: str) -> list[JSONDict]:
    """Steps of ``run`` whose user-facing name (step id) is ``name``."""
    return [s for s in run.get("steps") or [] if s.get("name") == name]


def step_named(run: Mapping[str, Any], name: str) -> JSONDict:
    """The single step called ``name``; fails with the run's steps otherwise."""
    found = steps_named(run, name)
    if len(found) != 1:
        raise AssertionError(
            f"expected exactly one step named {name!r}, found {len(found)}; "
            f"steps: {_dump(run.get('steps'))}"
        )
    return found[0]


def step_by_id(run: Mapping[str, Any], hashed_id: str) -> JSONDict:
    for step in run.get("steps") or []:
        if step.get("id") == hashed_id:
            return dict(step)
    raise AssertionError(f"no step with id {hashed_id}; steps: {_dump(run.get('steps'))}")
