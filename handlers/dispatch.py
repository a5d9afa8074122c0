"""Dispatch: work items from the work queue -> signed calls to apps -> run transitions.

The records of a batch are processed concurrently (one thread each, up to ``BatchSize``),
so a long call never holds the later records of its batch hostage; each record then drives
its run on while the invocation has time for another whole call (``aws.dispatcher``).
A record that fails goes back to the queue through ``batchItemFailures`` and is visible
again after a backoff of seconds (``RecordProcessor``: one ERROR line, a ``FailedRecords``
metric); one there is no time left for is handed back at once. A duplicate delivery finds
its item claimed by the other delivery (handed back for later) or gone from the run (done).
Items blocked by a concurrency limit are parked and re-sent when a slot is released (a
60 s fallback copy covers a lost wake). Each record is held (its visibility timeout) only
as long as its current call may take, extended while it drives, so one a dying container
leaves behind comes back within minutes.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from wayline.aws.dispatcher import CLAIM_MARGIN_MS, Budget, Dispatched, Outcome
from wayline.aws.sqs import hold, return_later

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
MAX_PARALLEL = 10
"""Records processed at once: the event source mapping's BatchSize (template.yaml)."""

Done = tuple[Dispatched | Exception, dict[str, str]]
"""What a record came to (or the exception it raised), and the ids seen on the way."""


def make_handler(get_runtime: Callable[[], Runtime]) -> LambdaHandler:
    processor = RecordProcessor("dispatch", get_runtime)
    pool: list[concurrent.futures.ThreadPoolExecutor] = []

    def dispatch_all(
        runtime: Runtime, records: list[dict[str, Any]], deadline_ms: int
    ) -> dict[str, Done]:
        if len(records) == 1:
            (record,) = records
            return {record["messageId"]: dispatch_one(runtime, record, deadline_ms)}
        if not pool:
            pool.append(
                concurrent.futures.ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix="record")
            )
        under = _in_this_trace()
        futures = {
            r["messageId"]: pool[0].submit(under, dispatch_one, runtime, r, deadline_ms)
            for r in records
        }
        concurrent.futures.wait(futures.values())
        # A BaseException that is not an Exception (the container is going away) ends the
        # invocation as it would have in one thread: nothing is reported, nothing deleted.
        return {message_id: future.result() for message_id, future in futures.items()}

    def replay(record: SQSRecord, outcomes: Mapping[str, Done]) -> None:
        """Report one record's outcome, computed above, to Powertools' batch processor."""
        done, seen = outcomes[record.message_id]
        processor.seen = seen
        if isinstance(done, Exception):
            raise done
        run_id = done.item.run_id if done.item else None
        with logger.append_context_keys(run_id=run_id, function_id=done.function_id):
            logger.info(
                "work item %s",
                done.outcome.value,
                extra={"status": done.status, "driven": done.driven},
            )
        for name in done.metric_names():
            count(name)

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)  # responses carry user data
    def handler(event: dict[str, Any], context: LambdaContext) -> Any:
        runtime = get_runtime()
        records = event["Records"]
        count("RecordsReceived", len(records))
        deadline_ms = runtime.clock.now_ms() + context.get_remaining_time_in_millis()
        hold_records(runtime, records)
        outcomes = dispatch_all(runtime, records, deadline_ms)
        return process_partial_response(
            event=event,
            record_handler=lambda record: replay(record, outcomes),
            processor=processor,
            context=context,
        )

    return handler


def _in_this_trace() -> Callable[..., Done]:
    """A runner for worker threads that puts them under this invocation's X-Ray entity
    (the handler's subsegment): in a new thread the current entity would be Lambda's
    facade segment, which refuses annotations and subsegments."""
    recorder: Any = None if tracer.disabled else tracer.provider
    entity = recorder.get_trace_entity() if recorder is not None else None

    def run(work: Callable[..., Done], *args: Any) -> Done:
        if entity is None:
            return work(*args)
        recorder.set_trace_entity(entity)
        try:
            return work(*args)
        finally:
            recorder.clear_trace_entities()

    return run


def dispatch_one(runtime: Runtime, record: dict[str, Any], deadline_ms: int) -> Done:
    seen: dict[str, str] = {}
    try:
        return _dispatch(runtime, record, deadline_ms, seen), seen
    except Exception as exc:
        return exc, seen


def _dispatch(
    runtime: Runtime, record: dict[str, Any], deadline_ms: int, seen: dict[str, str]
) -> Dispatched:
    per_call_ms = int(runtime.settings.call_timeout_s * 1000) + MARGIN_MS
    now = runtime.clock.now_ms()
    if deadline_ms - now < per_call_ms:
        raise Redeliver("not enough time left for a call: leaving it to the next batch", 0)
    receives = int(record.get("attributes", {}).get("ApproximateReceiveCount") or 1)
    dispatcher = runtime.dispatcher

    def extend(seconds: int) -> None:
        return_later(
            runtime.sqs,
            queue_arn=record["eventSourceARN"],
            receipt_handle=record["receiptHandle"],
            seconds=seconds,
        )

    budget = Budget(
        deadline_ms=deadline_ms,
        per_call_ms=per_call_ms,
        hold_ms=dispatcher.claim_ttl_ms,
        held_until_ms=now + record_hold_s(runtime) * 1000,
        hold=extend,
    )
    done = dispatcher.process_body(
        record["body"],
        delivery=f"{record['messageId']}#{receives}",
        seen=seen,
        receives=receives,
        budget=budget,
    )
    if done.outcome is Outcome.BUSY:
        raise Redeliver("claimed by another delivery", dispatcher.busy_retry_s)
    return done


def record_hold_s(runtime: Runtime) -> int:
    """How long a record is held at first: one call and time to save it (its claim's life)."""
    return int(runtime.settings.call_timeout_s) + CLAIM_MARGIN_MS // 1000


def hold_records(runtime: Runtime, records: list[dict[str, Any]]) -> None:
    """Hold each record for one record budget (a call plus time to save it; the records
    run concurrently), not the queue's 90 minutes: a container that dies mid-batch delays
    its records by minutes at most. One request per batch; if it fails the records keep
    the queue's timeout."""
    if not records:
        return
    holds = [(r["receiptHandle"], record_hold_s(runtime)) for r in records]
    try:
        refused = hold(runtime.sqs, queue_arn=records[0]["eventSourceARN"], holds=holds)
    except Exception as exc:
        logger.warning("could not shorten the batch's visibility: %s", exc)
        return
    if refused:
        logger.warning("SQS refused to shorten the visibility of %d records", refused)


handler = make_handler(runtime_from_env)
