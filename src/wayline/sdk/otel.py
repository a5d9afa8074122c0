"""The OpenTelemetry middleware: spans for each call and each step body, inside the app.

Each request from the server becomes a ``wayline.function <fn id>`` span (kind SERVER) and
each ``step.run`` body that runs a ``wayline.step <step id>`` child span; spans your own
code starts inside them nest under them. When the request carries W3C trace context
(``traceparent``, ``tracestate``), the function span joins that trace as a child of the
server's span, so the app's spans and the server's run trace are one trace.

Attributes: ``wayline.run_id``, ``wayline.function_id``, ``wayline.attempt``,
``wayline.event_name``, and ``wayline.step_id`` on step spans. A failed step or function
records the exception and sets the span status to ERROR.

Needs ``opentelemetry-api`` (``pip install 'wayline[otel]'``); spans go wherever the app's
tracer provider sends them (none are recorded until the app configures an SDK).

Example::

    client = wayline.Wayline(app_id="shop", middleware=[wayline.middleware.OpenTelemetry()])
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .execution import CallResult
from .middleware import CallInfo, Middleware, StepInfo

_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(slots=True)
class _Open:
    """The spans this call has open, innermost last, with their context tokens."""

    spans: list[tuple[trace.Span, contextvars.Token[OtelContext]]] = field(default_factory=list)


_OPEN: contextvars.ContextVar[_Open | None] = contextvars.ContextVar(
    "wayline_otel_spans", default=None
)


class OpenTelemetry(Middleware):
    """Spans for calls and steps, joined to the server's trace (see module doc).

    Args:
        tracer_provider: Where spans go (default: the global provider).
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("wayline.sdk", tracer_provider=tracer_provider)

    def _attributes(self, call: CallInfo) -> dict[str, str | int]:
        return {
            "wayline.run_id": call.run_id,
            "wayline.function_id": call.fn_id,
            "wayline.attempt": call.attempt,
            "wayline.event_name": call.event_name,
        }

    def _push(self, span: trace.Span) -> None:
        opened = _OPEN.get()
        if opened is None:
            opened = _Open()
            _OPEN.set(opened)
        token = otel_context.attach(trace.set_span_in_context(span))
        opened.spans.append((span, token))

    def _pop(self, error: Exception | None) -> None:
        opened = _OPEN.get()
        if not opened or not opened.spans:
            return
        span, token = opened.spans.pop()
        if error is not None:
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}"))
        otel_context.detach(token)
        span.end()

    def before_function(self, call: CallInfo) -> None:
        _OPEN.set(_Open())
        parent = _PROPAGATOR.extract(carrier=dict(call.headers))
        span = self._tracer.start_span(
            f"wayline.function {call.fn_id}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes=self._attributes(call),
        )
        self._push(span)

    def before_step(self, call: CallInfo, step: StepInfo) -> None:
        span = self._tracer.start_span(
            f"wayline.step {step.step_id}",
            attributes={**self._attributes(call), "wayline.step_id": step.step_id},
        )
        self._push(span)

    def after_step(self, call: CallInfo, step: StepInfo, error: Exception | None) -> None:
        self._pop(error)

    def on_error(self, call: CallInfo, error: Exception, step: StepInfo | None) -> None:
        if step is None:
            opened = _OPEN.get()
            if opened and opened.spans:
                span = opened.spans[-1][0]
                span.record_exception(error)
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))

    def after_function(self, call: CallInfo, result: CallResult) -> None:
        opened = _OPEN.get()
        if opened and opened.spans:
            opened.spans[0][0].set_attribute("wayline.status", result.status)
        while opened and opened.spans:
            self._pop(None)
        _OPEN.set(None)
