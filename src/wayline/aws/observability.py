"""Per-run metrics (CloudWatch EMF) and trace annotations, from the engine's run changes.

``RunMetrics`` is the ``Service`` observer every Lambda function installs
(``Runtime``): the engine calls it after each saved run change, and it writes one EMF
line per fact, namespace ``Wayline``, dimensions ``service`` and ``function`` (the
function id: every metric exists per function; CloudWatch's ``SEARCH`` or a metric math
``SUM`` gives the total):

=================  ============  =====================================================
metric             unit          when
=================  ============  =====================================================
``RunsStarted``    Count         a run is created (ingest, timers, dispatch for invokes)
``RunsCompleted``  Count         a run reaches Completed
``RunsFailed``     Count         a run reaches Failed
``RunsCancelled``  Count         a run reaches Cancelled
``StepDuration``   Milliseconds  a run finished: one value per step of it that ended
                                 (``ended_at - started_at``), in one line per run
``StepRetries``    Count         a step failed and will be attempted again
=================  ============  =====================================================

``StepDuration`` is written once per run, when it finishes, with all its steps' values in
one EMF line (up to 100 per line), not one line per step as each ends: a checkpointed
step is saved by an api invocation of its own (``engine.checkpoint_append``), and a line
per step there was ~280 bytes of CloudWatch Logs per step, about as much as the step's
Lambda request. The values are the same; they are timestamped at the run's end (a run
that sleeps for days reports its steps' durations when it finishes).

``ItemsBlocked`` (a concurrency limit held an item back) and ``ItemsSkipped`` (a
duplicate or stale work item) come from the dispatch handler, per record.

Each EMF line also carries ``run_id`` as a plain property (not a dimension: one metric
per run would cost per run), so the Logs Insights query "all lines of run X" finds the
metrics of a run with its log lines. The observer also annotates the current X-Ray
(sub)segment with ``run_id`` and ``function_id``, so X-Ray's trace search
(``annotation.run_id = "..."``) lists every invocation that touched a run, and, given the
X-Ray recorder, adds one subsegment per step that ended (``step <name>``, from the step's
start to its end, annotated with ``run_id``, ``function_id`` and ``step_id``).

An observer must never fail a transition that is already saved: errors are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

from wayline.engine.model import Run, RunStatus, StepRecord, StepStatus

__all__ = ["RUN_METRICS", "Annotator", "Recorder", "RunMetrics"]

log = logging.getLogger("wayline.aws")

NAMESPACE = "Wayline"
SERVICE = "wayline"
_FINISHED = {
    RunStatus.COMPLETED: "RunsCompleted",
    RunStatus.FAILED: "RunsFailed",
    RunStatus.CANCELLED: "RunsCancelled",
}
RUN_METRICS = ("RunsStarted", *_FINISHED.values(), "StepDuration", "StepRetries")
"""Every metric name ``RunMetrics`` writes (infra/dashboard.json charts them)."""


class Annotator(Protocol):
    """What ``RunMetrics`` needs of a tracer (Powertools' ``Tracer`` has it)."""

    def put_annotation(self, key: str, value: str) -> object: ...


class Recorder(Protocol):
    """What ``RunMetrics`` needs of an X-Ray recorder (``aws_xray_sdk``'s has it)."""

    def begin_subsegment(self, name: str) -> Any: ...

    def end_subsegment(self, end_time: float | None = None) -> Any: ...


class RunMetrics:
    def __init__(self, tracer: Annotator | None = None, recorder: Recorder | None = None) -> None:
        """``recorder``: the X-Ray recorder to add step subsegments to (None: no tracing)."""
        self._tracer = tracer
        self._recorder = recorder

    def __call__(self, before: Run | None, after: Run) -> None:
        try:
            self._observe(before, after)
        except Exception:  # never fail a saved transition over its metrics
            log.exception("run metrics failed", extra={"run_id": after.id})

    def _observe(self, before: Run | None, after: Run) -> None:
        emit = self._emitter(after)
        if before is None:
            emit("RunsStarted", MetricUnit.Count, 1)
        elif after.status is not before.status and after.status in _FINISHED:
            emit(_FINISHED[after.status], MetricUnit.Count, 1)
        earlier = {} if before is None else {step.id: step for step in before.steps}
        for step in after.steps:
            old = earlier.get(step.id)
            if step.ended_at is not None and (old is None or old.ended_at is None):
                self._trace_step(after, step)
            if _retried(old, step):
                emit("StepRetries", MetricUnit.Count, 1)
        if before is not None and after.status is not before.status and after.status.is_terminal:
            _step_durations(after)
        if self._tracer is not None:
            self._tracer.put_annotation("run_id", after.id)
            self._tracer.put_annotation("function_id", after.function_id)

    def _trace_step(self, run: Run, step: StepRecord) -> None:
        if self._recorder is None or step.ended_at is None:
            return
        subsegment = self._recorder.begin_subsegment(f"step {step.name}"[:200])
        if subsegment is None:  # no segment to attach to (not inside an invocation)
            return
        subsegment.start_time = step.started_at / 1000
        subsegment.put_annotation("run_id", run.id)
        subsegment.put_annotation("function_id", run.function_id)
        subsegment.put_annotation("step_id", step.id)
        subsegment.put_metadata("status", step.status.value)
        subsegment.put_metadata("attempts", step.attempts)
        self._recorder.end_subsegment(end_time=step.ended_at / 1000)

    @staticmethod
    def _emitter(run: Run) -> Callable[[str, MetricUnit, float], None]:
        def emit(name: str, unit: MetricUnit, value: float) -> None:
            with single_metric(
                name=name,
                unit=unit,
                value=value,
                namespace=NAMESPACE,
                default_dimensions={"service": SERVICE, "function": run.function_id},
            ) as metric:
                metric.add_metadata(key="run_id", value=run.id)

        return emit


_MAX_VALUES = 100
"""Values of one metric in one EMF line (CloudWatch's limit)."""


def _step_durations(run: Run) -> None:
    """One ``StepDuration`` line per 100 steps of ``run`` that ended."""
    durations = [s.ended_at - s.started_at for s in run.steps if s.ended_at is not None]
    for start in range(0, len(durations), _MAX_VALUES):
        metrics = EphemeralMetrics(namespace=NAMESPACE)
        metrics.add_dimension(name="service", value=SERVICE)
        metrics.add_dimension(name="function", value=run.function_id)
        for value in durations[start : start + _MAX_VALUES]:
            metrics.add_metric(name="StepDuration", unit=MetricUnit.Milliseconds, value=value)
        metrics.add_metadata(key="run_id", value=run.id)
        metrics.flush_metrics()


def _retried(old: StepRecord | None, new: StepRecord) -> bool:
    """The step failed and is scheduled again: the engine records such an attempt as
    still running, with its error and one more attempt (``machine._apply_op``)."""
    before = old.attempts if old is not None else 0
    return new.status is StepStatus.RUNNING and new.error is not None and new.attempts > before
