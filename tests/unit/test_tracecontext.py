"""One trace per run on both sides: the ids in the ``traceparent`` the server sends to apps
are the ids of the run's root span in the trace it exports."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wayline.engine.ids import ulid
from wayline.engine.model import Run, RunStatus, StepRecord, StepStatus
from wayline.engine.tracecontext import run_trace_ids, traceparent, xray_trace_id
from wayline.otel import RunTraces

T0 = 1_800_000_000_000


def test_traceparent_is_w3c_and_stable_per_run() -> None:
    header = traceparent("01KRUN")
    version, trace_id, span_id, flags = header.split("-")
    assert (version, flags) == ("00", "01")
    assert len(trace_id) == 32 and len(span_id) == 16
    assert int(trace_id, 16) and int(span_id, 16)
    assert header == traceparent("01KRUN") != traceparent("01KOTHER")


def test_the_exported_root_span_has_the_runs_ids_and_children_do_not() -> None:
    exporter = InMemorySpanExporter()
    traces = RunTraces(exporter)
    for run_id in ("r1", "r2"):
        step = StepRecord(
            id="a" * 40,
            name="a",
            op="StepRun",
            status=StepStatus.COMPLETED,
            started_at=T0 + 1,
            ended_at=T0 + 2,
        )
        run = Run(
            id=run_id,
            function_id="app-fn",
            app_id="app",
            status=RunStatus.COMPLETED,
            events=(),
            event_ids=(),
            created_at=T0,
            steps=(step,),
            ended_at=T0 + 3,
        )
        traces.run_ended(run)
    traces.flush()
    spans = exporter.get_finished_spans()
    for run_id in ("r1", "r2"):
        trace_id, root_id = run_trace_ids(run_id)
        mine = [s for s in spans if s.context.trace_id == trace_id]
        [root] = [s for s in mine if s.parent is None]
        assert root.context.span_id == root_id
        assert all(s.context.span_id != root_id for s in mine if s is not root)
        assert len(mine) >= 2


def test_a_runs_trace_id_is_an_x_ray_trace_id_of_its_creation_time() -> None:
    """X-Ray wants the first 8 hex digits to be the trace's start in epoch seconds."""
    run_id = ulid(T0 + 999, bytes(10))
    xray = xray_trace_id(run_id)
    version, seconds, rest = xray.split("-")
    assert (version, int(seconds, 16), len(rest)) == ("1", T0 // 1000, 24)
    assert traceparent(run_id).split("-")[1] == seconds + rest  # one id, two spellings
    assert xray_trace_id(ulid(T0, bytes([1] * 10))) != xray  # same second, other run
