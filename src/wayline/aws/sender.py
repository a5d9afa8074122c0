"""``client.send()`` in AWS mode: ``PutEvents`` straight to the Wayline bus with the
caller's own IAM credentials, no HTTP API in between.

Same contract as the event-key HTTP sender: ids in order (the ids the engine will store,
fixed in advance by per-event seeds exactly as the event API fixes them), and a
``SendEventsError`` listing the events accepted before the first refused one.

    import boto3, wayline
    from wayline.aws.sender import EventBridgeSender

    client = wayline.Wayline(app_id="shop",
                             sender=EventBridgeSender(bus_name="wayline-bus",
                                                      bucket="<PayloadBucketName>",
                                                      session=boto3.Session()))
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..engine.ids import seeded_event_id
from ..errors import SendEventsError, StoreError
from .eventbridge import EventBus, event_seeds
from .s3 import BlobStore, S3Offload

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_events import EventBridgeClient


class EventBridgeSender:
    """Implements the SDK's ``EventSender`` with ``PutEvents`` (10 entries per call,
    failed entries retried per entry); ``client`` or ``session`` are injectable.

    ``bucket`` (the stack's ``PayloadBucketName`` output) lets events over the bus's entry
    limit travel as a claim check (see ``eventbridge``); without it they are refused."""

    def __init__(
        self,
        *,
        bus_name: str,
        client: EventBridgeClient | None = None,
        session: boto3.Session | None = None,
        entropy: Callable[[int], bytes] = os.urandom,
        now_ms: Callable[[], int] | None = None,
        bucket: str | None = None,
        payloads: BlobStore | None = None,
    ) -> None:
        if client is None and session is not None:
            client = session.client("events")
        if payloads is None and bucket is not None:
            s3 = session.client("s3") if session is not None else None
            payloads = S3Offload(bucket=bucket, client=s3)
        self._bus = EventBus(bus_name=bus_name, client=client, payloads=payloads)
        self._entropy = entropy
        self._now_ms = now_ms or _wall_clock_ms

    def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        seeds = event_seeds(None, len(events), now_ms=self._now_ms(), entropy=self._entropy(10))
        try:
            results = self._bus.publish(events, seeds=seeds)
        except StoreError as exc:
            # The whole PutEvents call failed (after botocore's retries): with up to 10
            # events per call, nothing of a typical send was stored.
            raise SendEventsError(f"PutEvents failed: {exc}", ids=[]) from exc
        ids = [str(seeded_event_id(seed, 1)) for seed in seeds]
        accepted = next((i for i, r in enumerate(results) if not r.ok), len(results))
        if accepted < len(results):
            codes = sorted({str(r.error_code) for r in results if not r.ok})
            raise SendEventsError(
                f"the event bus refused {len(results) - accepted} of {len(results)} events "
                f"({', '.join(codes)})",
                ids=ids[:accepted],
            )
        return ids

    async def send_async(self, events: Sequence[dict[str, Any]]) -> list[str]:
        return await asyncio.to_thread(self.send, events)


def _wall_clock_ms() -> int:
    import time

    return time.time_ns() // 1_000_000
