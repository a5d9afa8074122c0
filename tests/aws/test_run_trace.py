"""One X-Ray trace per run across invocations (issue 11): every Lambda invocation that works
on a run sends its segment into the run's trace, whose id each container derives from
the run id, with a subsegment per step that ended in it.

A run with a step, a 20-minute sleep (an EventBridge Scheduler wake-up) and a second step
goes through the ingest function and several dispatch invocations on the moto topology;
each function's runtime has its own ``RunSegments`` observer, as each Lambda function has
its own containers. The segments are captured where the X-Ray daemon would get them.
"""

from __future__ import annotations

import datetime
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import pytest

from compat.harness import UvicornAppServer
from wayline import signing
from wayline.aws.eventbridge import EventBus
from wayline.aws.run_trace import DAEMON_HEADER, DaemonSender, RunSegments
from wayline.aws.runtime import Runtime
from wayline.engine.model import Run, RunStatus, StepRecord, StepStatus
from wayline.engine.tracecontext import traceparent, xray_trace_id

from .conftest import Stack, VirtualClock
from .driver import FUNCTIONS, SIGNING_KEY, Driver, make_runtime

BEARER = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}
XRAY_TRACE_ID = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
SEGMENT_ID = re.compile(r"[0-9a-f]{16}")
MIN = 60_000


@pytest.fixture
def app_url() -> Iterator[str]:
    """An app on the official ``inngest`` SDK (it accepts the virtual clock's signatures)."""
    client = inngest.Inngest(
        app_id="tr",
        is_production=True,
        signing_key=SIGNING_KEY,
        api_base_url="http://127.0.0.1:9",
        event_api_base_url="http://127.0.0.1:9",
    )

    @client.create_function(fn_id="nap", retries=0, trigger=inngest.TriggerEvent(event="t/nap"))
    def nap(ctx: inngest.ContextSync) -> int:
        a = ctx.step.run("a", lambda: 1)
        ctx.step.sleep("snooze", datetime.timedelta(minutes=20))
        b = ctx.step.run("b", lambda: 2)
        return int(a) + int(b)

    web = fastapi.FastAPI()
    inngest.fast_api.serve(web, client, [nap])
    server = UvicornAppServer(web)
    try:
        yield f"http://127.0.0.1:{server.port}/api/inngest"
    finally:
        server.stop()


def test_every_invocation_of_a_run_sends_its_segment_into_the_runs_trace(
    stack: Stack, clock: VirtualClock, app_url: str
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    names = iter(FUNCTIONS)  # the driver builds one runtime per function, in this order

    def runtime() -> Runtime:
        name = f"wayline-{next(names)}"

        def daemon(doc: dict[str, Any]) -> None:  # what the X-Ray daemon would receive
            sent.append((name, json.loads(json.dumps(doc))))

        segments = RunSegments(
            daemon,
            now_ms=clock.now_ms,
            function_name=name,
            invocation_trace=lambda: "Root=1-00000000-000000000000000000000000",
        )
        return make_runtime(stack, clock, observer=segments)

    driver = Driver(stack, clock, runtime)
    assert driver.api("PUT", "/v1/apps/sync", {"url": app_url}, BEARER)[0] == 200
    assert EventBus(bus_name=stack.bus, client=stack.events).publish([{"name": "t/nap"}])[0].ok
    driver.settle()
    clock.advance(21 * MIN)  # the Scheduler wake-up is due
    driver.settle()
    (run,) = driver.runtime.store.runs.list_runs(function_id="tr-nap")
    assert run.status is RunStatus.COMPLETED

    segments = [doc for _, doc in sent]
    trace_id = xray_trace_id(run.id)
    assert XRAY_TRACE_ID.fullmatch(trace_id)
    assert {doc["trace_id"] for doc in segments} == {trace_id}  # one trace for the run
    # The same id the app got in ``traceparent``: its own spans join this trace.
    assert traceparent(run.id).split("-")[1] == trace_id[2:].replace("-", "")
    assert {name for name, _ in sent} >= {"wayline-ingest", "wayline-dispatch"}
    ids = [doc["id"] for doc in segments]
    assert len(set(ids)) == len(ids) >= 4  # created, started, a step, the sleep, b, done
    for doc in segments:
        assert SEGMENT_ID.fullmatch(doc["id"]) and doc["start_time"] <= doc["end_time"]
        assert doc["annotations"]["run_id"] == run.id
        assert doc["annotations"]["function_id"] == "tr-nap"
        assert doc["metadata"]["wayline"]["invocation_trace"].startswith("Root=1-")

    steps = [sub for doc in segments for sub in doc["subsegments"]]
    assert [sub["name"] for sub in steps] == ["step a", "step snooze", "step b"]
    for sub, record in zip(steps, run.steps, strict=True):
        assert sub["annotations"]["step_id"] == record.id
        assert record.ended_at is not None
        assert (sub["start_time"], sub["end_time"]) == (
            record.started_at / 1000,
            record.ended_at / 1000,
        )
    snooze = steps[1]
    assert snooze["end_time"] - snooze["start_time"] >= 20 * 60  # the sleep, as one bar
    changes = [doc["metadata"]["wayline"]["change"] for doc in segments]
    assert changes[0] == "run created" and changes[-1] == "run Running -> Completed"


def test_a_broken_daemon_never_fails_the_transition() -> None:
    def broken(doc: dict[str, Any]) -> None:
        raise OSError("daemon unreachable")

    run = Run(
        id="01M8K5WQRMW8AH65GNSY011A98",
        function_id="f",
        app_id="a",
        status=RunStatus.RUNNING,
        events=(),
        event_ids=(),
        created_at=0,
    )
    RunSegments(broken, now_ms=lambda: 1)(None, run)  # logged, not raised


def test_segments_reach_the_daemon_as_udp_datagrams() -> None:
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
    port = daemon.getsockname()[1]
    sender = DaemonSender.from_env(
        {"AWS_XRAY_DAEMON_ADDRESS": f"tcp:127.0.0.1:9 udp:127.0.0.1:{port}"}
    )
    try:
        sender({"name": "wayline-dispatch", "id": "0" * 16})
        datagram = daemon.recv(65_536)
    finally:
        sender.close()
        daemon.close()
    assert datagram.startswith(DAEMON_HEADER)
    assert json.loads(datagram[len(DAEMON_HEADER) :]) == {
        "name": "wayline-dispatch",
        "id": "0" * 16,
    }


def test_a_checkpoint_appended_without_a_version_gets_a_segment_of_its_own() -> None:
    run = Run(
        id="01M8K5WQRMW8AH65GNSY011A98",
        function_id="f",
        app_id="a",
        status=RunStatus.RUNNING,
        events=(),
        event_ids=(),
        created_at=0,
        version=3,
    )
    segments = RunSegments(lambda doc: None, now_ms=lambda: 10)
    ids = set()
    for step_id in ("a", "b"):
        step = StepRecord(step_id, step_id, "StepRun", StepStatus.COMPLETED, 1, 1, 2, 1)
        after = replace(run, steps=(*run.steps, step))
        ids.add(segments.segment(run, after)["id"])
        run = after
    ids.add(segments.segment(None, run)["id"])
    assert len(ids) == 3
