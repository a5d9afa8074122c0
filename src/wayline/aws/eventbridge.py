"""The event bus: publishing Wayline events to EventBridge, and reading them back in ingest.

Wire format of one Wayline event on the bus (what apps ``PutEvents``, and what the api
function publishes for ``POST /e/{key}``)::

    Source      "wayline"
    DetailType  "wayline.event"    (free-form: ingest ignores it)
    Detail      the Inngest event object {"name", "data", "user"?, "id"?, "ts"?, "v"?}
                plus, optionally, "_wayline": {"seed": "<ms>,<base64 of 10 bytes>"}

Claim check: an entry over ``CLAIM_CHECK_BYTES`` does not travel on the bus. The event's
JSON is stored in the payload bucket under ``events/<sha256 of it>`` and the Detail holds
only its name and ``"_wayline": {"payload": "events/<sha256>", "bytes": n}``; ingest reads
it back (checking the hash) before it validates and stores the event. The bucket's
lifecycle rule (``PayloadRetentionDays``) expires the object like any offloaded payload;
without a bucket an oversized entry is refused by ``put`` (``EntryTooLarge``), never cut.

Event ids: ingest gives every bus event a deterministic internal id (a ULID), so a
redelivered SQS message stores and routes the same event once. The id comes from the
``_wayline.seed`` when the publisher set one (the api does, so it can answer ``POST /e``
with the ids), else from the EventBridge envelope: its time (whole seconds) and a hash
of its id. ``seed`` uses the format of Inngest's ``x-inngest-event-id-seed`` header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from wayline.engine import json_input
from wayline.engine.events import EventInput, validate_event
from wayline.engine.model import JSON
from wayline.errors import StoreError, ValidationError

from .clients import events_client, translate_errors
from .s3 import BlobStore

if TYPE_CHECKING:
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

__all__ = [
    "DETAIL_TYPE",
    "MAX_ENTRIES_PER_CALL",
    "SOURCE",
    "BusEvent",
    "EventBus",
    "PublishResult",
    "event_seeds",
    "parse_bus_message",
]

SOURCE = "wayline"
DETAIL_TYPE = "wayline.event"
META_KEY = "_wayline"
MAX_ENTRIES_PER_CALL = 10
"""PutEvents takes at most 10 entries per call."""
MAX_CALL_BYTES = 1024 * 1024
"""PutEvents' size limit per call (all entries together): 1 MiB since 2026-01-29 (it was
256 KB). Entries over ``CLAIM_CHECK_BYTES`` go by reference when there is a payload bucket."""
CLAIM_CHECK_BYTES = 256 * 1024
"""Entries larger than this go by reference (claim check). EventBridge's per-entry limit
was 256 KB until 2026-01-29 and is 1 MiB since, per call and so per entry; keeping every
entry at the old limit works in any region and leaves room for 4 per call."""
PAYLOAD_PREFIX = "events/"
_PAYLOAD_KEY = re.compile(r"events/[0-9a-f]{64}")
RETRYABLE_ENTRY_ERRORS = frozenset(
    {"InternalFailure", "InternalException", "ThrottlingException", "ServiceUnavailable"}
)
"""Per-entry failures worth another try; anything else (malformed, denied) is final."""
_UINT32 = 2**32


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The fate of one entry: EventBridge's event id, or the error code that stopped it."""

    event_id: str | None = None
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.event_id is not None


