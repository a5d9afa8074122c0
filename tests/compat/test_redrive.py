"""Rerun and redrive of a failed run with an app on the official ``inngest`` SDK.

The app counts how often each step body runs: a redrive must not run steps 1-2 again
(their results come back to the SDK as ordinary memos), only the failed step 3.
"""

from __future__ import annotations

import threading

import inngest
import pytest

from .harness import COMPLETED, FAILED, Compat, Tally, steps_named, wait_until

pytestmark = pytest.mark.compat

EVENT = "compat/redrive"


def serve_flaky(compat: Compat, tally: Tally, fixed: threading.Event) -> None:
    client = compat.client()

    @client.create_function(fn_id="flaky", retries=0, trigger=inngest.TriggerEvent(event=EVENT))
    def flaky(ctx: inngest.ContextSync) -> int:
        def step(name: str, value: int) -> int:
            tally.incr(name)
            if name == "three" and not fixed.is_set():
                raise RuntimeError("step three is broken until the fix is deployed")
            return value

        one = ctx.step.run("one", step, "one", 1)
        two = ctx.step.run("two", step, "two", 2)
        return one + two + ctx.step.run("three", step, "three", 3)

    compat.serve("fastapi", client, [flaky])


def test_redrive_reruns_only_the_failed_step(compat: Compat) -> None:
    tally, fixed = Tally(), threading.Event()
    serve_flaky(compat, tally, fixed)
    old = compat.wait_run(compat.send(EVENT), "flaky", status=FAILED)
    assert (tally.count("one"), tally.count("two"), tally.count("three")) == (1, 1, 1)

    fixed.set()
    res = compat.http.post(f"/v1/runs/{old['run_id']}/rerun", json={"from": "failed_step"})
    assert res.status_code == 201, res.text
    new_id = res.json()["data"]["run_id"]
    new = compat.wait_run_by_id(new_id, status=COMPLETED)

    assert new["output"] == 6
    assert (tally.count("one"), tally.count("two"), tally.count("three")) == (1, 1, 2)
    assert new["rerun_of"] == old["run_id"]
    assert steps_named(new, "one")[0]["seeded"] and steps_named(new, "two")[0]["seeded"]
    assert not steps_named(new, "three")[0]["seeded"]
    assert "seeded_steps_not_in_code" not in new
    assert compat.get_run(old["run_id"])["reruns"] == [new_id]

    # A run that did not fail cannot be redriven; a rerun from the start runs it all.
    again = compat.http.post(f"/v1/runs/{new_id}/rerun", json={"from": "failed_step"})
    assert again.status_code == 409 and "only a Failed run" in again.json()["error"]
    fresh = compat.http.post(f"/v1/runs/{new_id}/rerun", json={"from": "start"})
    assert fresh.status_code == 201, fresh.text
    compat.wait_run_by_id(fresh.json()["data"]["run_id"], status=COMPLETED)
    assert (tally.count("one"), tally.count("two"), tally.count("three")) == (2, 2, 3)


def test_bulk_redrive_counts_exactly_the_failed_runs_of_the_window(compat: Compat) -> None:
    tally, fixed = Tally(), threading.Event()
    serve_flaky(compat, tally, fixed)
    before = compat.wait_run(compat.send(EVENT), "flaky", status=FAILED)  # outside the window
    in_window = [compat.wait_run(compat.send(EVENT), "flaky", status=FAILED) for _ in range(2)]
    fixed.set()
    compat.wait_run(compat.send(EVENT), "flaky", status=COMPLETED)
    body = {
        "function_id": compat.function_id("flaky"),
        "status": ["Failed"],
        "since": before["ended_at"],  # the first run was created before it ended
        "until": "2100-01-01T00:00:00Z",
        "from": "failed_step",
    }
    dry = compat.http.post("/v1/reruns", json={**body, "dry_run": True}).json()["data"]
    assert dry["count"] == 2
    assert sorted(dry["run_ids"]) == sorted(r["run_id"] for r in in_window)

    job = compat.http.post("/v1/reruns", json=body)
    assert job.status_code == 202, job.text
    job_id = job.json()["data"]["id"]
    wait_until(lambda: compat.http.get(f"/v1/reruns/{job_id}").json()["data"]["status"] == "done")
    progress = compat.http.get(f"/v1/reruns/{job_id}").json()["data"]
    assert sorted(progress["reruns"]) == sorted(r["run_id"] for r in in_window)
    for new_id in progress["reruns"].values():
        assert compat.wait_run_by_id(new_id, status=COMPLETED)["output"] == 6
    # Steps one and two ran once per original run (4 runs), never for a redrive.
    assert tally.count("one") == 4 and tally.count("three") == 4 + 2
    assert compat.get_run(before["run_id"])["reruns"] == []
