"""One run as a tree of timed spans: the model behind the dashboard's waterfall AND the
OpenTelemetry export (``wayline.otel``), so the two can never disagree.

Tree shape (Inngest's rule: a step with one attempt does not expand)::

    run span (created_at .. ended_at, or open)
      step span per StepRecord, and a "call" span per failed call to the app outside any
      step (``Run.call_failures``), in time order
        attempt spans, only when the step kept more than one attempt (``StepRecord.history``)

Pure: built from a ``Run`` and ``now``; no I/O, no clock reads. Times are epoch ms.
Sleeps and waits carry ``wake_ms`` (the sleep's wake time, the wait's timeout) so both the
waterfall and the trace show when a paused step will move.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .engine.model import JSON, Attempt, Run, RunStatus, StepRecord, StepStatus, WorkKind

OPEN_STEP_STATUSES = frozenset({StepStatus.RUNNING, StepStatus.SLEEPING, StepStatus.WAITING})

OP_KINDS: Mapping[str, str] = {
    "StepRun": "run",
    "Step": "run",
    "StepPlanned": "run",
    "StepError": "run",
    "StepFailed": "run",
    "Sleep": "sleep",
    "WaitForEvent": "wait",
    "InvokeFunction": "invoke",
    "AIGateway": "ai",
    "Gateway": "fetch",
}


@dataclass(frozen=True, slots=True)
class Span:
    """One bar of the waterfall / one OTel span."""

    name: str
    kind: str
    """``run`` for the root; else the step kind: run, sleep, wait, invoke, ai, attempt."""
    status: str
    """A run status (root) or a step status, ``Cancelled`` for steps cut off by a cancel."""
    start_ms: int
    end_ms: int | None
    """None while the span is still open."""
    step_id: str | None = None
    op: str | None = None
    attempt: int = 0
    """1-based number of the attempt this span shows (the latest for a collapsed step)."""
    wake_ms: int | None = None
    """Sleep: wakes at; wait / invoke: times out at."""
    retry_ms: int | None = None
    """A failed attempt or call: when the next try is due (None: no retry follows)."""
    waits_for: str | None = None
    """The event name a wait or invoke listens for."""
    error: JSON = None
    output: JSON = None
    children: tuple[Span, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.end_ms is None

    def walk(self) -> list[tuple[int, Span]]:
        """Depth-first (depth, span) pairs, the order the waterfall draws its rows."""
        rows: list[tuple[int, Span]] = [(0, self)]
        for child in self.children:
            rows.extend((depth + 1, span) for depth, span in child.walk())
        return rows


def build_trace(run: Run) -> Span:
    """The span tree of ``run`` as stored now."""
    wakes = _wake_times(run)
    steps = [_step_span(run, step, wakes) for step in run.steps]
    failed_steps = {_error_key(s.error) for s in run.steps if s.status is StepStatus.FAILED}
    calls = [
        _attempt_span(run.function_id, None, "call", a)
        for a in run.call_failures
        if _error_key(a.error) not in failed_steps  # the SDK re-raising a failed step
    ]
    children = tuple(sorted([*steps, *calls], key=lambda span: span.start_ms))
    return Span(
        name=run.function_id,
        kind="run",
        status=run.status.value,
        start_ms=run.created_at,
        end_ms=run.ended_at,
        error=run.output if run.status is RunStatus.FAILED else None,
        output=run.output if run.status is RunStatus.COMPLETED else None,
        children=children,
    )


def _wake_times(run: Run) -> dict[str, tuple[int, str | None]]:
    """Per step id: when a pending sleep wakes or an open wait times out (and its event)."""
    wakes: dict[str, tuple[int, str | None]] = {}
    for item in run.pending.values():
        if item.step_id and item.kind in (WorkKind.SLEEP, WorkKind.WAIT_TIMEOUT):
            wakes.setdefault(item.step_id, (item.at, None))
    for step_id, wait in run.waiting.items():
        wakes[step_id] = (wait.expires_at, wait.event)
    return wakes


def _step_span(run: Run, step: StepRecord, wakes: Mapping[str, tuple[int, str | None]]) -> Span:
    status, end = step.status.value, step.ended_at
    if step.status in OPEN_STEP_STATUSES and run.status is RunStatus.CANCELLED:
        status, end = RunStatus.CANCELLED.value, run.ended_at
    elif step.status in OPEN_STEP_STATUSES and run.status.is_terminal:
        end = run.ended_at
    wake, event = wakes.get(step.id, (None, None))
    kind = OP_KINDS.get(step.op, "run")
    until = step.output.get("until") if isinstance(step.output, Mapping) else None
    if kind == "sleep" and isinstance(until, int):
        wake = until  # kept on the record after the sleep ends, unlike the work item
    attempts = tuple(_attempt_span(step.name, step.id, "attempt", a) for a in step.history)
    start = step.history[0].started_at if step.history else step.started_at
    return Span(
        name=step.name,
        kind=kind,
        status=status,
        start_ms=start or run.created_at,
        end_ms=end,
        step_id=step.id,
        op=step.op,
        attempt=max(step.attempts, len(step.history), 1),
        wake_ms=wake,
        waits_for=event,
        error=step.error,
        output=step.output,
        retry_ms=step.history[-1].retry_at if step.history and end is None else None,
        children=attempts if len(attempts) > 1 else (),
    )


def _attempt_span(name: str, step_id: str | None, kind: str, attempt: Attempt) -> Span:
    return Span(
        name=name,
        kind=kind,
        status=attempt.status.value,
        start_ms=attempt.started_at,
        end_ms=attempt.ended_at,
        step_id=step_id,
        attempt=attempt.number,
        error=attempt.error,
        retry_ms=attempt.retry_at,
    )


def _error_key(error: JSON) -> tuple[str, str] | None:
    """``(name, message)`` of an SDK error shape, to tell a failed step's error re-raised by
    the function (how official SDKs fail a run after a step fails) from a new failure."""
    if isinstance(error, Mapping) and isinstance(error.get("error"), Mapping):
        error = error["error"]
    if not isinstance(error, Mapping):
        return None
    return (str(error.get("name")), str(error.get("message")))


@dataclass(frozen=True, slots=True)
class ErrorView:
    """An error as the pages and the trace export show it: name, message and stack."""

    name: str
    message: str
    stack: str


def error_view(error: JSON) -> ErrorView | None:
    """The SDKs' error shapes (``{name, message, stack}``, possibly nested in ``error``)."""
    if error is None:
        return None
    if isinstance(error, dict):
        inner = error.get("error")
        if isinstance(inner, dict) and ("message" in inner or "name" in inner):
            error = inner
        name = str(error.get("name") or "Error")
        message = error.get("message")
        stack = error.get("stack")
        text = message if isinstance(message, str) else json.dumps(message, default=str)
        return ErrorView(name, text if message is not None else "", str(stack or ""))
    return ErrorView("Error", str(error), "")
