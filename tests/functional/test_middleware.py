"""Middleware through a real ``wayline dev``: the built-in logging-context and OpenTelemetry
middleware see every request of a run (with a retried step), their ids are the server's run
id, and a function's own middleware runs inside the client's."""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import wayline
from compat.harness import COMPLETED, Compat, Recorder
from wayline.engine.tracecontext import run_trace_ids
from wayline.middleware import ContextFilter, LoggingContext, OpenTelemetry

from .support import build_web_app


class Order(wayline.Middleware):
    """Notes which middleware saw each step body start."""

    def __init__(self, name: str, seen: Recorder) -> None:
        self.name = name
        self.seen = seen

    async def before_step(self, call: wayline.CallInfo, step: wayline.StepInfo) -> None:
        self.seen.append((self.name, step.step_id, call.attempt))


class Collect(logging.Handler):
    def __init__(self, records: Recorder) -> None:
        super().__init__()
        self.records = records
        self.addFilter(ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        fields = ("wayline_run_id", "wayline_function_id", "wayline_step_id")
        self.records.append((record.getMessage(), *(getattr(record, f) for f in fields)))


def test_logging_and_tracing_middleware_follow_a_run_through_wayline_dev(compat: Compat) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    records, order = Recorder(), Recorder()
    app_logger = logging.getLogger("functional.middleware")
    app_logger.setLevel(logging.INFO)
    handler = Collect(records)
    app_logger.addHandler(handler)
    client = wayline.Wayline(
        app_id="mw",
        is_dev=True,
        base_url=compat.server_url,
        middleware=[
            LoggingContext(),
            OpenTelemetry(tracer_provider=provider),
            Order("client", order),
        ],
    )
    flaky: dict[str, int] = {}

    def charge(amount: int) -> dict[str, Any]:
        flaky["calls"] = flaky.get("calls", 0) + 1
        app_logger.info("charging")
        if flaky["calls"] == 1:
            raise RuntimeError("card network down")
        return {"charged": amount}

    @client.function(
        id="checkout",
        trigger=wayline.TriggerEvent(event="shop/checkout"),
        middleware=[Order("function", order)],
    )
    async def checkout(ctx: wayline.Context) -> dict[str, Any]:
        total = await ctx.step.run("total", lambda: 42)
        return await ctx.step.run("charge", charge, total)

    try:
        web_app, ids = build_web_app("fastapi", client, [checkout])
        compat.serve_app(web_app, app_id="mw", function_ids=ids, retry_interval=0.2)
        run = compat.wait_run(compat.send("shop/checkout", {}), status=COMPLETED)
    finally:
        app_logger.removeHandler(handler)
    run_id = run["run_id"] if "run_id" in run else run["id"]
    assert run["output"] == {"charged": 42}

    # Logging context: the server's run id and the step on every line a step body logged.
    assert records.items == [
        ("charging", run_id, "mw-checkout", "charge"),
        ("charging", run_id, "mw-checkout", "charge"),
    ]
    # The client's middleware runs before the function's, on every attempt of every body.
    assert order.items == [
        ("client", "total", 0),
        ("function", "total", 0),
        ("client", "charge", 0),
        ("function", "charge", 0),
        ("client", "charge", 1),
        ("function", "charge", 1),
    ]
    # Tracing: one span per request, one per step body; all of this run; the failed attempt
    # is an error span.
    spans = exporter.get_finished_spans()
    steps = [s for s in spans if s.name.startswith("wayline.step ")]
    functions = [s for s in spans if s.name.startswith("wayline.function ")]
    assert [s.name for s in steps] == [
        "wayline.step total",
        "wayline.step charge",
        "wayline.step charge",
    ]
    assert [s.status.status_code.name for s in steps] == ["UNSET", "ERROR", "UNSET"]
    assert {s.attributes["wayline.run_id"] for s in spans if s.attributes} == {run_id}
    # Each request is a call: "total" checkpointed then "charge" failing, its retry, the return.
    assert len(functions) >= 3
    # The server's traceparent: every request's span is a child of the run's root span, in
    # the trace the server exports for the run.
    trace_id, root_span_id = run_trace_ids(run_id)
    for function in functions:
        assert function.context.trace_id == trace_id
        assert function.parent is not None and function.parent.span_id == root_span_id
    by_id = {f.context.span_id: f for f in functions}
    for step in steps:
        assert step.parent is not None and step.parent.span_id in by_id
