"""``WorkQueue`` and ``Idempotency`` on SQLite: the two lease-style primitives.

A queue item is claimable at ``now`` iff ``at <= now`` and its lease is free or expired
(``lease_until IS NULL OR lease_until <= now``). A claimed item that is never acked (the
worker crashed) is handed out again once its lease expires.
"""

from __future__ import annotations

from collections.abc import Sequence

from wayline.engine.model import WorkItem

from .codec import dumps, loads, work_item_from_dict, work_item_to_dict
from .sqlite_db import Database


class SqliteWorkQueue:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(self, items: Sequence[WorkItem]) -> None:
        rows = [(i.id, i.run_id, i.at, dumps(work_item_to_dict(i))) for i in items]
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO queue (id, run_id, at, body) VALUES (?, ?, ?, ?)", rows
            )

    def claim(self, *, now: int, lease_ms: int, limit: int) -> list[WorkItem]:
        if limit <= 0:
            return []
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, body FROM queue"
                " WHERE at <= ? AND (lease_until IS NULL OR lease_until <= ?)"
                " ORDER BY at, id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            conn.executemany(
                "UPDATE queue SET lease_until = ? WHERE id = ?",
                [(now + lease_ms, item_id) for item_id, _ in rows],
            )
        return [work_item_from_dict(loads(body)) for _, body in rows]

    def release_leases(self) -> int:
        """Free every lease: only for a process that is the file's sole worker (``wayline dev``
        at start-up), whose previous incarnation's in-flight items would otherwise wait
        out their leases after a crash."""
        with self._db.autocommit() as conn:
            return conn.execute(
                "UPDATE queue SET lease_until = NULL WHERE lease_until IS NOT NULL"
            ).rowcount

    def defer(self, item_id: str, *, until: int) -> None:
        with self._db.autocommit() as conn:
            conn.execute("UPDATE queue SET lease_until = ? WHERE id = ?", (until, item_id))

    def wake(self, items: Sequence[WorkItem]) -> None:
        # A deferred item's lease is its retry time: clearing it makes the item due now.
        with self._db.autocommit() as conn:
            conn.executemany(
                "UPDATE queue SET lease_until = NULL WHERE id = ?", [(i.id,) for i in items]
            )

    def ack(self, item_id: str) -> None:
        with self._db.autocommit() as conn:
            conn.execute("DELETE FROM queue WHERE id = ?", (item_id,))

    def next_due(self) -> int | None:
        """The earliest time at which ``claim`` would return an item, or None if empty.

        That is ``min(max(at, lease_until))`` over all items: an unleased item is due at
        its ``at``; a leased one not before its lease expires (when it is handed out again
        if it was never acked). This needs no clock and is never later than the true next
        claim time, so a worker sleeping until then misses nothing; nor does it report a
        leased item's past ``at``, which would make an idle worker spin.
        """
        with self._db.autocommit() as conn:
            # Two indexed reads, not one scan: leased items are few (at most the worker
            # pool) and the first unleased one is near the head of the ``at`` index.
            (unleased,) = conn.execute(
                "SELECT MIN(at) FROM (SELECT at FROM queue WHERE lease_until IS NULL"
                " ORDER BY at LIMIT 1)"
            ).fetchone()
            (leased,) = conn.execute(
                "SELECT MIN(MAX(at, lease_until)) FROM queue WHERE lease_until IS NOT NULL"
            ).fetchone()
        due = [t for t in (unleased, leased) if t is not None]
        return min(due) if due else None


class SqliteIdempotency:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, key: str, *, now: int, ttl_ms: int, owner: str = "") -> bool:
        with self._db.transaction() as conn:
            # The upsert's WHERE makes "insert, or take over an expired claim" one atomic
            # statement; rowcount is 0 when the key is held and not yet expired.
            claimed = conn.execute(
                "INSERT INTO idempotency (key, expires_at, owner) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at,"
                " owner = excluded.owner WHERE idempotency.expires_at <= ?",
                (key, now + ttl_ms, owner, now),
            ).rowcount
            # Expired keys are as good as absent: drop them so the table stays small. Each
            # row is deleted once, so this costs O(1) amortized per claim.
            conn.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
        return claimed == 1

    def holder(self, key: str, *, now: int) -> str | None:
        with self._db.autocommit() as conn:
            row = conn.execute(
                "SELECT owner FROM idempotency WHERE key = ? AND expires_at > ?", (key, now)
            ).fetchone()
        return None if row is None else str(row[0])
