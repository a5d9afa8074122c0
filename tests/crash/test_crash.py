"""The bounded crash test: `kill -9` of the server and of the app at seeded random points.

A real ``wayline dev`` and an official inngest-py app, each its own process. A client
sends ``RUNS`` trigger events in batches (a failed request is retried with the same id
seed, as the SDKs do) and the "go" event half of the runs wait for; meanwhile the server
and the app are killed with SIGKILL and restarted, ``KILLS`` times in all, at times drawn
from the seed. Each run: step "a" (returns a fresh random token) -> sleep 1 s ->
waitForEvent (3 s) -> invoke child (step "c") -> step "b". Asserted at the end:

* no lost run: every event has exactly one parent run, Completed, with its output;
* no changed memo: the token step "a" returned, seen in the middle of the chaos, is the
  one in the final output;
* every finished run (parent and child) has its ``inngest/function.finished`` event
  exactly once, and every invoke parent completed with its child's output;
* duplicate step executions are bounded by the calls that were in flight at a kill.

``WAYLINE_CRASH_SEED`` picks the seed (default 1), ``WAYLINE_CRASH_RUNS`` the run count.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from compat.harness import SERVE_PATH, DevServer, free_port, wait_until
from wayline.engine.ids import seeded_event_id

pytestmark = pytest.mark.crash

SEED = int(os.environ.get("WAYLINE_CRASH_SEED", "1"))
RUNS = int(os.environ.get("WAYLINE_CRASH_RUNS", "200"))
KILLS = 6
BATCH = 20
APP = Path(__file__).with_name("app.py")


class AppProcess:
    """The app as a subprocess on a fixed port, so it can be killed and restarted."""

    def __init__(
        self,
        port: int,
        server_url: str,
        log: Path,
        out: Path,
        *,
        script: Path = APP,
        args: tuple[str, ...] = (),
    ) -> None:
        self.port, self.server_url, self.log, self.out = port, server_url, log, out
        self.script, self.args = script, args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cmd = [sys.executable, str(self.script), "--port", str(self.port)]
        cmd += ["--server", self.server_url, "--log", str(self.log), *self.args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        with self.out.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        url = f"http://127.0.0.1:{self.port}{SERVE_PATH}"
        wait_until(lambda: _answers(url), timeout=20, message="the crash app never came up")

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill9()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def _seed_header(key: str) -> str:
    entropy = hashlib.sha256(key.encode()).digest()[:10]
    return f"{int(time.time() * 1000)},{base64.b64encode(entropy).decode()}"


class Client:
    """Sends events like an SDK: one seed per request, kept across retries."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=5)

    def send(self, events: list[dict[str, Any]], key: str) -> list[str]:
        seed = _seed_header(key)
        for _ in range(200):
            try:
                res = self.http.post(
                    "/e/dev", json=events, headers={"x-inngest-event-id-seed": seed}
                )
                if res.status_code == 200:
                    ids: list[str] = res.json()["ids"]
                    assert ids == [seeded_event_id(seed, i) for i in range(1, len(events) + 1)]
                    return ids
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # the server is down or restarting
        pytest.fail(f"could not send {key}")

    def get(self, path: str, **params: Any) -> Any:
        for _ in range(200):
            try:
                res = self.http.get(path, params=params)
                if res.status_code == 200:
                    return res.json()["data"]
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"GET {path} kept failing")


