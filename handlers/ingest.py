"""Ingest: EventBridge events, delivered in batches by the ingest SQS queue.

Each message is stored and routed (new runs, resumed waits, cancellations); a failure
lists the message in ``batchItemFailures`` so SQS delivers it again, and a redelivered
message routes nothing twice (its event id comes from the message itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wayline.aws.processing import ingest_message

from ._shared import LambdaHandler, Runtime, count, logger, metrics, runtime_from_env, tracer


def make_handler(get_runtime: Callable[[], Runtime]) -> LambdaHandler:
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def handle_record(record: SQSRecord) -> None:
        runtime = get_runtime()
        event_id = ingest_message(runtime.service, record.body, runtime.payloads)
        count("EventsIngested" if event_id else "EventsRejected")

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)  # responses carry user data
    def handler(event: dict[str, Any], context: LambdaContext) -> Any:
        get_runtime()  # cold start outside the per-record error handling
        count("RecordsReceived", len(event["Records"]))
        return process_partial_response(
            event=event, record_handler=handle_record, processor=processor, context=context
        )

    return handler


handler = make_handler(runtime_from_env)