class EventBus:
    """``PutEvents`` to one bus, 10 entries per call, retrying failed entries (bounded).

    ``sleep`` and ``jitter`` are injectable so tests need not wait; the backoff before
    retry ``n`` is ``jitter() * base_delay_s * 2**n`` (full jitter).
    """

    def __init__(
        self,
        *,
        bus_name: str,
        client: EventBridgeClient | None = None,
        max_attempts: int = 4,
        base_delay_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        payloads: BlobStore | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.bus_name = bus_name
        self._client = client or events_client()
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._sleep = sleep
        self._jitter = jitter
        self._payloads = payloads

    def publish(
        self, events: Sequence[Mapping[str, JSON]], *, seeds: Sequence[str] | None = None
    ) -> list[PublishResult]:
        """Publish Inngest event objects (``seeds[i]`` fixes event i's id); one result each."""
        if seeds is not None and len(seeds) != len(events):
            raise ValueError("one seed per event")
        entries = [
            self.entry(event, seed=None if seeds is None else seeds[i])
            for i, event in enumerate(events)
        ]
        return self.put(entries)

    def entry(self, event: Mapping[str, JSON], *, seed: str | None) -> PutEventsRequestEntryTypeDef:
        """The PutEvents entry of ``event``; over ``CLAIM_CHECK_BYTES`` (with a payload
        bucket) the event is stored first and the entry carries its reference."""
        meta: dict[str, JSON] = {} if seed is None else {"seed": seed}
        detail = {**event, META_KEY: meta} if meta else dict(event)
        entry: PutEventsRequestEntryTypeDef = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail, separators=(",", ":")),
            "EventBusName": self.bus_name,
        }
        if self._payloads is None or entry_size(entry) <= CLAIM_CHECK_BYTES:
            return entry
        data = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        key = PAYLOAD_PREFIX + hashlib.sha256(data).hexdigest()
        self._payloads.put(key, data)  # content-addressed: a retry rewrites the same bytes
        meta |= {"payload": key, "bytes": len(data)}
        entry["Detail"] = json.dumps({"name": event.get("name"), META_KEY: meta})
        return entry

    def put(self, entries: Sequence[PutEventsRequestEntryTypeDef]) -> list[PublishResult]:
        """Send ``entries``; per-entry results in order. Raises ``StoreError`` only when a
        whole call fails (after botocore's own retries)."""
        results: list[PublishResult | None] = [None] * len(entries)
        chunk: list[int] = []
        size = 0
        for index, entry in enumerate(entries):
            entry_bytes = entry_size(entry)
            if entry_bytes > MAX_CALL_BYTES:
                results[index] = PublishResult(error_code="EntryTooLarge")
                continue
            if len(chunk) == MAX_ENTRIES_PER_CALL or size + entry_bytes > MAX_CALL_BYTES:
                self._send(entries, chunk, results)
                chunk, size = [], 0
            chunk.append(index)
            size += entry_bytes
        if chunk:
            self._send(entries, chunk, results)
        return [r if r is not None else PublishResult(error_code="Unknown") for r in results]

    def _send(
        self,
        entries: Sequence[PutEventsRequestEntryTypeDef],
        chunk: list[int],
        results: list[PublishResult | None],
    ) -> None:
        for index, result in zip(chunk, self._put_chunk([entries[i] for i in chunk]), strict=True):
            results[index] = result

    def _put_chunk(self, chunk: Sequence[PutEventsRequestEntryTypeDef]) -> list[PublishResult]:
        results: list[PublishResult | None] = [None] * len(chunk)
        pending = list(range(len(chunk)))
        for attempt in range(self._max_attempts):
            if attempt:
                self._sleep(self._jitter() * self._base_delay_s * 2**attempt)
            with translate_errors("EventBridge", "PutEvents"):
                response = self._client.put_events(Entries=[chunk[i] for i in pending])
            retry: list[int] = []
            for index, outcome in zip(pending, response["Entries"], strict=True):
                code = outcome.get("ErrorCode")
                if code is None and "EventId" in outcome:
                    results[index] = PublishResult(event_id=outcome["EventId"])
                    continue
                results[index] = PublishResult(error_code=code or "Unknown")
                if code in RETRYABLE_ENTRY_ERRORS:
                    retry.append(index)
            pending = retry
            if not pending:
                break
        return [r if r is not None else PublishResult(error_code="Unknown") for r in results]


def entry_size(entry: PutEventsRequestEntryTypeDef) -> int:
    """An entry's size as EventBridge counts it against the per-call limit."""
    fields = (entry.get("Source", ""), entry.get("DetailType", ""), entry.get("Detail", ""))
    resources = entry.get("Resources", [])
    return sum(len(f.encode()) for f in (*fields, *resources)) + (14 if "Time" in entry else 0)


# ---------------------------------------------------------------------------- ids


def _parse_seed(seed: str) -> tuple[int, bytes] | None:
    """``"<ms>,<base64 of 10 bytes>"`` -> (ms, entropy); None if malformed (then the
    caller falls back to another source, as Inngest's event API does)."""
    ms_text, _, b64 = seed.partition(",")
    if not ms_text.isascii() or not ms_text.isdigit() or not 0 < int(ms_text) < 2**48:
        return None
    try:
        entropy = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return (int(ms_text), entropy) if len(entropy) == 10 else None


