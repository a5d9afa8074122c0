"""An app that cannot be reached: the run says so (each failed call, its error and the next
retry), the server log says so once, loudly, with the run, function and step, and neither
shows the secret the URL carries (a token in its query: `wayline dev -u` refuses URLs with
a password outright). Events that matched no function are marked so."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from compat.harness import DevServer, free_port, wait_until
from wayline.cli import main

SECRET = "s3cret-password"


DEAD_PORT = free_port()  # nothing listens there
DEAD = f"http://127.0.0.1:{DEAD_PORT}/api/inngest"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    dev = DevServer(
        port=free_port(),
        db_path=tmp_path / "wayline.db",
        log_path=tmp_path / "dev.log",
        app_urls=[f"http://127.0.0.1:{DEAD_PORT}/api/inngest?token={SECRET}"],
        retry_interval=0.1,
        cwd=tmp_path,
    )
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()


def register_dead_app(http: httpx.Client, dead: str) -> None:
    body = {
        "url": dead,
        "deployType": "ping",
        "appname": "down",
        "sdk": "py:v0.5",
        "v": "0.1",
        "functions": [
            {
                "id": "down-work",
                "name": "work",
                "triggers": [{"event": "down/work"}],
                "steps": {
                    "step": {
                        "id": "step",
                        "name": "step",
                        "runtime": {"type": "http", "url": f"{dead}?fnId=down-work&stepId=step"},
                        "retries": {"attempts": 20},
                    }
                },
            }
        ],
    }
    resp = http.post("/fn/register", json=body)
    assert resp.status_code == 200, resp.text


def test_an_unreachable_app_is_on_the_run_and_said_once_in_the_log(
    server: DevServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        register_dead_app(http, DEAD)
        (event_id,) = http.post("/e/k", json={"name": "down/work"}).json()["ids"]
        (orphan,) = http.post("/e/k", json={"name": "nobody/listens"}).json()["ids"]
        run_id = ""

        def failed_often() -> bool:
            nonlocal run_id
            runs = http.get(f"/v1/events/{event_id}/runs").json()["data"]
            run_id = runs[0]["run_id"] if runs else ""
            run = http.get(f"/v1/runs/{run_id}").json()["data"] if run_id else {}
            return len(run.get("call_failures", [])) >= 4

        wait_until(failed_often)
        run: dict[str, Any] = http.get(f"/v1/runs/{run_id}").json()["data"]
        assert http.get(f"/v1/events/{event_id}").json()["data"]["matched"] == 1
        unmatched = http.get(f"/v1/events/{orphan}").json()["data"]
        assert unmatched["matched"] == 0 and unmatched["functions"] == []

    assert run["status"] == "Running" and run["steps"] == []
    first = run["call_failures"][0]
    assert first["error"]["message"] == f"could not reach {DEAD}: connection refused"
    assert first["retry_at"] is not None and run["next_retry_at"] is not None
    assert [f["attempt"] for f in run["call_failures"][:3]] == [1, 2, 3]

    assert main(["runs", "show", run_id, "--url", server.url]) == 0
    shown = capsys.readouterr().out
    assert "Failed calls to the app (outside any step):" in shown
    assert "Next retry:" in shown and "connection refused" in shown

    time.sleep(1.5)  # more failed calls, and more sync attempts of the -u URL (one a second)
    # The harness writes the command line it ran (with the -u URL) as "=== start ...".
    lines = [line for line in server.log_path.read_text().splitlines() if line[:3] != "==="]
    log = "\n".join(lines)
    assert SECRET not in log and SECRET not in json.dumps(run)
    loud = [line for line in log.splitlines() if "cannot reach app at" in line]
    assert len(loud) == 2, loud
    calls, syncs = (
        [line for line in loud if f"wayline.{name}:" in line] for name in ("invoker", "discovery")
    )
    (call,) = calls
    assert f"WARNING wayline.invoker: cannot reach app at {DEAD}: connection refused" in call
    assert f"run_id={run_id}" in call
    assert "function_id=down-work" in call
    assert "step_id=" not in call  # a discovery call: no step yet
    (sync,) = syncs
    assert f"WARNING wayline.discovery: cannot reach app at {DEAD}: connection refused" in sync
