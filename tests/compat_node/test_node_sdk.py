"""The official ``inngest`` npm SDK (app/server.mjs, plain node:http) on ``wayline dev``.

Each test starts its own Node app and server (fixture ``node_compat``), sends
one trigger event and checks the run as the server reports it
(``GET /v1/runs/{id}``) and what the app recorded for that run (``GET /log``:
handler invocations and step-body executions).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from compat.harness import COMPLETED, FAILED, step_named, steps_named, wait_until

from .node_harness import APP_ID, FUNCTIONS, NodeCompat, installed_inngest_version, step_counts

pytestmark = [
    pytest.mark.compat,
    # The first test in a fresh checkout also runs `npm ci` (session fixture).
    pytest.mark.timeout(300),
]

PINNED_INNGEST = "4.24.0"


def _start(node_compat: NodeCompat, event: str, data: dict[str, Any]) -> str:
    """Send ``event`` and return the id of the single run it starts (once it exists)."""
    event_id = node_compat.send(event, data)
    runs: list[dict[str, Any]] = []

    def started() -> bool:
        nonlocal runs
        runs = node_compat.runs_for_event(event_id)
        return bool(runs)

    wait_until(started, message=f"no run for event {event_id}")
    assert len(runs) == 1, runs
    return str(runs[0]["run_id"])


def test_sdk_version_is_the_pinned_one(node_app_dir: Path) -> None:
    manifest = json.loads((node_app_dir / "package.json").read_text())
    lock = json.loads((node_app_dir / "package-lock.json").read_text())
    assert manifest["dependencies"] == {"inngest": PINNED_INNGEST}
    assert lock["packages"]["node_modules/inngest"]["version"] == PINNED_INNGEST
    assert installed_inngest_version(node_app_dir) == PINNED_INNGEST


def test_functions_are_registered(node_compat: NodeCompat) -> None:
    fns = node_compat.wait_registered()
    by_id = {fn["id"]: fn for fn in fns}
    assert set(by_id) == {f"{APP_ID}-{fn}" for fn in FUNCTIONS}
    assert {fn["app_id"] for fn in fns} == {APP_ID}
    assert by_id[f"{APP_ID}-two-steps"]["triggers"] == [{"event": "node/two-steps"}]
    assert by_id[f"{APP_ID}-flaky"]["retries"] == 1
    assert by_id[f"{APP_ID}-doomed"]["retries"] == 3


def test_two_steps(node_compat: NodeCompat) -> None:
    run = node_compat.wait_run(node_compat.send("node/two-steps"), status=COMPLETED)

    assert run["function_id"] == f"{APP_ID}-two-steps"
    assert run["output"] == {"a": 1, "b": {"prev": 1, "value": 2}}
    assert [s["name"] for s in run["steps"]] == ["a", "b"]
    assert step_named(run, "a")["output"] == 1
    assert step_named(run, "b")["output"] == {"prev": 1, "value": 2}
    assert {s["status"] for s in run["steps"]} == {COMPLETED}
    record = node_compat.app_run(run["run_id"])
    # Each body ran once, in one call: the SDK checkpointed each step and went on
    # (WAYLINE_CHECKPOINTING=0 would take one call per step plus the final call).
    assert step_counts(record) == {"a": 1, "b": 1}
    assert record["handler"] == 1


def test_no_steps(node_compat: NodeCompat) -> None:
    run = node_compat.wait_run(node_compat.send("node/no-steps"), status=COMPLETED)

    assert run["output"] == {"hello": "world"}
    assert run["steps"] == []
    assert node_compat.app_run(run["run_id"])["handler"] == 1


def test_sleep_really_waits(node_compat: NodeCompat) -> None:
    run = node_compat.wait_run(node_compat.send("node/sleepy"), status=COMPLETED)

    record = node_compat.app_run(run["run_id"])
    assert step_counts(record) == {"before": 1, "after": 1}
    (before_at,) = record["steps"]["before"]["at"]
    (after_at,) = record["steps"]["after"]["at"]
    slept = (after_at - before_at) / 1000
    assert 1.9 <= slept < 6.0, f"step.sleep('nap', '2s') slept {slept:.2f}s"
    assert 1900 <= run["output"]["slept_ms"] < 6000
    nap = step_named(run, "nap")
    assert nap["op"] == "Sleep"
    assert nap["status"] == COMPLETED
    assert [s["name"] for s in run["steps"]] == ["before", "nap", "after"]


def test_wait_for_event_fulfilled(node_compat: NodeCompat) -> None:
    run_id = _start(node_compat, "node/wait", {"id": "order-1"})
    node_compat.wait_step_status(run_id, "wait", "Waiting")

    # `match: "data.id"` -> only an approve event with the same data.id resumes it.
    node_compat.send("node/approve", {"id": "order-2", "approved": False})
    approve_id = node_compat.send("node/approve", {"id": "order-1", "approved": True})
    run = node_compat.wait_run_by_id(run_id, status=COMPLETED, timeout=10)

    event = run["output"]["event"]
    assert event["name"] == "node/approve"
    assert event["data"] == {"id": "order-1", "approved": True}
    assert event["id"] == approve_id
    wait = step_named(run, "wait")
    assert wait["op"] == "WaitForEvent"
    assert wait["status"] == COMPLETED
    assert node_compat.app_run(run_id)["handler"] == 2


def test_wait_for_event_times_out(node_compat: NodeCompat) -> None:
    started = time.monotonic()
    run_id = _start(node_compat, "node/wait", {"id": "order-3"})
    node_compat.wait_step_status(run_id, "wait", "Waiting")
    node_compat.send("node/approve", {"id": "someone-else"})
    node_compat.send("node/other", {"id": "order-3"})

    run = node_compat.wait_run_by_id(run_id, status=COMPLETED, timeout=20)
    elapsed = time.monotonic() - started

    assert run["output"] == {"event": None}
    assert elapsed >= 4.5, f"the 5s wait timed out after {elapsed:.2f}s"
    assert step_named(run, "wait")["op"] == "WaitForEvent"
    assert node_compat.app_run(run_id)["handler"] == 2


def test_parallel_steps(node_compat: NodeCompat) -> None:
    run = node_compat.wait_run(node_compat.send("node/parallel"), status=COMPLETED)

    assert run["output"] == {"a": "A", "b": "B", "after": "A+B"}
    assert sorted(s["name"] for s in run["steps"]) == ["a", "after", "b"]
    assert step_named(run, "after")["output"] == "A+B"
    record = node_compat.app_run(run["run_id"])
    assert step_counts(record) == {"a": 1, "b": 1, "after": 1}
    # 1 discovery (plans a and b), 1 call per planned step, 1 discovery that
    # runs `after` inline (the force-step-plan flag is reset once the parallel
    # batch drained), checkpoints it and returns the output: as the Go executor.
    assert record["handler"] == 4


def test_invoke_returns_child_output(node_compat: NodeCompat) -> None:
    run = node_compat.wait_run(node_compat.send("node/invoke"), "invoker", status=COMPLETED)

    assert run["output"] == {"child": {"x": 1, "doubled": 2}}
    call = step_named(run, "call-child")
    assert call["op"] == "InvokeFunction"
    assert call["output"] == {"x": 1, "doubled": 2}
    children = node_compat.app_runs_of("child")
    assert len(children) == 1
    (child_run_id,) = children
    child = node_compat.wait_run_by_id(child_run_id, status=COMPLETED)
    assert child["function_id"] == f"{APP_ID}-child"
    assert child["output"] == {"x": 1, "doubled": 2}
    assert node_compat.app_run(run["run_id"])["handler"] == 2


def test_flaky_step_is_retried_once(node_compat: NodeCompat) -> None:
    run = node_compat.wait_run(node_compat.send("node/flaky"), status=COMPLETED)

    assert run["output"] == {"value": {"ok": True, "executions": 2}}
    wobbly = step_named(run, "wobbly")
    assert wobbly["status"] == COMPLETED
    assert wobbly["attempts"] == 2
    record = node_compat.app_run(run["run_id"])
    assert step_counts(record) == {"wobbly": 2}
    # The step body saw ctx.attempt 0 then 1 (the retry of the same step).
    assert record["steps"]["wobbly"]["attempts"] == [0, 1]
    # Call 1 runs the step inline (StepError), call 2 retries that step
    # (attempt 1, StepRun), call 3 is the discovery returning the output
    # (attempt reset to 0 once the step completed).
    assert record["attempts"] == [0, 1, 0]
    (first_at, second_at) = record["steps"]["wobbly"]["at"]
    assert second_at - first_at >= 900, "retried before --retry-interval 1"


def test_non_retriable_error_fails_after_one_attempt(node_compat: NodeCompat) -> None:
    run = node_compat.wait_run(node_compat.send("node/doomed"), status=FAILED)

    assert run["output"]["name"] == "NonRetriableError"
    assert run["output"]["message"] == "doomed: not worth retrying"
    fatal = step_named(run, "fatal")
    assert fatal["status"] == FAILED
    assert fatal["attempts"] == 1
    assert fatal["error"]["name"] == "NonRetriableError"
    assert len(steps_named(run, "fatal")) == 1
    # retries: 3, but nothing is retried: wait past --retry-interval 1.
    time.sleep(1.5)
    record = node_compat.app_run(run["run_id"])
    assert step_counts(record) == {"fatal": 1}
    # Call 1 reports the step's failure; call 2 rethrows the memoized error at
    # function level, which fails the run at once (no function-level retry).
    assert record["handler"] == 2
    assert node_compat.get_run(run["run_id"])["status"] == FAILED


def test_step_send_event_triggers_a_run(node_compat: NodeCompat) -> None:
    run = node_compat.wait_run(node_compat.send("node/send", {"tag": "t-1"}), status=COMPLETED)

    sent = run["output"]["sent"]
    assert isinstance(sent["ids"], list)
    assert len(sent["ids"]) == 1
    send_it = step_named(run, "send-it")
    assert send_it["status"] == COMPLETED
    # The event the SDK sent through `POST /e/<key>` started a `no-steps` run.
    (event_id,) = sent["ids"]
    triggered = node_compat.wait_run(str(event_id), "no-steps", status=COMPLETED)
    assert triggered["output"] == {"hello": "world"}
    events = node_compat.list_events("node/no-steps")
    assert [e["data"] for e in events] == [{"from": "sender", "tag": "t-1"}]


def test_step_fetch_is_made_by_the_server_and_memoized(node_compat: NodeCompat) -> None:
    """The official ``step.fetch`` (``Gateway`` op): any HTTP answer, a 503 included, is the
    result, as on Inngest (Wayline's own SDK opts in to 5xx retries)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str, bytes]] = []

    class Target(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            seen.append((self.path, self.headers.get("authorization") or "", body))
            self.send_response(503)
            self.send_header("x-target", "yes")
            self.send_header("content-length", "4")
            self.end_headers()
            self.wfile.write(b"busy")

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/rates"
        run = node_compat.wait_run(node_compat.send("node/fetch", {"url": url}), status=COMPLETED)
    finally:
        server.shutdown()
        server.server_close()

    assert run["output"] == {"status": 503, "body": "busy", "target": "yes"}
    assert seen == [("/rates", "Bearer node-secret", b'{"from":"node"}')]
    (fetched,) = [s for s in run["steps"] if s["op"] == "Gateway"]
    assert fetched["output"]["status_code"] == 503
    assert "node-secret" not in node_compat.log_path.read_text()
