"""One run's metrics on the topology: the EMF lines the functions print, parsed as
CloudWatch would, with the per-function dimension, and the X-Ray annotations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import fastapi
import pytest
from aws_xray_sdk import global_sdk_config  # type: ignore[import-untyped]
from aws_xray_sdk.core.context import Context  # type: ignore[import-untyped]
from aws_xray_sdk.core.recorder import AWSXRayRecorder  # type: ignore[import-untyped]

import wayline
import wayline.fastapi
from compat.harness import UvicornAppServer
from wayline import signing
from wayline.aws.eventbridge import EventBus
from wayline.aws.observability import RUN_METRICS, RunMetrics
from wayline.engine.model import Run, RunStatus

from .conftest import Stack, VirtualClock
from .driver import SIGNING_KEY, Driver, make_runtime

BEARER = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}
MIN = 60_000


@pytest.fixture
def app_url() -> Iterator[str]:
    # No API to reach (127.0.0.1:9), so no checkpoints: one call per step, as this test counts.
    client = wayline.Wayline(
        app_id="obs", signing_key=SIGNING_KEY, base_url="http://127.0.0.1:9", checkpointing=False
    )
    failures = [1]

    @client.function(id="flow", trigger=wayline.TriggerEvent(event="t/obs"), retries=2)
    async def flow(ctx: wayline.Context) -> int:
        def flaky() -> int:
            if failures:
                failures.pop()
                raise ValueError("first attempt fails")
            return 2

        a = await ctx.step.run("a", lambda: 1)
        b = await ctx.step.run("b", flaky)
        return a + b

    @client.function(id="doomed", trigger=wayline.TriggerEvent(event="t/doom"), retries=0)
    async def doomed(ctx: wayline.Context) -> None:
        raise ValueError("always")

    web = fastapi.FastAPI()
    wayline.fastapi.serve(web, client, [flow, doomed])
    server = UvicornAppServer(web)
    try:
        yield f"http://127.0.0.1:{server.port}/api/inngest"
    finally:
        server.stop()
        client.close()


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The stdout lines CloudWatch Logs would turn into metrics (the ``_aws`` key)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found


def metric_values(lines: list[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """(function dimension, metric name) -> values, checking each line's EMF shape."""
    values: dict[tuple[str, str], list[float]] = {}
    for line in lines:
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        if directive["Namespace"] != "Wayline" or "function" not in line:
            continue  # the handlers' own per-invocation counters
        assert directive["Dimensions"] == [["service", "function"]]
        assert line["service"] == "wayline" and line["run_id"]
        for metric in directive["Metrics"]:
            assert metric["Unit"] in ("Count", "Milliseconds")
            value = line[metric["Name"]]
            values.setdefault((line["function"], metric["Name"]), []).extend(
                value if isinstance(value, list) else [value]
            )
    return values


