"""Dispatch: work items from the work queue -> signed calls to apps -> run transitions.

A record that fails goes back to the queue through ``batchItemFailures`` and is visible
again after a backoff of seconds (``RecordProcessor``: one ERROR line, a ``FailedRecords``
metric); one there is no time left for is handed back at once. A duplicate delivery finds
its item claimed by the other delivery (handed back for later) or gone from the run (done).
Items blocked by a concurrency limit are parked and re-sent when a slot is released (a
60 s fallback copy covers a lost wake). Each record is held
(its visibility timeout) only as long as it may take, so one a dying container leaves
behind comes back within minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wayline.aws.processing import CLAIM_MARGIN_MS, Outcome
from wayline.aws.sqs import hold

from ._shared import (
    LambdaHandler,
    RecordProcessor,
    Redeliver,
    Runtime,
    count,
    logger,
    metrics,
    runtime_from_env,
    tracer,
)

MARGIN_MS = 10_000


def make_handler(get_runtime: Callable[[], Runtime]) -> LambdaHandler:
    processor = RecordProcessor("dispatch", get_runtime)

    def handle_record(record: SQSRecord, lambda_context: LambdaContext) -> None:
        runtime = get_runtime()
        seen = processor.begin_record()
        budget = runtime.settings.call_timeout_s * 1000 + MARGIN_MS
        if lambda_context.get_remaining_time_in_millis() < budget:
            raise Redeliver("not enough time left for a call: leaving it to the next batch", 0)
        receives = int(record.attributes.approximate_receive_count or 1)
        done = runtime.dispatcher.process_body(
            record.body, delivery=f"{record.message_id}#{receives}", seen=seen
        )
        run_id = done.item.run_id if done.item else None
        with logger.append_context_keys(run_id=run_id, function_id=done.function_id):
            logger.info("work item %s", done.outcome.value, extra={"status": done.status})
        for name in done.metric_names():
            count(name)
        if done.outcome is Outcome.BUSY:
            raise Redeliver("claimed by another delivery", runtime.dispatcher.busy_retry_s)

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)  # responses carry user data
    def handler(event: dict[str, Any], context: LambdaContext) -> Any:
        runtime = get_runtime()
        count("RecordsReceived", len(event["Records"]))
        hold_records(runtime, event["Records"])
        return process_partial_response(
            event=event, record_handler=handle_record, processor=processor, context=context
        )

    return handler


def hold_records(runtime: Runtime, records: list[dict[str, Any]]) -> None:
    """Hold record ``i`` for ``i + 1`` record budgets (a call plus time to save it), not the
    queue's 90 minutes: a container that dies mid-batch delays its records by minutes at
    most. One request per batch; if it fails the records keep the queue's timeout."""
    if not records:
        return
    per_record_s = int(runtime.settings.call_timeout_s) + CLAIM_MARGIN_MS // 1000
    holds = [(r["receiptHandle"], (i + 1) * per_record_s) for i, r in enumerate(records)]
    try:
        refused = hold(runtime.sqs, queue_arn=records[0]["eventSourceARN"], holds=holds)
    except Exception as exc:
        logger.warning("could not shorten the batch's visibility: %s", exc)
        return
    if refused:
        logger.warning("SQS refused to shorten the visibility of %d records", refused)


handler = make_handler(runtime_from_env)
