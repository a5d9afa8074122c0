"""Runs out as OpenTelemetry traces: one trace per run, exported over OTLP/HTTP when the run
ends, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set.

The span tree is ``wayline.trace.build_trace`` — the model the dashboard's waterfall draws —
walked once: a root span for the run, a span per step (its latest attempt, ``wayline.attempt``
= that attempt's number), child spans per attempt where a step kept several. Times are the
run's recorded times, not the export time. The OTel SDK does the batching and the wire
format (``BatchSpanProcessor`` + ``OTLPSpanExporter``); nothing here speaks OTLP itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import Status, StatusCode

from .api.dashboard_format import iso
from .engine.model import Run
from .engine.tracecontext import run_trace_ids
from .trace import Span, build_trace, error_view

log = logging.getLogger("wayline.otel")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
OK_STATUSES = frozenset({"Completed", "Skipped"})
ERROR_STATUSES = frozenset({"Failed"})


class _RunIds(IdGenerator):
    """Random ids, except a run's root span: its trace id and span id come from the run id,
    the same ones the server sends to the app as ``traceparent``, so the app's spans (the
    SDK's OpenTelemetry middleware) land in the run's trace under its root."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._root: tuple[int, int] | None = None

    def next_root(self, run_id: str) -> None:
        self._root = run_trace_ids(run_id)

    def generate_trace_id(self) -> int:
        return self._root[0] if self._root is not None else self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        if self._root is not None:
            span_id = self._root[1]
            self._root = None  # only the root span; its children get random ids
            return span_id
        return self._random.generate_span_id()


class RunTraces:
    """Turns finished runs into spans on its own ``TracerProvider`` (never the global one,
    so an app embedding Wayline keeps its own tracing setup)."""

    def __init__(self, exporter: SpanExporter, *, service_name: str = "wayline") -> None:
        self._ids = _RunIds()
        self._lock = threading.Lock()  # the root's ids are handed over through _ids
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}), id_generator=self._ids
        )
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("wayline.runs")

    def run_ended(self, run: Run) -> None:
        """Export ``run``'s trace (a ``Service(on_run_ended=...)`` observer); never raises."""
        try:
            root = build_trace(run)
            with self._lock:
                self._ids.next_root(run.id)
                self._emit(root, run, parent=None, fallback_end=run.ended_at or root.start_ms)
        except Exception:  # an exporter bug must never fail a run transition
            log.exception("could not export the trace of run %s", run.id)

    def _emit(
        self, span: Span, run: Run, *, parent: otel_trace.Span | None, fallback_end: int
    ) -> None:
        context = otel_trace.set_span_in_context(parent) if parent is not None else None
        otel_span = self._tracer.start_span(
            _span_name(span),
            context=context,
            start_time=span.start_ms * 1_000_000,
            attributes=_attributes(span, run),
        )
        error = error_view(span.error) if span.status in ERROR_STATUSES else None
        if error is not None:
            otel_span.add_event(
                "exception",
                {
                    "exception.type": error.name,
                    "exception.message": error.message,
                    "exception.stacktrace": error.stack,
                },
            )
            otel_span.set_status(Status(StatusCode.ERROR, f"{error.name}: {error.message}"))
        elif span.status in OK_STATUSES:
            otel_span.set_status(Status(StatusCode.OK))
        end = span.end_ms if span.end_ms is not None else fallback_end
        for child in span.children:
            self._emit(child, run, parent=otel_span, fallback_end=end)
        otel_span.end(end_time=max(end, span.start_ms) * 1_000_000)

    def flush(self, timeout_ms: int = 10_000) -> bool:
        return self._provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        self._provider.shutdown()


def _span_name(span: Span) -> str:
    if span.kind == "run":
        return span.name
    if span.kind == "attempt":
        return f"step {span.name} attempt {span.attempt}"
    if span.kind == "call":
        return f"call to app failed (attempt {span.attempt})"
    return f"step {span.name}"


def _attributes(span: Span, run: Run) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "wayline.run_id": run.id,
        "wayline.function_id": run.function_id,
        "wayline.app_id": run.app_id,
        "wayline.status": span.status,
        "wayline.span_kind": span.kind,
    }
    if span.step_id is not None:
        attributes["wayline.step_id"] = span.step_id
        attributes["wayline.step_name"] = span.name
        attributes["wayline.attempt"] = span.attempt
        attributes["wayline.op"] = span.op or ""
    if span.wake_ms is not None:
        attributes["wayline.wake_at"] = iso(span.wake_ms)
    if span.retry_ms is not None:
        attributes["wayline.retry_at"] = iso(span.retry_ms)
    if span.waits_for:
        attributes["wayline.waits_for"] = span.waits_for
    return attributes


def traces_from_env(environ: Mapping[str, str]) -> RunTraces | None:
    """A ``RunTraces`` exporting over OTLP/HTTP when an OTLP endpoint is configured, else
    None. The exporter reads the standard ``OTEL_EXPORTER_OTLP_*`` variables itself."""
    if not any(environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    service_name = environ.get("OTEL_SERVICE_NAME") or "wayline"
    return RunTraces(OTLPSpanExporter(), service_name=service_name)
