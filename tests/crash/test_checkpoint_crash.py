"""Checkpointing survives ``kill -9`` of the app mid-call (issue 10: crash after reported steps).

A real ``wayline dev`` and a Wayline SDK app (``ckpt_app.py``), each its own process. The
app's function runs ten steps in one checkpointing call; step ``s<STALL>`` stalls the first
time it runs. Once the server shows every earlier step acknowledged (stored by its
checkpoint), the app is SIGKILLed with ``s<STALL>`` in flight, and started again. Asserted:

* the run completes, its output carries the very tokens the acknowledged steps returned
  before the kill (no acknowledged memo was rewritten);
* every acknowledged step's body ran exactly once, the step in flight at most twice, the
  steps after it once (bodies are counted in a file the app appends to).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from compat.harness import SERVE_PATH, DevServer, free_port, wait_until

from .test_crash import AppProcess, Client

pytestmark = pytest.mark.crash

APP = Path(__file__).with_name("ckpt_app.py")
STEPS = 10


def _run(client: Client, event_id: str) -> dict[str, Any] | None:
    runs = client.get(f"/v1/events/{event_id}/runs")
    if not runs:
        return None
    run: dict[str, Any] = client.get(f"/v1/runs/{runs[0]['run_id']}")
    return run


def _acked(run: dict[str, Any] | None) -> dict[str, str]:
    steps = (run or {}).get("steps") or []
    return {s["name"]: s["output"] for s in steps if s.get("status") == "Completed"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stall", [0, 6])
def test_acknowledged_steps_survive_kill_9_of_the_app(tmp_path: Path, stall: int) -> None:
    server_port, app_port = free_port(), free_port()
    server = DevServer(
        port=server_port,
        db_path=tmp_path / "wayline.db",
        log_path=tmp_path / "wayline-dev.log",
        app_urls=[f"http://127.0.0.1:{app_port}{SERVE_PATH}"],
        retry_interval=0.3,
        cwd=tmp_path,
    )
    executed = tmp_path / "executed.log"
    marker = tmp_path / "stalled"
    app = AppProcess(
        app_port,
        server.url,
        executed,
        tmp_path / "app.log",
        script=APP,
        args=("--stall", str(stall), "--marker", str(marker)),
    )
    client = Client(server.url)
    app.start()
    server.start()
    try:
        wait_until(
            lambda: any(
                f["id"] == "ckpt-crash-steps" for f in client.get("/v1/apps/ckpt-crash/functions")
            ),
            timeout=20,
            message="function never registered",
        )
        (event_id,) = client.send([{"name": "ckpt-crash/start", "data": {}}], key="start")
        before = [f"s{i}" for i in range(stall)]
        wait_until(
            lambda: marker.exists() and set(_acked(_run(client, event_id))) == set(before),
            timeout=30,
            message=lambda: f"never stalled at s{stall}: {_run(client, event_id)}",
        )
        tokens = _acked(_run(client, event_id))
        app.kill9()  # s<stall> is in flight: its body started, nothing acknowledged it
        app.start()
        wait_until(
            lambda: (_run(client, event_id) or {}).get("status") == "Completed",
            timeout=60,
            message=lambda: f"run never completed: {_run(client, event_id)}\n{server.tail(30)}",
        )
        run = _run(client, event_id)
        assert run is not None
        output = run["output"]
        assert [o.split("-")[0] for o in output] == [f"s{i}" for i in range(STEPS)]
        assert output[:stall] == [tokens[name] for name in before]
        counts = Counter(executed.read_text().split())
        assert {name: counts[name] for name in before} == dict.fromkeys(before, 1)
        assert counts[f"s{stall}"] == 2  # in flight at the kill: ran again, once
        assert all(counts[f"s{i}"] == 1 for i in range(stall + 1, STEPS)), counts
    finally:
        server.stop()
        app.stop()


@pytest.mark.timeout(120)
def test_a_call_orphaned_by_a_server_crash_is_fenced_when_it_resumes(tmp_path: Path) -> None:
    """``kill -9`` of ``wayline dev`` while a checkpointing call runs step s3. The restarted
    server dispatches the run again; that call finishes it. The orphaned call, released
    afterwards, is refused at its next checkpoint (409) and runs nothing more."""
    stall = 3
    server_port, app_port = free_port(), free_port()
    server = DevServer(
        port=server_port,
        db_path=tmp_path / "wayline.db",
        log_path=tmp_path / "wayline-dev.log",
        app_urls=[f"http://127.0.0.1:{app_port}{SERVE_PATH}"],
        retry_interval=0.3,
        cwd=tmp_path,
    )
    executed, marker, release = (tmp_path / n for n in ("executed.log", "stalled", "release"))
    app = AppProcess(
        app_port,
        server.url,
        executed,
        tmp_path / "app.log",
        script=APP,
        args=("--stall", str(stall), "--marker", str(marker), "--release", str(release)),
    )
    client = Client(server.url)
    app.start()
    server.start()
    try:
        wait_until(
            lambda: any(
                f["id"] == "ckpt-crash-steps" for f in client.get("/v1/apps/ckpt-crash/functions")
            ),
            timeout=20,
            message="function never registered",
        )
        (event_id,) = client.send([{"name": "ckpt-crash/start", "data": {}}], key="start")
        before = [f"s{i}" for i in range(stall)]
        wait_until(
            lambda: marker.exists() and set(_acked(_run(client, event_id))) == set(before),
            timeout=30,
            message=lambda: f"never stalled at s{stall}: {_run(client, event_id)}",
        )
        tokens = _acked(_run(client, event_id))
        run_id = (_run(client, event_id) or {})["run_id"]
        server.kill9()
        server.start()
        wait_until(
            lambda: (_run(client, event_id) or {}).get("status") == "Completed",
            timeout=60,
            message=lambda: f"run never completed: {_run(client, event_id)}\n{server.tail(30)}",
        )
        release.touch()  # the orphaned call's s3 returns: its checkpoint must be refused
        wait_until(
            lambda: (
                f'run {run_id}: the server refused step "s{stall}"'
                in (tmp_path / "app.log").read_text()
            ),
            timeout=30,
            message=lambda: (tmp_path / "app.log").read_text()[-3000:],
        )
        run = _run(client, event_id)
        assert run is not None and run["status"] == "Completed"
        assert run["output"][:stall] == [tokens[name] for name in before]
        counts = Counter(executed.read_text().split())
        assert {name: counts[name] for name in before} == dict.fromkeys(before, 1)
        assert counts[f"s{stall}"] == 2  # once per call
        assert all(counts[f"s{i}"] == 1 for i in range(stall + 1, STEPS)), counts
    finally:
        server.stop()
        app.stop()
