"""``WorkQueue`` and ``Idempotency`` on DynamoDB: the two lease-style primitives.

On AWS, run wake-ups travel through SQS (delays) and EventBridge Scheduler; this queue
exists so that the DynamoDB store implements every port and passes the same contract
suite (a single-process deployment could run on it). Its index is one partition, so it
is not built for more than about 1,000 claims per second.

A queue item ``Q#<id>``/``Q`` is in the ``queue_due`` index under ``<due>#<id>``, where
``due = max(at, lease_until)`` is when ``claim`` may next hand it out. So ``claim`` reads
the index up to ``now`` and leases each candidate with a conditional update (which also
moves its due time to the lease end), and ``next_due`` is the index's first entry: exactly
SQLite's ``min(max(at, lease_until))``, with no clock. The index is eventually consistent
on AWS: a stale candidate just fails its condition; ``next_due`` may briefly miss an item
enqueued a moment ago, so a worker should not sleep for long on it.

Idempotency keys ``IDEM#<key>``/``IDEM`` hold their expiry in ms (``exp``, what the
condition compares) and in epoch seconds (``expires_at``, the table's TTL attribute, so
DynamoDB deletes them some time after they expire, for free).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from wayline.engine.model import WorkItem

from . import keys
from .codec import work_item_from_dict, work_item_to_dict
from .dynamodb_schema import PK, SK, TTL_ATTRIBUTE
from .dynamodb_table import ConditionFailed, Item, Table, n, number, s, text


class DynamoWorkQueue:
    def __init__(self, table: Table) -> None:
        self._t = table

    def enqueue(self, items: Sequence[WorkItem]) -> None:
        for item in items:
            put = self._t.put(self._item(item), condition="attribute_not_exists(#pk)")
            # Already queued: left unchanged, and so is its lease, if it has one.
            with contextlib.suppress(ConditionFailed):
                self._t.write(put)

    def claim(self, *, now: int, lease_ms: int, limit: int) -> list[WorkItem]:
        """Lease up to ``limit`` due items, returned in (at, id) order.

        Each candidate costs one conditional UpdateItem; workers racing for the same
        candidates each win a share (the losers' conditions fail, nothing is read twice).
        """
        if limit <= 0:
            return []
        candidates = self._t.query(
            "#q_part = :q AND #q_due < :upper",
            {":q": s(keys.QUEUE_PARTITION), ":upper": s(keys.queue_due_before(now))},
            index="queue_due",
            page_size=2 * limit,  # some may be lost to other workers
        )
        won: list[WorkItem] = []
        for candidate in candidates:
            item = self._lease(candidate, now=now, until=now + lease_ms)
            if item is not None:
                won.append(item)
                if len(won) == limit:
                    break
        return sorted(won, key=lambda item: (item.at, item.id))

    def ack(self, item_id: str) -> None:
        self._t.write(self._t.delete(keys.queue_item(item_id)))

    def defer(self, item_id: str, *, until: int) -> None:
        """Hold the item until ``until``: it is due again at ``max(at, until)``.

        Usually ``at <= until`` (a claimed item is due), which one conditional update
        assumes; if not, the failed condition hands back the item (``ALL_OLD``) and a
        second update uses its ``at``. An item acked meanwhile stays gone.
        """
        try:
            self._set_lease(
                item_id,
                until=until,
                due=until,
                condition="attribute_exists(#pk) AND #at <= :until_",
                values={":until_": n(until)},
            )
        except ConditionFailed as lost:
            if lost.old is None:
                return
            at = number(lost.old, "at")
            with contextlib.suppress(ConditionFailed):
                self._set_lease(item_id, until=until, due=at, condition="attribute_exists(#pk)")

    def wake(self, items: Sequence[WorkItem]) -> None:
        for item in items:
            # A deferral down to the item's own ``at`` (past for a blocked call): due now.
            self.defer(item.id, until=item.at)

    def next_due(self) -> int | None:
        first = self._t.query(
            "#q_part = :q",
            {":q": s(keys.QUEUE_PARTITION)},
            index="queue_due",
            page_size=1,
        )
        head = next(first, None)
        return None if head is None else keys.due_of(text(head, "q_due"))

    def _lease(self, candidate: Item, *, now: int, until: int) -> WorkItem | None:
        try:
            leased = self._set_lease(
                keys.item_of_due(text(candidate, "q_due")),
                until=until,
                due=until,  # >= now >= at, so the lease end is when it is due again
                condition=(
                    "attribute_exists(#pk) AND #at <= :now"
                    " AND (attribute_not_exists(#lease) OR #lease <= :now)"
                ),
                values={":now": n(now)},
            )
        except ConditionFailed:
            return None  # another worker leased it, or it was acked, since the index read
        return work_item_from_dict(self._t.decode_body(leased))

    def _set_lease(
        self, item_id: str, *, until: int, due: int, condition: str, values: Item | None = None
    ) -> Item:
        """Lease ``item_id`` until ``until`` (due again at ``due``) if ``condition`` holds;
        returns the item as written."""
        update = self._t.update(
            keys.queue_item(item_id),
            "SET #lease = :until, #q_due = :due",
            condition=condition,
            values={
                **(values or {}),
                ":until": n(until),
                ":due": s(keys.queue_due(due, item_id)),
            },
        )
        return self._t.write(update, returns="ALL_NEW", old_on_fail=True)

    def _item(self, item: WorkItem) -> Item:
        key = keys.queue_item(item.id)
        return {
            PK: s(key.pk),
            SK: s(key.sk),
            "at": n(item.at),
            "q_part": s(keys.QUEUE_PARTITION),
            "q_due": s(keys.queue_due(item.at, item.id)),
            **self._t.encode_body(
                work_item_to_dict(item), kind="queue", owner=item.id, what=f"work item {item.id}"
            ),
        }


class DynamoIdempotency:
    def __init__(self, table: Table) -> None:
        self._t = table

    def claim(self, key: str, *, now: int, ttl_ms: int, owner: str = "") -> bool:
        expires_ms = now + ttl_ms
        target = keys.idempotency(key)
        item = {
            PK: s(target.pk),
            SK: s(target.sk),
            "exp": n(expires_ms),
            "owner": s(owner),
            # Rounded up: TTL must never delete a key before it has expired.
            TTL_ATTRIBUTE: n(-(-expires_ms // 1000)),
        }
        # Insert, or take over an expired claim, in one conditional put; a held key fails.
        put = self._t.put(
            item, condition="attribute_not_exists(#pk) OR #exp <= :now", values={":now": n(now)}
        )
        try:
            self._t.write(put)
        except ConditionFailed:
            return False
        return True

    def holder(self, key: str, *, now: int) -> str | None:
        # One strongly consistent GetItem; only a duplicate start pays it.
        item = self._t.get(keys.idempotency(key))
        if item is None or number(item, "exp") <= now:
            return None
        return text(item, "owner") if "owner" in item else ""
