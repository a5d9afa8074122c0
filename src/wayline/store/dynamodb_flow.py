"""``Leases`` and ``Counters`` on DynamoDB: one item per key, compare-and-set on ``ver``.

A lease key ``LEASE#<key>``/``LEASE`` holds all of its holders in one small body
(``[[holder, acquired_at, expires_at], ...]``: at most ``limit`` of them), so "no more
than ``limit`` live holders" is a property of one item, and one conditional write
enforces it, whatever the holders' expiry. ``acquire`` reads the item, decides, and writes
it back conditional on the version it read; a racer that lost gets the winner's item
back (``ALL_OLD``) and decides again without another read. A full key costs one read and
no write. One item takes about 1,000 writes/s: the ceiling for a single concurrency key.

Parked work items (``Parking``: blocked by a full concurrency key) are one item each,
``PARK#<key>``/``<at>#<item id>``: a key's partition sorted oldest first. ``park`` is one
conditional PutItem (1 write unit; a second park of the same item is refused for free
by its condition); ``take_oldest`` one strongly consistent Query of two entries (0.5 read
unit) plus, when there is one, a conditional DeleteItem that only one taker wins (the
loser queries again). A release with nobody parked costs the Query alone. The partition
takes about 1,000 parks/s, above what one concurrency key's slots turn over.

A counter ``CTR#<key>``/``CTR`` is one conditional PutItem or DeleteItem per write: 1 write
unit for a value under 1 KB, no read. Both kinds carry ``expires_at`` (epoch seconds,
the table's TTL) so that abandoned keys are deleted by DynamoDB.
"""

from __future__ import annotations

import contextlib
from typing import Any

from wayline.engine.model import JSON, WorkItem
from wayline.engine.ports import Versioned

from . import keys
from .codec import work_item_from_dict, work_item_to_dict
from .dynamodb_schema import PK, SK, TTL_ATTRIBUTE
from .dynamodb_table import ConditionFailed, Item, Table, n, number, s

_CAS_ATTEMPTS = 32

Holders = list[tuple[str, int, int]]
"""(holder, acquired_at, expires_at), in acquisition order."""


class DynamoLeases:
    def __init__(self, table: Table) -> None:
        self._t = table

    def acquire(self, key: str, holder: str, *, limit: int, now: int, ttl_ms: int) -> bool:
        old = self._t.get(keys.lease(key))
        for _ in range(_CAS_ATTEMPTS):
            held = [h for h in self._holders(old) if h[2] > now]  # expired holders do not count
            mine = [h for h in held if h[0] == holder]
            if mine:
                held = [(h, a, now + ttl_ms if h == holder else e) for h, a, e in held]
            elif len(held) >= limit:
                return False
            else:
                held.append((holder, now, now + ttl_ms))
            try:
                self._write(key, held, old)
            except ConditionFailed as lost:
                old = lost.old  # another acquire or release won: decide again on its result
                continue
            return True
        # Every attempt lost to another writer of this key: report "not now", as a full
        # key would; the caller retries later, as it does when the limit is reached.
        return False

    def release(self, key: str, holder: str) -> None:
        old = self._t.get(keys.lease(key))
        for _ in range(_CAS_ATTEMPTS):
            held = self._holders(old)
            if not any(h[0] == holder for h in held):
                return
            try:
                self._write(key, [h for h in held if h[0] != holder], old)
            except ConditionFailed as lost:
                old = lost.old
                continue
            return

    def holders(self, key: str, *, now: int) -> list[str]:
        held = self._holders(self._t.get(keys.lease(key)))
        return [h for h, _, expires in sorted(held, key=lambda h: (h[1], h[0])) if expires > now]

    def _holders(self, item: Item | None) -> Holders:
        if item is None:
            return []
        return [(h, a, e) for h, a, e in self._t.decode_body(item)]

    def _write(self, key: str, held: Holders, old: Item | None) -> None:
        """Store ``held`` iff the item is still ``old``; an empty key is deleted."""
        target = keys.lease(key)
        if old is None:
            condition, values = "attribute_not_exists(#pk)", None
        else:
            condition, values = "#ver = :ver", {":ver": old["ver"]}
        if not held:
            write = self._t.delete(target, condition=condition, values=values)
        else:
            item: Item = {
                PK: s(target.pk),
                SK: s(target.sk),
                "ver": n(0 if old is None else number(old, "ver") + 1),
                TTL_ATTRIBUTE: n(_ttl_seconds(max(e for _, _, e in held))),
                **self._t.encode_body(
                    [list(h) for h in held], kind="lease", owner=key, what=f"lease key {key}"
                ),
            }
            write = self._t.put(item, condition=condition, values=values)
        self._t.write(write, old_on_fail=True)