def _seed(ms: int, entropy: bytes) -> str:
    return f"{ms},{base64.b64encode(entropy).decode()}"


def event_seeds(seed_header: str | None, count: int, *, now_ms: int, entropy: bytes) -> list[str]:
    """One seed per event of a request, such that event ``i`` gets the id Inngest's event
    API would give the ``i``-th event of a request with ``seed_header``.

    Each returned seed, used with index 1 (one event per bus entry), yields exactly
    ``seeded_event_id(seed_header, i + 1)``. Without a (valid) header, ``now_ms`` and
    ``entropy`` (10 random bytes) stand in for it.
    """
    parsed = _parse_seed(seed_header) if seed_header else None
    ms, base = parsed if parsed is not None else (now_ms, entropy)
    if len(base) != 10:
        raise ValueError("entropy must be 10 bytes")
    tail = int.from_bytes(base[6:10], "big")
    return [_seed(ms, base[:6] + ((tail + i) % _UINT32).to_bytes(4, "big")) for i in range(count)]


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One event read off the bus: validated, with the seed that fixes its internal id."""

    input: EventInput
    seed: str


def _envelope_seed(envelope: Mapping[str, JSON]) -> str:
    """A seed from the EventBridge envelope: the same message always maps to the same id."""
    envelope_id = str(envelope.get("id") or "")
    if not envelope_id:
        raise ValidationError("EventBridge envelope has no id", field="id")
    try:
        stamp = datetime.fromisoformat(str(envelope.get("time", "")).replace("Z", "+00:00"))
        ms = int(stamp.timestamp() * 1000)
    except ValueError as exc:
        raise ValidationError("EventBridge envelope has no valid time", field="time") from exc
    digest = hashlib.sha256(envelope_id.encode()).digest()
    return _seed(ms, digest[:10])


def parse_bus_message(body: str, payloads: BlobStore | None = None) -> BusEvent:
    """Parse an SQS message body holding an EventBridge event (the rule's target input);
    a claim-checked event is read from ``payloads``.

    Raises ``ValidationError`` (naming the field) for anything that is not a Wayline event:
    retrying it would never help. ``StoreError`` when its payload cannot be read now.
    """
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise ValidationError(f"message body is not JSON: {exc}", field="body") from exc
    if not isinstance(envelope, Mapping) or not isinstance(envelope.get("detail"), Mapping):
        raise ValidationError("message is not an EventBridge event with a detail", field="detail")
    detail = dict(envelope["detail"])
    meta = detail.pop(META_KEY, None)
    seed = meta.get("seed") if isinstance(meta, Mapping) else None
    if not isinstance(seed, str) or _parse_seed(seed) is None:
        seed = _envelope_seed(envelope)
    ref = meta.get("payload") if isinstance(meta, Mapping) else None
    if ref is None:
        return BusEvent(input=validate_event(detail), seed=seed)
    data = _claimed(ref, payloads)
    claimed = json_input.parse(data, field="events[0]")
    return BusEvent(input=validate_event(claimed, size=len(data)), seed=seed)


def _claimed(ref: JSON, payloads: BlobStore | None) -> bytes:
    """The bytes a claim check points at, if the reference is one we wrote and they are
    the bytes it names (the key is their hash)."""
    if not isinstance(ref, str) or not _PAYLOAD_KEY.fullmatch(ref):
        raise ValidationError(
            f"_wayline.payload {str(ref)[:80]!r} is not a payload key", field="payload"
        )
    if payloads is None:
        # A configuration error, not a bad event: fail so SQS retries, then dead-letters.
        raise StoreError(f"event payload {ref} is in S3 and no payload bucket is configured")
    data = payloads.get(ref)
    if PAYLOAD_PREFIX + hashlib.sha256(data).hexdigest() != ref:
        raise ValidationError(f"event payload {ref} does not match its hash", field="payload")
    return data


def raise_for_failures(results: Sequence[PublishResult]) -> None:
    """Raise ``StoreError`` naming how many events were not published (and why)."""
    failed = [r.error_code for r in results if not r.ok]
    if failed:
        codes = ", ".join(sorted({str(c) for c in failed}))
        raise StoreError(f"EventBridge PutEvents: {len(failed)} of {len(results)} failed ({codes})")
