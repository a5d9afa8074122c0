"""npm ``inngest`` v4 async checkpointing against ``wayline dev`` (issue 10, item 1).

The server sends ``ctx.fn_id`` / ``ctx.qi_id``; the SDK then runs consecutive steps in
one call and reports each to ``POST /v1/checkpoint/{run}/async``. Both directions pass
through counting proxies (``start(count_traffic=True)``), so the tests count, at the
server's edge, the SDK calls and the checkpoints a run took.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from compat.harness import CANCELLED, COMPLETED, step_named, wait_until
from wayline.engine.ids import hash_step_id

from .counting_proxy import CountingProxy, Exchange
from .node_harness import NodeCompat, step_counts

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]

CHECKPOINT = "/v1/checkpoint/"


@pytest.fixture
def counted(node_compat_unstarted: NodeCompat) -> NodeCompat:
    node_compat_unstarted.start(count_traffic=True)
    return node_compat_unstarted


def _proxies(compat: NodeCompat) -> tuple[CountingProxy, CountingProxy]:
    assert compat.api_proxy is not None and compat.app_proxy is not None
    return compat.api_proxy, compat.app_proxy


def _calls(compat: NodeCompat) -> list[Exchange]:
    """SDK calls (server -> app) made so far."""
    return _proxies(compat)[1].exchanges(method="POST", path_part="/api/inngest")


def _checkpoints(compat: NodeCompat, run_id: str) -> list[Exchange]:
    return _proxies(compat)[0].exchanges(method="POST", path_part=f"{CHECKPOINT}{run_id}/async")


def _run(compat: NodeCompat, event: str, data: dict[str, Any], status: str) -> dict[str, Any]:
    return compat.wait_run(compat.send(event, data), status=status)


def test_sequential_steps_take_one_call_and_one_checkpoint_each(counted: NodeCompat) -> None:
    run = _run(counted, "node/many", {"n": 10}, COMPLETED)

    assert run["output"] == {"n": 10, "total": 45}
    assert [s["name"] for s in run["steps"]] == [f"s{i}" for i in range(10)]
    assert step_named(run, "s3")["output"] == {"i": 3, "pad": ""}
    checkpoints = _checkpoints(counted, run["run_id"])
    assert [c.status for c in checkpoints] == [200] * 10
    # The SDK echoes the call's ctx.fn_id, ctx.qi_id and x-request-id header.
    first = json.loads(checkpoints[0].body)
    assert first["fn_id"] == "node-compat-many-steps"
    assert first["qi_id"] == first["request_id"] and first["qi_id"].startswith(run["run_id"])
    assert len(_calls(counted)) == 1
    record = counted.app_run(run["run_id"])
    assert record["handler"] == 1
    assert step_counts(record) == {f"s{i}": 1 for i in range(10)}


def test_stepless_function_completes_in_one_call_without_checkpoints(counted: NodeCompat) -> None:
    run = _run(counted, "node/no-steps", {}, COMPLETED)

    assert run["output"] == {"hello": "world"}
    assert _checkpoints(counted, run["run_id"]) == []
    assert len(_calls(counted)) == 1


def test_sleep_between_checkpointed_steps(counted: NodeCompat) -> None:
    run = _run(counted, "node/sleep-steps", {}, COMPLETED)

    assert run["output"] == {"c": "ABC"}
    assert [s["name"] for s in run["steps"]] == ["a", "nap", "b", "c"]
    # a is checkpointed, the call ends with the sleep; the wake-up call carries a and the
    # sleep's memo and checkpoints b and c.
    assert [c.status for c in _checkpoints(counted, run["run_id"])] == [200] * 3
    assert len(_calls(counted)) == 2
    record = counted.app_run(run["run_id"])
    assert step_counts(record) == {"a": 1, "b": 1, "c": 1}
    assert record["handler"] == 2


def test_trailing_steps_checkpoint_again_after_a_parallel_group(counted: NodeCompat) -> None:
    run = _run(counted, "node/parallel-trail", {}, COMPLETED)

    assert run["output"] == {"sum": 33}
    record = counted.app_run(run["run_id"])
    assert step_counts(record) == {"p": 1, "q": 1, "t1": 1, "t2": 1, "t3": 1}
    # discovery plans p and q; one targeted call each (never checkpointed); then one
    # discovery runs t1..t3 inline, checkpointing each (resumeAfterParallelism).
    assert [c.status for c in _checkpoints(counted, run["run_id"])] == [200] * 3
    assert len(_calls(counted)) == 4


def test_retried_step_after_checkpoints_keeps_what_was_saved(counted: NodeCompat) -> None:
    run = _run(counted, "node/retry-mid", {}, COMPLETED)

    assert run["output"] == {"sum": 15}
    record = counted.app_run(run["run_id"])
    # one and two were checkpointed: the retry replays them instead of running them again.
    assert step_counts(record) == {"one": 1, "two": 1, "shaky": 2, "four": 1, "five": 1}
    shaky = step_named(run, "shaky")
    assert shaky["status"] == COMPLETED
    assert shaky["output"] == 3
    assert record["attempts"][0] == 0
    assert 1 in record["attempts"]  # the retry of shaky was attempt 1
    assert all(c.status == 200 for c in _checkpoints(counted, run["run_id"]))


def test_cancel_during_a_checkpointed_call_stops_it_at_the_next_checkpoint(
    counted: NodeCompat,
) -> None:
    event_id = counted.send("node/held", {})
    run_id = ""

    def gate_entered() -> bool:
        nonlocal run_id
        runs = counted.runs_for_event(event_id)
        if not runs:
            return False
        run_id = str(runs[0]["run_id"])
        return "gate" in (counted.app_runs().get(run_id, {}).get("steps") or {})

    wait_until(gate_entered, message="the held step never started")
    assert counted.http.delete(f"/v1/runs/{run_id}").status_code == 200
    assert counted.node_app is not None
    released = httpx.post(f"{counted.node_app.url}/release", params={"run": run_id}, timeout=5)
    assert released.status_code == 200

    def refused() -> bool:
        return any(c.status == 409 for c in _checkpoints(counted, run_id))

    wait_until(refused, message="the checkpoint after the cancel was not refused")
    run = counted.get_run(run_id)
    assert run["status"] == CANCELLED
    assert [c.status for c in _checkpoints(counted, run_id)] == [200, 409]
    record = counted.app_run(run_id)
    assert "after" not in record["steps"]  # the SDK halted at the 409
    assert hash_step_id("gate") not in counted.http.get(f"/v0/runs/{run_id}/actions").json()


def test_two_hundred_steps_one_call_no_deadlock(counted: NodeCompat) -> None:
    """The worker awaits the app while the API saves checkpoints into the same SQLite
    store: no lock or transaction may span the call, or this run would stall."""
    run = _run(counted, "node/many", {"n": 200}, COMPLETED)

    assert run["output"] == {"n": 200, "total": 199 * 200 // 2}
    assert len(_calls(counted)) == 1
    checkpoints = _checkpoints(counted, run["run_id"])
    assert [c.status for c in checkpoints] == [200] * 200
    # Linear: each checkpoint carries one step, whatever came before it.
    assert max(c.request_bytes for c in checkpoints) < 2 * checkpoints[0].request_bytes


def test_the_switch_off_restores_one_call_per_step(
    node_compat_unstarted: NodeCompat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLINE_CHECKPOINTING", "0")  # read by the wayline dev subprocess
    node_compat_unstarted.start(count_traffic=True)
    run = _run(node_compat_unstarted, "node/many", {"n": 5}, COMPLETED)

    assert run["output"] == {"n": 5, "total": 10}
    assert _checkpoints(node_compat_unstarted, run["run_id"]) == []
    assert len(_calls(node_compat_unstarted)) == 6


def test_max_runtime_hands_the_next_step_back_as_planned(counted: NodeCompat) -> None:
    """JS ``maxRuntime`` elapsed: the SDK returns the next step unexecuted
    (``206 [StepPlanned]``); it runs in a targeted call and the run goes on."""
    run = _run(counted, "node/short-runtime", {}, COMPLETED)

    assert run["output"] == {"sum": 3}
    record = counted.app_run(run["run_id"])
    assert step_counts(record) == {"r1": 1, "r2": 1, "r3": 1}
    targeted = [c for c in _calls(counted) if not c.path.endswith("stepId=step")]
    assert targeted, "no step was handed back and run in a targeted call"
    assert all(c.status == 200 for c in _checkpoints(counted, run["run_id"]))
