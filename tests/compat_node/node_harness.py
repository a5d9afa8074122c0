"""Harness for the Node compatibility suite (the official ``inngest`` npm SDK).

Every test gets its own pair of subprocesses talking over loopback HTTP:

* ``node app/server.mjs``: functions written with the official JS SDK, served
  by plain ``node:http`` through ``inngest/node``; it listens on a free port
  (``PORT=0``) and reports it on its log, and exposes what its functions did
  (per run id) at ``GET /log``;
* a real ``wayline dev`` subprocess with its own SQLite file, pointed at the
  app with ``-u`` (:class:`compat.harness.DevServer`).

:class:`NodeCompat` extends :class:`compat.harness.Compat` (send events,
wait for runs, ...) with the Node app in place of the in-process Python app.
``app/node_modules`` is installed once per machine with ``npm ci`` by
:func:`ensure_node_modules`, under a file lock so that xdist workers can call it
at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from compat.harness import (
    POLL_INTERVAL,
    RUN_TIMEOUT,
    STARTUP_TIMEOUT,
    STOP_GRACE,
    Compat,
    DevServer,
    HarnessError,
    JSONDict,
    bearer_token,
    wait_until,
)

from .counting_proxy import CountingProxy

APP_DIR = Path(__file__).resolve().parent / "app"
APP_ID = "node-compat"
SERVE_PATH = "/api/inngest"
#: Local ids of the functions ``app/server.mjs`` serves.
FUNCTIONS = (
    "two-steps",
    "sleepy",
    "waiter",
    "parallel",
    "child",
    "invoker",
    "flaky",
    "doomed",
    "no-steps",
    "sender",
    "redrivable",
    "signaled",
    "big-batch",
    "many-steps",
    "sleep-steps",
    "parallel-trail",
    "retry-mid",
    "held",
    "short-runtime",
    "fetcher",
)

#: Below the tests' pytest-timeout (300 s), which also covers this fixture.
NPM_CI_TIMEOUT = 240.0
#: ``engines.node`` of the pinned inngest release.
MIN_NODE_MAJOR = 20
_LOCK_NAME = ".npm-ci.lock"
_LISTENING = re.compile(rb"node-compat app listening on http://127\.0\.0\.1:(\d+)/")


class NodeToolingError(AssertionError):
    """node/npm is missing or ``npm ci`` failed: the suite cannot run (never a skip)."""


# --------------------------------------------------------------------------
# node / npm
# --------------------------------------------------------------------------


def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NodeToolingError(
            f"`{name}` is not on PATH. tests/compat_node runs an app written with the "
            f"official `inngest` npm SDK and needs Node.js >= 20 with npm "
            f"(e.g. `apt-get install nodejs npm`, or the NodeSource packages)."
        )
    return path


def node_executable() -> str:
    return _require_tool("node")


def check_node_version(node: str, app_dir: Path) -> str:
    """``node --version``; fails unless it is >= ``MIN_NODE_MAJOR`` (the SDK's engines)."""
    version = _run_tool([node, "--version"], cwd=app_dir, timeout=30)
    match = re.fullmatch(r"v(\d+)\.\d+\.\d+.*", version)
    if match is None or int(match.group(1)) < MIN_NODE_MAJOR:
        raise NodeToolingError(
            f"{node} is {version or 'of unknown version'}; the pinned `inngest` npm SDK "
            f"needs Node.js >= {MIN_NODE_MAJOR}"
        )
    return version


def _run_tool(cmd: list[str], *, cwd: Path, timeout: float) -> str:
    try:
        res = subprocess.run(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise NodeToolingError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f}s") from exc
    out = (res.stdout + res.stderr).decode(errors="replace")
    if res.returncode != 0:
        raise NodeToolingError(
            f"`{' '.join(cmd)}` in {cwd} exited with code {res.returncode}:\n{out[-6000:]}"
        )
    return res.stdout.decode(errors="replace").strip()


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def node_modules_current(app_dir: Path = APP_DIR) -> bool:
    """True if ``node_modules`` holds exactly what ``package-lock.json`` pins.

    Compares the lockfile with the hidden lockfile npm writes at the end of an
    install (``node_modules/.package-lock.json``), as npm itself does: same
    package paths and versions (an optional package may be absent), and the
    lockfile's root dependencies still match package.json's.
    """
    try:
        manifest = _read_json(app_dir / "package.json")
        lock = _read_json(app_dir / "package-lock.json")
        hidden = _read_json(app_dir / "node_modules" / ".package-lock.json")
    except (OSError, ValueError):
        return False
    locked: dict[str, Any] = dict(lock.get("packages") or {})
    root = locked.pop("", {})
    if root.get("dependencies") != manifest.get("dependencies"):
        return False
    installed: dict[str, Any] = dict(hidden.get("packages") or {})
    if set(installed) - set(locked):
        return False
    for path, meta in locked.items():
        got = installed.get(path)
        if got is None:
            if not meta.get("optional"):
                return False
        elif got.get("version") != meta.get("version"):
            return False
    return (app_dir / "node_modules" / "inngest" / "package.json").is_file()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def ensure_node_modules(app_dir: Path = APP_DIR) -> Path:
    """``npm ci --no-audit --no-fund`` in ``app_dir`` unless already up to date.

    Up to date is :func:`node_modules_current` (so a ``npm ci`` run before the
    tests, e.g. by CI, is reused). Serialized with ``flock`` on
    ``app_dir/.npm-ci.lock`` so that concurrent xdist workers install once.
    Raises :class:`NodeToolingError` (a failure, never a skip) when node or npm
    is missing or the install fails.
    """
    check_node_version(node_executable(), app_dir)
    npm = _require_tool("npm")
    with _locked(app_dir / _LOCK_NAME):
        if node_modules_current(app_dir):
            return app_dir
        _run_tool([npm, "ci", "--no-audit", "--no-fund"], cwd=app_dir, timeout=NPM_CI_TIMEOUT)
        if not node_modules_current(app_dir):
            raise NodeToolingError(
                f"`npm ci` in {app_dir} succeeded but node_modules does not match package-lock.json"
            )
    return app_dir


def installed_inngest_version(app_dir: Path = APP_DIR) -> str:
    meta = _read_json(app_dir / "node_modules" / "inngest" / "package.json")
    return str(meta["version"])


# --------------------------------------------------------------------------
# The Node app subprocess
# --------------------------------------------------------------------------


class NodeApp:
    """``node server.mjs`` in its own session; stdout+stderr go to ``log_path``."""

    def __init__(
        self,
        *,
        app_dir: Path,
        log_path: Path,
        inngest_base_url: str,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.app_dir = app_dir
        self.log_path = log_path
        self.inngest_base_url = inngest_base_url
        self.extra_env = dict(extra_env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise HarnessError("the node app is not listening yet")
        return self._port

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def serve_url(self) -> str:
        return f"{self.url}{SERVE_PATH}"

    def start(self) -> None:
        if self._proc is not None:
            raise HarnessError("the node app was already started")
        env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        env.update(
            PORT="0",
            INNGEST_DEV="1",
            INNGEST_BASE_URL=self.inngest_base_url,
            NODE_ENV="test",
        )
        env.update(self.extra_env)
        cmd = [node_executable(), "server.mjs"]
        with self.log_path.open("ab") as log:
            log.write(f"=== {' '.join(cmd)} (cwd {self.app_dir})\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C aimed at pytest does not reach it;
                # the fixture's teardown stops it (by this pid).
                start_new_session=True,
            )
        self._wait_listening()

    def _wait_listening(self) -> None:
        proc = self._proc
        if proc is None:
            raise HarnessError("the node app was not started")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            match = _LISTENING.search(self.log_path.read_bytes())
            if match is not None:
                self._port = int(match.group(1))
                break
            code = proc.poll()
            if code is not None:
                raise HarnessError(
                    f"the node app exited with code {code} during startup\n{self.tail()}"
                )
            if time.monotonic() >= deadline:
                raise HarnessError(
                    f"the node app did not listen within {STARTUP_TIMEOUT:.0f}s\n{self.tail()}"
                )
            time.sleep(POLL_INTERVAL)
        res = httpx.get(f"{self.url}/ready", timeout=5.0)
        if res.status_code != 200:
            raise HarnessError(f"GET /ready on the node app -> {res.status_code}: {res.text}")

    def log(self) -> JSONDict:
        """The app's ``GET /log``: ``{"runs": {run_id: {...}}}``."""
        res = httpx.get(f"{self.url}/log", timeout=5.0)
        if res.status_code != 200:
            raise HarnessError(f"GET /log on the node app -> {res.status_code}: {res.text}")
        body = res.json()
        if not isinstance(body, dict):
            raise HarnessError(f"GET /log: not an object: {body!r}")
        return body

    def stop(self) -> None:
        """SIGTERM the pid we started, then SIGKILL after 5 s."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=STOP_GRACE)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== stopped (exit {proc.returncode})\n".encode())

    def tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no node app log)"
        body = "\n".join(text.splitlines()[-lines:])
        return f"--- node app log ({self.log_path}), last {lines} lines ---\n{body}"


# --------------------------------------------------------------------------
# The per-test harness
# --------------------------------------------------------------------------


class NodeCompat(Compat):
    """The Node app + one ``wayline dev`` server, plus the :class:`Compat` API client."""

    def __init__(self, tmp_path: Path, app_dir: Path = APP_DIR) -> None:
        super().__init__(tmp_path)
        self.app_dir = app_dir
        self.node_app: NodeApp | None = None
        self.api_proxy: CountingProxy | None = None
        """With ``start(count_traffic=True)``: the app's requests to the server."""
        self.app_proxy: CountingProxy | None = None
        """With ``start(count_traffic=True)``: the server's calls to the app."""

    def start(
        self,
        *,
        retry_interval: float = 1.0,
        signing_key: str | None = None,
        count_traffic: bool = False,
    ) -> list[JSONDict]:
        """Start the Node app, then ``wayline dev -u <app>``; wait for registration.

        With ``signing_key`` the app runs the SDK in cloud mode
        (``NODE_COMPAT_CLOUD=1``, ``INNGEST_SIGNING_KEY``): it then verifies every
        call's signature and authenticates its sync with the key; the server gets
        ``--signing-key`` and this harness's API client authenticates with it.
        With ``count_traffic`` both directions go through a :class:`CountingProxy`
        (``api_proxy``, ``app_proxy``).
        """
        if self.server is not None or self.node_app is not None:
            raise HarnessError("start() may be called once per test")
        self.app_id = APP_ID
        self.expected_function_ids = [f"{APP_ID}-{fn}" for fn in FUNCTIONS]
        extra_env: dict[str, str] = {}
        if signing_key is not None:
            self.signing_key = signing_key
            self._http.headers["authorization"] = f"Bearer {bearer_token(signing_key)}"
            extra_env = {"NODE_COMPAT_CLOUD": "1", "INNGEST_SIGNING_KEY": signing_key}
        if count_traffic:
            self.api_proxy = CountingProxy(self.server_url)
        node_app = NodeApp(
            app_dir=self.app_dir,
            log_path=self.tmp_path / "node-app.log",
            inngest_base_url=self.api_proxy.url if self.api_proxy else self.server_url,
            extra_env=extra_env,
        )
        self.node_app = node_app
        node_app.start()
        self.app_server = node_app
        self.app_url = node_app.serve_url
        if count_traffic:
            self.app_proxy = CountingProxy(node_app.url)
            self.app_url = f"{self.app_proxy.url}{SERVE_PATH}"
        self.server = DevServer(
            port=self.port,
            db_path=self.db_path,
            log_path=self.log_path,
            app_urls=[self.app_url],
            retry_interval=retry_interval,
            cwd=self.tmp_path,
            extra_args=() if signing_key is None else ("--signing-key", signing_key),
        )
        self.server.start()
        return self.wait_registered()

    def close(self) -> None:
        try:
            super().close()
        finally:
            for proxy in (self.app_proxy, self.api_proxy):
                if proxy is not None:
                    proxy.stop()
            # Compat.close stops app_server, which is node_app once it listens;
            # this covers a node app that failed during startup.
            if self.node_app is not None and self.app_server is None:
                self.node_app.stop()

    # -- app-side records ------------------------------------------------------

    def _require_node_app(self) -> NodeApp:
        if self.node_app is None:
            raise HarnessError("call start() first")
        return self.node_app

    def app_runs(self) -> dict[str, JSONDict]:
        runs = self._require_node_app().log().get("runs") or {}
        if not isinstance(runs, dict):
            raise HarnessError(f"GET /log: runs is not an object: {runs!r}")
        return runs

    def app_run(self, run_id: str) -> JSONDict:
        """What the app recorded for ``run_id`` (handler calls, step bodies)."""
        runs = self.app_runs()
        if run_id not in runs:
            raise AssertionError(f"the node app recorded nothing for run {run_id}; log: {runs}")
        record = runs[run_id]
        if not isinstance(record, dict):
            raise HarnessError(f"GET /log: run {run_id} is not an object: {record!r}")
        return record

    def app_runs_of(self, fn: str) -> dict[str, JSONDict]:
        """App records of every run of local function id ``fn``, by run id."""
        return {rid: rec for rid, rec in self.app_runs().items() if rec.get("fn") == fn}

    def wait_step_status(
        self, run_id: str, step_name: str, status: str, *, timeout: float = RUN_TIMEOUT
    ) -> JSONDict:
        """Wait until the run lists a step called ``step_name`` with ``status``."""
        last: object = None

        def reached() -> bool:
            nonlocal last
            run = self.get_run(run_id)
            last = run.get("steps")
            return any(
                s.get("name") == step_name and s.get("status") == status
                for s in run.get("steps") or []
            )

        wait_until(
            reached,
            timeout=timeout,
            message=lambda: f"run {run_id}: no {status!r} step {step_name!r}; steps: {last}",
        )
        return self.get_run(run_id)

    def report_sections(self) -> list[tuple[str, str]]:
        sections: list[tuple[str, str]] = []
        if self.node_app is not None:
            sections.append(("node app log", self.node_app.tail(120)))
        if self.server is not None:
            sections.append(("wayline dev log", self.server_tail(120)))
        return sections


def step_counts(record: Mapping[str, Any]) -> dict[str, int]:
    """``{step name: body executions}`` from an app record."""
    steps = record.get("steps") or {}
    return {name: int(info["count"]) for name, info in steps.items()}
