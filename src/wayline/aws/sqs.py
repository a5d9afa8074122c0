"""The work queue's sending side: work items as SQS messages, delayed up to 15 minutes.

A message body is one ``WorkItem`` as JSON (the same dict the stores persist). Receiving
is Lambda's job (the dispatch function's SQS event source mapping), so this module only
sends, and decodes what the dispatcher is handed.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from wayline.engine.model import WorkItem
from wayline.errors import StoreError, ValidationError
from wayline.store.codec import work_item_from_dict, work_item_to_dict

from .backoff import is_transient
from .clients import sqs_client, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

__all__ = [
    "MAX_BATCH",
    "MAX_DELAY_S",
    "WorkSender",
    "decode_item",
    "encode_item",
    "hold",
    "queue_url_of",
    "return_later",
]

MAX_DELAY_S = 900
"""SQS ``DelaySeconds`` is 0..900: longer waits go through EventBridge Scheduler."""
MAX_BATCH = 10
"""SendMessageBatch takes at most 10 entries."""


def encode_item(item: WorkItem) -> str:
    return json.dumps(work_item_to_dict(item), separators=(",", ":"))


def decode_item(body: str) -> WorkItem:
    """The work item in a message body; ``ValidationError`` if it is not one."""
    try:
        return work_item_from_dict(json.loads(body))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"message body is not a work item: {exc!r}", field="body") from exc


def clamp_delay(seconds: int) -> int:
    return min(max(seconds, 0), MAX_DELAY_S)


class WorkSender:
    """Sends work items to one queue, ten per ``SendMessageBatch``.

    Entries the batch call reports as failed are retried (bounded, with jittered backoff)
    unless SQS blames the sender, and so is a whole call that failed for a transient reason
    (throttling, 5xx: a retried call may queue a copy of an item, which is harmless);
    whatever is left raises ``StoreError``: an item that was not queued must never be
    reported as queued.
    """

    def __init__(
        self,
        *,
        queue_url: str,
        client: SQSClient | None = None,
        max_attempts: int = 4,
        base_delay_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.queue_url = queue_url
        self._client = client or sqs_client()
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._sleep = sleep
        self._jitter = jitter

    def send(self, items: Sequence[WorkItem], *, delay_s: int = 0) -> None:
        """Send ``items``, each visible after ``delay_s`` (clamped to 0..900)."""
        self.send_delayed([(item, delay_s) for item in items])

    def send_delayed(self, messages: Sequence[tuple[WorkItem, int]]) -> None:
        """Send ``(item, delay_s)`` pairs; each delay is clamped to 0..900 seconds."""
        for start in range(0, len(messages), MAX_BATCH):
            chunk = messages[start : start + MAX_BATCH]
            self._send_chunk(
                [
                    {
                        "Id": str(i),
                        "MessageBody": encode_item(item),
                        "DelaySeconds": clamp_delay(delay),
                    }
                    for i, (item, delay) in enumerate(chunk)
                ]
            )

    def _send_chunk(self, entries: list[SendMessageBatchRequestEntryTypeDef]) -> None:
        pending = entries
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(self._jitter() * self._base_delay_s * 2**attempt)
            try:
                with translate_errors("SQS", "SendMessageBatch"):
                    response = self._client.send_message_batch(
                        QueueUrl=self.queue_url, Entries=pending
                    )
            except StoreError as exc:
                # Throttling or a 5xx that outlasted botocore's own retries: a few more
                # tries here cost well under a second; failing leaves the run's next item
                # to a redelivery of the record that produced it.
                if attempt + 1 < self._max_attempts and is_transient(exc):
                    continue
                raise
            failed = response.get("Failed", [])
            if not failed:
                return
            permanent = [f["Code"] for f in failed if f.get("SenderFault")]
            if permanent:
                raise StoreError(f"SQS SendMessageBatch rejected entries: {sorted(set(permanent))}")
            retry_ids = {f["Id"] for f in failed}
            pending = [e for e in pending if e["Id"] in retry_ids]
        raise StoreError(f"SQS SendMessageBatch: {len(pending)} entries still failing")


def queue_url_of(queue_arn: str) -> str:
    """The URL of the queue ``arn:aws:sqs:<region>:<account>:<name>`` (SQS's URL scheme;
    no GetQueueUrl call, so no extra request and no extra permission)."""
    parts = queue_arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValidationError(f"not an SQS queue ARN: {queue_arn!r}", field="eventSourceARN")
    _, partition, _, region, account, name = parts
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def return_later(client: SQSClient, *, queue_arn: str, receipt_handle: str, seconds: int) -> None:
    """Make a received message visible again in ``seconds`` (``ChangeMessageVisibility``):
    a record that failed comes back after a short backoff instead of the queue's whole
    visibility timeout. ``StoreError`` if SQS refuses."""
    with translate_errors("SQS", "ChangeMessageVisibility"):
        client.change_message_visibility(
            QueueUrl=queue_url_of(queue_arn),
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(seconds, 43_200)),
        )


def hold(client: SQSClient, *, queue_arn: str, holds: Sequence[tuple[str, int]]) -> int:
    """Set each ``(receipt_handle, seconds)`` message's visibility timeout, ten per
    ``ChangeMessageVisibilityBatch``; how many SQS refused (they keep the queue's timeout).

    The dispatcher holds the records of a batch for as long as each may take: record ``i``
    for ``i + 1`` call budgets, instead of the queue's 90 minutes. If the container dies,
    its records come back when their own budget lapses."""
    refused = 0
    url = queue_url_of(queue_arn)
    for start in range(0, len(holds), MAX_BATCH):
        chunk = holds[start : start + MAX_BATCH]
        with translate_errors("SQS", "ChangeMessageVisibilityBatch"):
            response = client.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": min(s, 43_200)}
                    for i, (handle, s) in enumerate(chunk)
                ],
            )
        refused += len(response.get("Failed", []))
    return refused