@pytest.mark.timeout(300)
def test_no_run_memo_or_finish_event_is_lost_under_kill_9(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    server_port, app_port = free_port(), free_port()
    server = DevServer(
        port=server_port,
        db_path=tmp_path / "wayline.db",
        log_path=tmp_path / "wayline-dev.log",
        app_urls=[f"http://127.0.0.1:{app_port}{SERVE_PATH}"],
        retry_interval=0.5,
        cwd=tmp_path,
    )
    app = AppProcess(app_port, server.url, tmp_path / "executed.log", tmp_path / "app.log")
    client = Client(server.url)
    app.start()
    server.start()
    try:
        wait_until(
            lambda: (
                {"crash-parent", "crash-child"}
                <= {f["id"] for f in client.get("/v1/apps/crash/functions")}
            ),
            timeout=20,
            message="functions never registered",
        )
        event_ids, tokens, kills = _chaos(rng, server, app, client)
        _wait_all_done(client, event_ids, server)
        _check(client, event_ids, tokens, tmp_path / "executed.log", kills)
    finally:
        server.stop()
        app.stop()


def _chaos(
    rng: random.Random, server: DevServer, app: AppProcess, client: Client
) -> tuple[dict[int, str], dict[int, str], list[str]]:
    """Send every event while killing the server and the app at seeded times."""
    start = time.monotonic()
    kill_at = sorted(rng.uniform(0.5, 10.0) for _ in range(KILLS))
    victims = [rng.choice(["server", "app"]) for _ in range(KILLS)]
    event_ids: dict[int, str] = {}
    go_due: list[tuple[float, int]] = []
    tokens: dict[int, str] = {}
    kills: list[str] = []
    batches = [list(range(i, min(i + BATCH, RUNS))) for i in range(0, RUNS, BATCH)]
    while batches or go_due or kill_at:
        now = time.monotonic() - start
        if kill_at and now >= kill_at[0]:
            kill_at.pop(0)
            victim = victims.pop(0)
            kills.append(f"{victim} at {now:.1f}s")
            tokens.update(_snapshot(client, event_ids, rng))
            if victim == "server":
                server.kill9()
                server.start()
            else:
                app.kill9()
                app.start()
        if batches:
            ns = batches.pop(0)
            events = [{"name": "crash/start", "data": {"n": n}} for n in ns]
            for n, event_id in zip(ns, client.send(events, key=f"start-{ns[0]}"), strict=True):
                event_ids[n] = event_id
                if n % 2 == 0:
                    go_due.append((now + 1.5, n))
        for due, n in [g for g in go_due if g[0] <= now]:
            go_due.remove((due, n))
            client.send([{"name": "crash/go", "data": {"n": n}}], key=f"go-{n}")
        time.sleep(0.25)
    return event_ids, tokens, kills


def _snapshot(client: Client, event_ids: dict[int, str], rng: random.Random) -> dict[int, str]:
    """The memo of step "a" of a few runs, as the API shows it right now."""
    seen: dict[int, str] = {}
    for n in rng.sample(sorted(event_ids), min(10, len(event_ids))):
        for summary in client.get(f"/v1/events/{event_ids[n]}/runs"):
            run = client.get(f"/v1/runs/{summary['run_id']}")
            for step in run["steps"]:
                if step["name"] == "a" and step["status"] == "Completed":
                    seen[n] = step["output"]
    return seen


def _parent(client: Client, event_id: str) -> list[dict[str, Any]]:
    runs = client.get(f"/v1/events/{event_id}/runs")
    return [r for r in runs if r["function_id"] == "crash-parent"]


def _wait_all_done(client: Client, event_ids: dict[int, str], server: DevServer) -> None:
    pending = dict(event_ids)

    def done() -> bool:
        for n, event_id in list(pending.items()):
            runs = _parent(client, event_id)
            if runs and all(r["status"] == "Completed" for r in runs):
                del pending[n]
        return not pending

    deadline = time.monotonic() + 150
    while not done():
        assert time.monotonic() < deadline, (
            f"{len(pending)} runs never completed; log:\n{server.tail(40)}"
        )
        time.sleep(1.0)


def _check(
    client: Client, event_ids: dict[int, str], tokens: dict[int, str], log: Path, kills: list[str]
) -> None:
    where = f"seed {SEED}, kills {kills}"
    parents: dict[str, int] = {}
    for n, event_id in event_ids.items():
        runs = _parent(client, event_id)
        assert len(runs) == 1, f"{where}: event {n} has {len(runs)} parent runs"
        output = runs[0]["output"]
        assert output[0].startswith(f"a-{n}-") and output[2:] == [f"c-{n}", f"b-{n}"], output
        if n in tokens:
            assert output[0] == tokens[n], f"{where}: run of event {n}: memo of step a changed"
        parents[runs[0]["run_id"]] = n
    finished = Counter(
        e["data"]["run_id"] for e in _all_events(client, "inngest/function.finished")
    )
    for run_id in parents:
        assert finished[run_id] == 1, f"{where}: run {run_id}: {finished[run_id]} finish events"
    children = [r for r, count in finished.items() if r not in parents]
    assert len(children) == len(parents), f"{where}: {len(children)} child runs finished"
    assert all(finished[c] == 1 for c in children), f"{where}: a child finished twice"
    executed = Counter(log.read_text().split("\n")) - Counter({"": 10**9})
    extra = sum(count - 1 for count in executed.values())
    assert len(executed) == 3 * len(event_ids), f"{where}: step bodies {len(executed)}"
    # At-least-once: a kill re-runs only the calls that were in flight at that moment.
    assert extra <= len(kills) * BATCH * 2, f"{where}: {extra} repeated step executions"
    print(f"crash test {where}: {len(event_ids)} runs, {extra} repeated step executions")


def _all_events(client: Client, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"name": name, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/events", **params)
        found.extend(page)
        if len(page) < 1000:
            return found
        cursor = page[-1]["internal_id"]