def test_one_run_emits_started_completed_step_durations_and_retries(
    stack: Stack, clock: VirtualClock, app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    assert driver.api("PUT", "/v1/apps/sync", {"url": app_url}, BEARER)[0] == 200
    bus = EventBus(bus_name=stack.bus, client=stack.events)
    assert all(r.ok for r in bus.publish([{"name": "t/obs"}, {"name": "t/doom"}]))
    capsys.readouterr()
    driver.settle()
    clock.advance(5 * MIN)  # past the retry's backoff
    driver.settle()
    (run,) = driver.runtime.store.runs.list_runs(function_id="obs-flow")
    assert run.status is RunStatus.COMPLETED

    lines = emf_lines(capsys.readouterr().out)
    values = metric_values(lines)
    assert values[("obs-flow", "RunsStarted")] == [1.0]
    assert values[("obs-flow", "RunsCompleted")] == [1.0]
    assert values[("obs-flow", "StepRetries")] == [1.0]
    durations = values[("obs-flow", "StepDuration")]
    assert len(durations) == 2 and all(d >= 0 for d in durations)  # steps a and b
    assert values[("obs-doomed", "RunsStarted")] == [1.0]
    assert values[("obs-doomed", "RunsFailed")] == [1.0]
    assert ("obs-flow", "RunsFailed") not in values
    assert {name for _, name in values} <= set(RUN_METRICS)
    run_ids = {line["run_id"] for line in lines if line.get("function") == "obs-flow"}
    assert run_ids == {run.id}  # "all lines of run X" finds its metrics too


class Annotations:
    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def put_annotation(self, key: str, value: str) -> None:
        self.seen[key] = value


def test_the_observer_annotates_the_trace_with_the_run_and_never_raises(
    stack: Stack, clock: VirtualClock, app_url: str
) -> None:
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    assert driver.api("PUT", "/v1/apps/sync", {"url": app_url}, BEARER)[0] == 200
    EventBus(bus_name=stack.bus, client=stack.events).publish([{"name": "t/doom"}])
    driver.settle()
    (run,) = driver.runtime.store.runs.list_runs(function_id="obs-doomed")
    tracer = Annotations()
    RunMetrics(tracer)(None, run)
    assert tracer.seen == {"run_id": run.id, "function_id": "obs-doomed"}

    class Broken:
        def put_annotation(self, key: str, value: str) -> None:
            raise RuntimeError("X-Ray daemon unreachable")

    RunMetrics(Broken())(None, run)  # logged, not raised: the transition is already saved


class Collected:
    """An X-Ray emitter that keeps what the real SDK would send to the daemon."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.sent.append(json.loads(entity.serialize()))

    def set_daemon_address(self, address: str | None) -> None:
        pass


def trace_steps(run: Run) -> Collected:
    """The X-Ray segment one invocation would send after observing ``run``."""
    emitter = Collected()
    recorder = AWSXRayRecorder()
    recorder.configure(emitter=emitter, sampling=False, context=Context(), plugins=())
    recorder.begin_segment("wayline-dispatch")  # what Lambda's invocation segment is
    RunMetrics(recorder=recorder)(None, run)
    recorder.end_segment()
    return emitter


def test_each_step_of_a_run_is_an_x_ray_subsegment_with_the_run_id(
    stack: Stack, clock: VirtualClock, app_url: str
) -> None:
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    assert driver.api("PUT", "/v1/apps/sync", {"url": app_url}, BEARER)[0] == 200
    EventBus(bus_name=stack.bus, client=stack.events).publish([{"name": "t/obs"}])
    driver.settle()
    clock.advance(5 * MIN)
    driver.settle()
    (run,) = driver.runtime.store.runs.list_runs(function_id="obs-flow")

    # Powertools switches the X-Ray SDK off outside Lambda; on for this test only.
    enabled = global_sdk_config.sdk_enabled()
    global_sdk_config.set_sdk_enabled(True)
    try:
        emitter = trace_steps(run)
    finally:
        global_sdk_config.set_sdk_enabled(enabled)

    (segment,) = emitter.sent
    steps = segment["subsegments"]
    assert [s["name"] for s in steps] == ["step a", "step b"]
    for sub, record in zip(steps, run.steps, strict=True):
        assert sub["annotations"] == {
            "run_id": run.id,
            "function_id": "obs-flow",
            "step_id": record.id,
        }
        assert sub["start_time"] == record.started_at / 1000
        assert record.ended_at is not None and sub["end_time"] == record.ended_at / 1000
    assert steps[1]["metadata"]["default"] == {"status": "Completed", "attempts": 2}


def test_api_requests_print_no_emf_line_but_a_server_error_counts_one(
    stack: Stack, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    # A request (one per checkpoint) is counted by Lambda's free Invocations metric: an
    # EMF line each would be billed as log bytes. A 5xx answer still prints ApiErrors.
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    capsys.readouterr()
    assert driver.api("GET", "/v1/runs/01J0000000000000000000000", None, BEARER)[0] == 404
    assert emf_lines(capsys.readouterr().out) == []

    stack.ddb.delete_table(TableName=stack.table)  # the store fails: a 5xx
    status, _ = driver.api("GET", "/v1/runs/01J0000000000000000000000", None, BEARER)
    assert status >= 500
    (line,) = emf_lines(capsys.readouterr().out)
    assert line["ApiErrors"] in (1.0, [1.0]) and line["service"] == "wayline"
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
