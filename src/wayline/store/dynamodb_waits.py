"""``WaitStore`` on DynamoDB: one item per open pause, indexed by the event it awaits.

``WAIT#<id>``/``WAIT``; the ``waits_by_event`` index (all attributes projected: waits are
small, written once and deleted once) answers ``waits_for``, oldest first.

An event name's waits are spread over ``keys.WAIT_SHARDS`` = 4 index partitions by wait
id (``WEV#<name>``, ``WEV#1#<name>`` ...): when every run of a busy function waits for the
same event name, each run puts and deletes one wait, and at 1,000 runs/s one partition
would take 2,000 writes/s, twice its limit; sharded, each takes 500/s. The price is on
the read side: ``waits_for`` (once per ingested event) is 4 Queries merged by
``wait_order``, 4 x 0.5 read units when nobody waits, instead of one. Index reads are
eventually consistent: a wait put a moment ago may be missed by an event ingested at the
same instant, as before the sharding.
"""

from __future__ import annotations

import contextlib

from wayline.engine.model import Wait

from . import keys
from .codec import wait_from_dict, wait_to_dict
from .dynamodb_schema import PK, SK
from .dynamodb_table import ConditionFailed, Item, Table, merge_iter, s


class DynamoWaitStore:
    def __init__(self, table: Table) -> None:
        self._t = table

    def add_wait(self, wait: Wait) -> None:
        put = self._t.put(self._item(wait), condition="attribute_not_exists(#pk)")
        with contextlib.suppress(ConditionFailed):  # idempotent by id: the first write stays
            self._t.write(put)

    def waits_for(self, event_name: str) -> list[Wait]:
        shards = [
            self._t.query(
                "#wait_event = :e",
                {":e": s(keys.waits_by_event(event_name, shard))},
                index="waits_by_event",
            )
            for shard in range(keys.WAIT_SHARDS)
        ]
        merged = merge_iter(shards, "wait_order", descending=False)
        waits = [wait_from_dict(self._t.decode_body(item)) for item in merged]
        # Shard 0's key is unprefixed (``WEV#<name>``), so a name like ``1#x`` could share
        # a partition with shard 1 of ``x``: keep only this name's waits.
        return [wait for wait in waits if wait.event == event_name]

    def take_wait(self, wait_id: str) -> Wait | None:
        # Exactly one taker wins, without a read first:
        #
        #   A: DeleteItem(if exists, ReturnValues=ALL_OLD) -> the wait, as it was deleted
        #   B: DeleteItem(if exists, ReturnValues=ALL_OLD) -> ConditionalCheckFailed: None
        delete = self._t.delete(keys.wait(wait_id), condition="attribute_exists(#pk)")
        try:
            old = self._t.write(delete, returns="ALL_OLD")
        except ConditionFailed:
            return None
        return wait_from_dict(self._t.decode_body(old))

    def _item(self, wait: Wait) -> Item:
        key = keys.wait(wait.id)
        return {
            PK: s(key.pk),
            SK: s(key.sk),
            "wait_event": s(
                keys.waits_by_event(wait.event, keys.shard_of(wait.id, keys.WAIT_SHARDS))
            ),
            "wait_order": s(keys.wait_order(wait.created_at, wait.id)),
            **self._t.encode_body(
                wait_to_dict(wait), kind="wait", owner=wait.id, what=f"wait {wait.id}"
            ),
        }
