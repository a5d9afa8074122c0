"""Realtime messages on DynamoDB, for the api function's subscribe polls (``api.realtime``).

One partition per channel, ``RT#<channel>``: a counter item ``SEQ`` numbers the channel's
messages, and each message is ``M#<20-digit seq>`` with its topic, JSON data, run id,
time and a TTL ``KEEP_MS`` after it (DynamoDB deletes lazily, so reads filter on the time
too). The counter expires ``COUNTER_TTL_S`` after the channel's last publish: by then every
token has expired, so no subscriber holds a cursor into the old numbering.

Costs: a publish is one UpdateItem (the counter, ADD) and one PutItem (1 write unit each
up to 1 KB); a subscribe poll is one strongly consistent Query of the messages after the
cursor (1 read unit per 4 KB, 0.5 for an empty answer). No Scan, no index.

Race: two publishers take numbers 4 and 5, and 5 is written first. A reader at cursor 3
then sees 5 but not 4; it stops before the gap (``after`` returns messages contiguous with
the cursor) unless the message after the gap is older than ``GAP_GRACE_MS``, when 4 is
taken as lost (its publisher failed between its two writes) and skipped. So a message can
be delayed by a poll, and one whose second write never happened is skipped; none is
delivered twice or out of order within a subscription.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from wayline.realtime_log import KEEP_MS, MAX_MESSAGE_BYTES, Message

from .dynamodb_schema import TTL_ATTRIBUTE
from .dynamodb_table import Table, key_item, n, number, s, text
from .keys import Key

COUNTER_TTL_S = 24 * 3600 + 600
"""Longer than a token lives (24 h at most)."""
GAP_GRACE_MS = 2_000
PAGE = 100
_SEQ_DIGITS = 20


def _pk(channel: str) -> str:
    return f"RT#{channel}"


def _sk(seq: int) -> str:
    return f"M#{seq:0{_SEQ_DIGITS}d}"


class DynamoRealtimeLog:
    """``realtime_log.MessageLog`` over the state table. Subscribers poll: ``wait`` sleeps."""

    def __init__(self, table: Table, now: Callable[[], int]) -> None:
        self._t = table
        self._now = now

    def publish(self, channel: str, topic: str, data: Any, run_id: str | None) -> Message:
        now = self._now()
        counter = self._t.update(
            Key(_pk(channel), "SEQ"),
            "ADD #n :one SET #expires_at = :ttl",
            values={":one": n(1), ":ttl": n(now // 1000 + COUNTER_TTL_S)},
        )
        seq = number(self._t.write(counter, returns="UPDATED_NEW"), "n")
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if len(encoded.encode()) > MAX_MESSAGE_BYTES:  # the API checked the raw body already
            raise ValueError(f"a realtime message is limited to {MAX_MESSAGE_BYTES} bytes")
        item = {
            **key_item(Key(_pk(channel), _sk(seq))),
            "topic": s(topic),
            "data": s(encoded),
            "at": n(now),
            TTL_ATTRIBUTE: n((now + KEEP_MS) // 1000 + 1),
        }
        if run_id:
            item["run"] = s(run_id)
        self._t.write(self._t.put(item))
        return Message(seq, channel, topic, data, run_id, now)

    def after(self, channel: str, topics: frozenset[str], cursor: int) -> list[Message]:
        now = self._now()
        items = self._t.query(
            "#pk = :pk AND #sk BETWEEN :first AND :last",
            {":pk": s(_pk(channel)), ":first": s(_sk(cursor + 1)), ":last": s("M#~")},
            page_size=PAGE,
        )
        found: list[Message] = []
        expected = cursor + 1
        for item in items:
            seq, at = int(text(item, "sk")[2:]), number(item, "at")
            if seq != expected and now - at < GAP_GRACE_MS:
                break  # an earlier number may still be being written
            expected = seq + 1
            if at < now - KEEP_MS or text(item, "topic") not in topics:
                continue
            run = item.get("run")
            found.append(
                Message(
                    seq,
                    channel,
                    text(item, "topic"),
                    json.loads(text(item, "data")),
                    None if run is None else str(run["S"]),
                    at,
                )
            )
            if len(found) >= PAGE:
                break
        return found

    async def wait(self, timeout_s: float) -> None:
        await asyncio.sleep(timeout_s)
