"""``EventStore`` on DynamoDB: one immutable item per event, two keys-only indexes.

Event item: ``EVT#<internal_id>``/``EVT``. ``events_by_name`` (``EVENT_SHARDS``
partitions per event name, ``EVN#<n>#<name>``) serves ``list_events(name=...)``;
``events_by_time`` (``EVENT_SHARDS`` partitions) serves the unfiltered listing; both are
merged on read (one Query per shard). Both sort on the internal id (a ULID, so
newest first is descending) and carry ``rcv`` (received_at) for the time bounds; the
bodies are then fetched with one BatchGetItem per 100 events.

Costs: ``put_events`` is one conditional PutItem per event (insert-only, so it cannot be
batched: BatchWriteItem has no conditions), i.e. the event's KB plus ~1 write unit per
index. Events over the item budget (the API accepts up to 3 MiB) go to S3 like memos,
or are refused with a ``StoreError`` when no S3 offload is configured: refused, not
truncated, and nothing of that event is stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from wayline.engine.model import Event

from . import keys
from .codec import event_from_dict, event_to_dict
from .dynamodb_schema import PK, SK, Retention
from .dynamodb_table import ConditionFailed, Item, Table, key_of, merge_sorted, n, s


class DynamoEventStore:
    def __init__(self, table: Table, retention: Retention | None = None) -> None:
        self._t = table
        self._retention = retention

    def put_events(self, events: Sequence[Event]) -> None:
        for event in events:
            put = self._t.put(self._item(event), condition="attribute_not_exists(#pk)")
            with contextlib.suppress(ConditionFailed):  # insert-only: the first write stays
                self._t.write(put)

    def get_event(self, internal_id: str) -> Event | None:
        item = self._t.get(keys.event(internal_id))
        return None if item is None else event_from_dict(self._t.decode_body(item))

    def list_events(
        self,
        *,
        name: str | None = None,
        limit: int = 100,
        before_id: str | None = None,
        received_after: int | None = None,
        received_before: int | None = None,
    ) -> list[Event]:
        """Newest first; every bound exclusive, as on SQLite."""
        if limit <= 0:
            return []
        filters = []
        values: Item = {}
        if received_after is not None:
            filters.append("#rcv > :after")
            values[":after"] = n(received_after)
        if received_before is not None:
            filters.append("#rcv < :before_ms")
            values[":before_ms"] = n(received_before)
        if before_id is not None:
            values[":before_id"] = s(before_id)
        cursor = " AND #ev_id < :before_id" if before_id is not None else ""

        def newest_first(index: str, attribute: str, partition: str) -> Iterator[Item]:
            return self._t.query(
                f"#{attribute} = :p{cursor}",
                {**values, ":p": s(partition)},
                index=index,
                forward=False,
                page_size=limit,
                filter_expression=" AND ".join(filters) or None,
            )

        if name is not None:
            streams = [
                newest_first("events_by_name", "ev_name", keys.events_by_name(name, shard))
                for shard in range(keys.EVENT_SHARDS)
            ]
        else:
            streams = [
                newest_first("events_by_time", "ev_shard", keys.events_by_time(shard))
                for shard in range(keys.EVENT_SHARDS)
            ]
        wanted = [
            key_of(item) for item in merge_sorted(streams, "ev_id", descending=True, limit=limit)
        ]
        found = self._t.batch_get(wanted)
        return [event_from_dict(self._t.decode_body(found[k])) for k in wanted if k in found]

    def _item(self, event: Event) -> Item:
        key = keys.event(event.internal_id)
        shard = keys.shard_of(event.internal_id, keys.EVENT_SHARDS)
        return {
            PK: s(key.pk),
            SK: s(key.sk),
            "ev_id": s(event.internal_id),
            "ev_name": s(keys.events_by_name(event.name, shard)),
            "ev_shard": s(keys.events_by_time(shard)),
            "rcv": n(event.received_at),
            **(self._retention.expires_at(event.received_at) if self._retention else {}),
            **self._t.encode_body(
                event_to_dict(event),
                kind="event",
                owner=event.internal_id,
                what=f"event {event.internal_id} ({event.name})",
            ),
        }
