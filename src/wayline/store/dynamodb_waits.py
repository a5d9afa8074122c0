"""``WaitStore`` on DynamoDB: one item per open pause, indexed by the event it awaits.

``WAIT#<id>``/``WAIT``; the ``waits_by_event`` index (all attributes projected: waits are
small, written once and deleted once) answers ``waits_for`` with one Query, oldest first.
"""

from __future__ import annotations

import contextlib

from wayline.engine.model import Wait

from . import keys
from .codec import wait_from_dict, wait_to_dict
from .dynamodb_schema import PK, SK
from .dynamodb_table import ConditionFailed, Item, Table, s


class DynamoWaitStore:
    def __init__(self, table: Table) -> None:
        self._t = table

    def add_wait(self, wait: Wait) -> None:
        put = self._t.put(self._item(wait), condition="attribute_not_exists(#pk)")
        with contextlib.suppress(ConditionFailed):  # idempotent by id: the first write stays
            self._t.write(put)

    def waits_for(self, event_name: str) -> list[Wait]:
        found = self._t.query(
            "#wait_event = :e",
            {":e": s(keys.waits_by_event(event_name))},
            index="waits_by_event",
        )
        return [wait_from_dict(self._t.decode_body(item)) for item in found]

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
            "wait_event": s(keys.waits_by_event(wait.event)),
            "wait_order": s(keys.wait_order(wait.created_at, wait.id)),
            **self._t.encode_body(
                wait_to_dict(wait), kind="wait", owner=wait.id, what=f"wait {wait.id}"
            ),
        }
