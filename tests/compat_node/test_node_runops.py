"""Redrive and signals with the official ``inngest`` npm SDK (app/server.mjs)."""

from __future__ import annotations

import httpx
import pytest

from compat.harness import COMPLETED, FAILED, step_named

from .node_harness import NodeCompat, step_counts

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]


def total_steps(node_compat: NodeCompat, fn: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for record in node_compat.app_runs_of(fn).values():
        for name, count in step_counts(record).items():
            totals[name] = totals.get(name, 0) + count
    return totals


def test_redrive_reruns_only_the_failed_step(node_compat: NodeCompat) -> None:
    old = node_compat.wait_run(node_compat.send("node/redrive"), status=FAILED)
    assert total_steps(node_compat, "redrivable") == {"one": 1, "two": 1, "three": 1}

    assert node_compat.node_app is not None
    assert httpx.post(f"{node_compat.node_app.url}/fix", timeout=5).status_code == 200
    res = node_compat.http.post(f"/v1/runs/{old['run_id']}/rerun", json={"from": "failed_step"})
    assert res.status_code == 201, res.text
    new = node_compat.wait_run_by_id(res.json()["data"]["run_id"], status=COMPLETED)

    assert new["output"] == {"sum": 6}
    assert total_steps(node_compat, "redrivable") == {"one": 1, "two": 1, "three": 2}
    assert step_named(new, "one")["seeded"] and step_named(new, "two")["seeded"]


def test_a_signal_resumes_the_waiting_run(node_compat: NodeCompat) -> None:
    event_id = node_compat.send("node/signal", {"id": 7})
    node_compat.wait_run(event_id, status="Running")
    wait_for = node_compat.current_run(event_id)
    assert wait_for is not None
    node_compat.wait_step_status(wait_for["run_id"], "approval", "Waiting")
    sent = node_compat.http.post("/v1/signals", json={"signal": "approve-7", "data": {"ok": 1}})
    assert sent.status_code == 200, sent.text
    run = node_compat.wait_run_by_id(wait_for["run_id"], status=COMPLETED)
    assert run["output"] == {"got": {"signal": "approve-7", "data": {"ok": 1}}}
    assert step_named(run, "approval")["op"] == "WaitForSignal"
