"""``Leases``, ``Counters`` and ``Parking`` on SQLite: the atomic primitives flow control
is built on."""

from __future__ import annotations

from wayline.engine.model import JSON, WorkItem
from wayline.engine.ports import Versioned

from .codec import dumps, loads, work_item_from_dict, work_item_to_dict
from .sqlite_db import Database


class SqliteLeases:
    def __init__(self, db: Database) -> None:
        self._db = db

    def acquire(self, key: str, holder: str, *, limit: int, now: int, ttl_ms: int) -> bool:
        with self._db.transaction() as conn:
            # Expired holders are as good as gone; dropping them keeps the count honest.
            conn.execute("DELETE FROM leases WHERE key = ? AND expires_at <= ?", (key, now))
            renewed = conn.execute(
                "UPDATE leases SET expires_at = ? WHERE key = ? AND holder = ?",
                (now + ttl_ms, key, holder),
            ).rowcount
            if renewed:
                return True
            (held,) = conn.execute("SELECT COUNT(*) FROM leases WHERE key = ?", (key,)).fetchone()
            if held >= limit:
                return False
            conn.execute(
                "INSERT INTO leases (key, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
                (key, holder, now, now + ttl_ms),
            )
            return True

    def release(self, key: str, holder: str) -> None:
        with self._db.autocommit() as conn:
            conn.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder))

    def holders(self, key: str, *, now: int) -> list[str]:
        with self._db.autocommit() as conn:
            rows = conn.execute(
                "SELECT holder FROM leases WHERE key = ? AND expires_at > ?"
                " ORDER BY acquired_at, holder",
                (key, now),
            ).fetchall()
        return [holder for (holder,) in rows]


class SqliteCounters:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str, *, now: int) -> Versioned | None:
        with self._db.autocommit() as conn:
            row = conn.execute(
                "SELECT value, version FROM counters WHERE key = ? AND expires_at > ?",
                (key, now),
            ).fetchone()
        return None if row is None else Versioned(value=loads(row[0]), version=row[1])

    def put(self, key: str, value: JSON, *, expected_version: int, now: int, ttl_ms: int) -> bool:
        body, expires = dumps(value), now + ttl_ms
        with self._db.transaction() as conn:
            if expected_version == 0:
                # Absent, or expired (an expired value counts as absent): one upsert.
                written = conn.execute(
                    "INSERT INTO counters (key, value, version, expires_at) VALUES (?, ?, 1, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = 1,"
                    " expires_at = excluded.expires_at WHERE counters.expires_at <= ?",
                    (key, body, expires, now),
                ).rowcount
            else:
                written = conn.execute(
                    "UPDATE counters SET value = ?, version = version + 1, expires_at = ?"
                    " WHERE key = ? AND version = ? AND expires_at > ?",
                    (body, expires, key, expected_version, now),
                ).rowcount
        return written == 1

    def delete(self, key: str, *, expected_version: int) -> bool:
        with self._db.autocommit() as conn:
            deleted = conn.execute(
                "DELETE FROM counters WHERE key = ? AND version = ?", (key, expected_version)
            ).rowcount
        return deleted == 1


class SqliteParking:
    def __init__(self, db: Database) -> None:
        self._db = db

    def park(self, key: str, item: WorkItem) -> None:
        with self._db.autocommit() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO parked (key, item_id, at, body) VALUES (?, ?, ?, ?)",
                (key, item.id, item.at, dumps(work_item_to_dict(item))),
            )

    def unpark(self, key: str, item: WorkItem) -> None:
        with self._db.autocommit() as conn:
            conn.execute("DELETE FROM parked WHERE key = ? AND item_id = ?", (key, item.id))

    def take_oldest(self, key: str, *, dropping: WorkItem | None = None) -> WorkItem | None:
        with self._db.transaction() as conn:
            if dropping is not None:
                conn.execute("DELETE FROM parked WHERE key = ? AND item_id = ?", (key, dropping.id))
            row = conn.execute(
                "SELECT item_id, body FROM parked WHERE key = ? ORDER BY at, item_id LIMIT 1",
                (key,),
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM parked WHERE key = ? AND item_id = ?", (key, row[0]))
        return work_item_from_dict(loads(row[1]))
