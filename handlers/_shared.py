"""What every handler shares: Powertools (logs, EMF metrics, traces), the runtime cache, and
what happens to an SQS record that fails (``RecordProcessor``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wayline.aws.backoff import visibility_backoff_s
from wayline.aws.observability import Recorder, RunMetrics
from wayline.aws.run_trace import DaemonSender, RunSegments
from wayline.aws.runtime import Deps, Runtime, build_runtime
from wayline.aws.sqs import return_later
from wayline.clock import SystemClock
from wayline.engine.model import Run

__all__ = [
    "FAILED_RECORDS",
    "LambdaHandler",
    "RecordProcessor",
    "Redeliver",
    "Runtime",
    "count",
    "logger",
    "metrics",
    "runtime_from_env",
    "tracer",
]

FAILED_RECORDS = "FailedRecords"
"""EMF metric (namespace Wayline, dimensions ``service`` and ``handler``): records that
failed; template.yaml alarms on it."""

LambdaHandler = Callable[[dict[str, Any], LambdaContext], Any]

logger = Logger(service="wayline")
metrics = Metrics(namespace="Wayline", service="wayline")
tracer = Tracer(service="wayline")
# The engine logs through stdlib loggers ("wayline.*", with run_id/function_id extras):
# their parent gets the same JSON formatter, so every line is structured.
logging.getLogger("wayline")
copy_config_to_registered_loggers(source_logger=logger, include={"wayline"})

_runtime: list[Runtime] = []


def runtime_from_env() -> Runtime:
    """The container's runtime, built from the environment on first use (cold start)."""
    if not _runtime:
        # Powertools' provider is aws_xray_sdk's recorder (typed as its base class)
        recorder = None if tracer.disabled else cast(Recorder, tracer.provider)
        observers: list[Callable[[Run | None, Run], None]] = [RunMetrics(tracer, recorder)]
        if not tracer.disabled:  # one X-Ray trace per run (``aws.run_trace``)
            observers.append(
                RunSegments(
                    DaemonSender.from_env(os.environ),
                    now_ms=SystemClock().now_ms,
                    function_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "wayline"),
                    invocation_trace=lambda: os.environ.get("_X_AMZN_TRACE_ID"),
                    tracer=tracer,
                )
            )
        _runtime.append(build_runtime(Deps(observer=_all_of(observers))))
    return _runtime[0]


def _all_of(
    observers: list[Callable[[Run | None, Run], None]],
) -> Callable[[Run | None, Run], None]:
    def observe(before: Run | None, after: Run) -> None:
        for observer in observers:
            observer(before, after)

    return observe


def count(name: str, value: float = 1) -> None:
    """Add to an EMF counter (published when the invocation ends)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


class Redeliver(Exception):  # noqa: N818 - a request, not an error
    """Hand the record back to SQS, visible again in ``seconds``: not a failure (a claim
    held by another delivery, no time left in this invocation), so no ERROR line."""

    def __init__(self, reason: str, seconds: int) -> None:
        super().__init__(reason)
        self.seconds = seconds


class RecordProcessor(BatchProcessor):
    """Powertools' SQS partial-batch processor, plus what a failed record needs on AWS.

    A record that raises is reported in ``batchItemFailures`` (as before) and:

    * made visible again after a backoff of seconds (``ChangeMessageVisibility``: 2 s, 4 s,
      8 s ... by its receive count, capped at 15 min), not the queue's visibility timeout
      (90 minutes on the work queue);
    * logged as ONE ERROR line with the run, function and item ids known so far (``seen``,
      filled by the record handler) and the exception with its traceback;
    * counted in the EMF metric ``FailedRecords`` with dimension ``handler``.

    Lambda's own Errors metric stays 0 (the invocation succeeds), so without these a
    failing record would leave no trace.
    """

    def __init__(self, handler: str, get_runtime: Callable[[], Runtime]) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.handler_name = handler
        self._get_runtime = get_runtime
        self.seen: dict[str, str] = {}

    def begin_record(self) -> dict[str, str]:
        """A fresh ``seen`` for the next record (records are processed one at a time)."""
        self.seen = {}
        return self.seen

    def failure_handler(self, record: Any, exception: Any) -> Any:
        entry = super().failure_handler(record, exception)
        exc = exception[1]
        sqs = record if isinstance(record, SQSRecord) else None
        receives = int(sqs.attributes.approximate_receive_count or 1) if sqs else 1
        if isinstance(exc, Redeliver):
            delay = exc.seconds
            logger.info("record handed back: %s", exc, extra={**self.seen, "retry_in_s": delay})
        else:
            delay = visibility_backoff_s(receives)
            self._add_function_id()
            logger.error(
                "record failed: %s: %s",
                type(exc).__name__,
                exc,
                exc_info=exception,
                extra={
                    **self.seen,
                    "handler": self.handler_name,
                    "message_id": sqs.message_id if sqs else None,
                    "receive_count": receives,
                    "retry_in_s": delay,
                },
            )
            with single_metric(
                name=FAILED_RECORDS,
                unit=MetricUnit.Count,
                value=1,
                namespace="Wayline",
                default_dimensions={"service": "wayline", "handler": self.handler_name},
            ):
                pass
        if sqs is not None:
            self._return_later(sqs, delay)
        return entry

    def _add_function_id(self) -> None:
        """A call item does not name its function: if the record failed before the
        dispatcher learned it, read it from the run (best effort, failures only)."""
        run_id = self.seen.get("run_id")
        if not run_id or "function_id" in self.seen:
            return
        try:
            run = self._get_runtime().store.runs.get_run(run_id)
        except Exception:  # the store is what failed: the line goes out without it
            return
        if run is not None:
            self.seen["function_id"] = run.function_id

    def _return_later(self, record: SQSRecord, seconds: int) -> None:
        try:
            return_later(
                self._get_runtime().sqs,
                queue_arn=record.event_source_arn,
                receipt_handle=record.receipt_handle,
                seconds=seconds,
            )
        except Exception as exc:  # the record still comes back, after the queue's timeout
            logger.warning("could not shorten the record's visibility: %s", exc)
