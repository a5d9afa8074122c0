"""Realtime messages as the server keeps them, and the port of where they wait.

``MemoryBus`` (``wayline.api.realtime``) keeps them in the dev server's memory,
``DynamoRealtimeLog`` (``wayline.store.dynamodb_realtime``) in DynamoDB for the api
function; both keep a channel's messages ``KEEP_MS``, and the bus at most
``KEEP_PER_CHANNEL`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

MAX_MESSAGE_BYTES = 512 * 1024
KEEP_PER_CHANNEL = 1000
KEEP_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    channel: str
    topic: str
    data: Any
    run_id: str | None
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "topic": self.topic,
            "data": self.data,
            "run_id": self.run_id,
            "created_at": self.created_at,
        }


class MessageLog(Protocol):
    """Where published messages wait for subscribers: ``MemoryBus`` on ``wayline dev``,
    ``wayline.store.dynamodb_realtime.DynamoRealtimeLog`` on AWS."""

    def publish(self, channel: str, topic: str, data: Any, run_id: str | None) -> Message: ...

    def after(self, channel: str, topics: frozenset[str], cursor: int) -> list[Message]: ...

    async def wait(self, timeout_s: float) -> None: ...