class DynamoCounters:
    def __init__(self, table: Table) -> None:
        self._t = table

    def get(self, key: str, *, now: int) -> Versioned | None:
        item = self._t.get(keys.counter(key))
        if item is None or number(item, "exp") <= now:
            return None  # an expired value is absent, whether or not TTL deleted it yet
        return Versioned(value=self._t.decode_body(item), version=number(item, "ver"))

    def put(self, key: str, value: JSON, *, expected_version: int, now: int, ttl_ms: int) -> bool:
        target = keys.counter(key)
        item: Item = {
            PK: s(target.pk),
            SK: s(target.sk),
            "ver": n(expected_version + 1),
            "exp": n(now + ttl_ms),
            TTL_ATTRIBUTE: n(_ttl_seconds(now + ttl_ms)),
            **self._t.encode_body(value, kind="counter", owner=key, what=f"counter {key}"),
        }
        values: dict[str, Any] = {":now": n(now)}
        if expected_version == 0:
            condition = "attribute_not_exists(#pk) OR #exp <= :now"
        else:
            condition = "#ver = :ver AND #exp > :now"
            values[":ver"] = n(expected_version)
        try:
            self._t.write(self._t.put(item, condition=condition, values=values))
        except ConditionFailed:
            return False
        return True

    def delete(self, key: str, *, expected_version: int) -> bool:
        delete = self._t.delete(
            keys.counter(key), condition="#ver = :ver", values={":ver": n(expected_version)}
        )
        try:
            self._t.write(delete)
        except ConditionFailed:
            return False
        return True


class DynamoParking:
    def __init__(self, table: Table) -> None:
        self._t = table

    def park(self, key: str, item: WorkItem) -> None:
        target = keys.parked_item(key, item.at, item.id)
        entry: Item = {
            PK: s(target.pk),
            SK: s(target.sk),
            **self._t.encode_body(
                work_item_to_dict(item), kind="parked", owner=item.id, what=f"item {item.id}"
            ),
        }
        with contextlib.suppress(ConditionFailed):  # already parked: the first entry stays
            self._t.write(self._t.put(entry, condition="attribute_not_exists(#pk)"))

    def unpark(self, key: str, item: WorkItem) -> None:
        self._t.write(self._t.delete(keys.parked_item(key, item.at, item.id)))

    def take_oldest(self, key: str, *, dropping: WorkItem | None = None) -> WorkItem | None:
        drop = _sort_key(dropping) if dropping is not None else None
        for _ in range(_CAS_ATTEMPTS):
            oldest = self._oldest(key)
            if dropping is not None and drop is not None:
                # The page shows whether its entry exists, unless it sorts past the page.
                if any(_sk(e) == drop for e in oldest) or (
                    len(oldest) == _PEEK and drop > _sk(oldest[-1])
                ):
                    self.unpark(key, dropping)
                oldest = [e for e in oldest if _sk(e) != drop]
                drop = None
            if not oldest:
                return None
            taken = self._t.delete(
                keys.Key(oldest[0][PK]["S"], _sk(oldest[0])), condition="attribute_exists(#pk)"
            )
            try:
                old = self._t.write(taken, returns="ALL_OLD")
            except ConditionFailed:
                continue  # another release took it: look again
            return work_item_from_dict(self._t.decode_body(old))
        return None  # every attempt lost to another taker, and each of those woke one

    def _oldest(self, key: str) -> list[Item]:
        pages = self._t.query("#pk = :p", {":p": s(keys.parked(key))}, page_size=_PEEK)
        return [entry for _, entry in zip(range(_PEEK), pages, strict=False)]


_PEEK = 2
"""Entries ``take_oldest`` reads: the oldest, and the next in case the first is dropped."""


def _sort_key(item: WorkItem) -> str:
    return keys.parked_item("", item.at, item.id).sk


def _sk(entry: Item) -> str:
    return str(entry[SK]["S"])


def _ttl_seconds(expires_ms: int) -> int:
    # Rounded up: TTL must never delete an item before it has expired.
    return -(-expires_ms // 1000)
