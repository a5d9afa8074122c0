"""Ingest: EventBridge events, delivered in batches by the ingest SQS queue.

Each message is stored and routed (new runs, resumed waits, cancellations); a failure
lists the message in ``batchItemFailures`` so SQS delivers it again after a backoff of
seconds (``RecordProcessor``: one ERROR line, a ``FailedRecords`` metric), and a
redelivered message routes nothing twice (its event id comes from the message itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wayline.aws.processing import ingest_message
from wayline.aws.sqs import hold

from ._shared import (
    LambdaHandler,
    RecordProcessor,
    Runtime,
    count,
    logger,
    metrics,
    runtime_from_env,
    tracer,
)


def make_handler(get_runtime: Callable[[], Runtime]) -> LambdaHandler:
    processor = RecordProcessor("ingest", get_runtime)

    def handle_record(record: SQSRecord) -> None:
        seen = processor.begin_record()
        runtime = get_runtime()
        event_id = ingest_message(runtime.service, record.body, runtime.payloads, seen=seen)
        count("EventsIngested" if event_id else "EventsRejected")

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)  # responses carry user data
    def handler(event: dict[str, Any], context: LambdaContext) -> Any:
        runtime = get_runtime()  # cold start outside the per-record error handling
        count("RecordsReceived", len(event["Records"]))
        hold_records(runtime, event["Records"], context)
        return process_partial_response(
            event=event, record_handler=handle_record, processor=processor, context=context
        )

    return handler


def hold_records(runtime: Runtime, records: list[dict[str, Any]], context: LambdaContext) -> None:
    """Hold the batch only until this invocation must have ended (its remaining time), not
    the queue's 6 minutes: records a dying container leaves behind come back sooner. One
    request per batch; if it fails the records keep the queue's timeout."""
    if not records:
        return
    seconds = context.get_remaining_time_in_millis() // 1000 + 5
    try:
        hold(
            runtime.sqs,
            queue_arn=records[0]["eventSourceARN"],
            holds=[(r["receiptHandle"], seconds) for r in records],
        )
    except Exception as exc:
        logger.warning("could not shorten the batch's visibility: %s", exc)


handler = make_handler(runtime_from_env)
