"""``EventStore`` on SQLite: events are immutable rows keyed by their ULID ``internal_id``."""

from __future__ import annotations

from collections.abc import Sequence

from wayline.engine.model import Event

from .codec import dumps, event_from_dict, event_to_dict, loads
from .sqlite_db import Database


class SqliteEventStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put_events(self, events: Sequence[Event]) -> None:
        rows = [(e.internal_id, e.name, e.received_at, dumps(event_to_dict(e))) for e in events]
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO events (internal_id, name, received_at, body)"
                " VALUES (?, ?, ?, ?)",
                rows,
            )

    def get_event(self, internal_id: str) -> Event | None:
        with self._db.autocommit() as conn:
            row = conn.execute(
                "SELECT body FROM events WHERE internal_id = ?", (internal_id,)
            ).fetchone()
        return None if row is None else event_from_dict(loads(row[0]))

    def list_events(
        self,
        *,
        name: str | None = None,
        limit: int = 100,
        before_id: str | None = None,
        received_after: int | None = None,
        received_before: int | None = None,
    ) -> list[Event]:
        """Newest first. Every bound is exclusive: ``received_after < received_at <
        received_before`` and ``internal_id < before_id``."""
        if limit <= 0:
            return []
        conditions = (
            ("name = ?", name),
            ("internal_id < ?", before_id),
            ("received_at > ?", received_after),
            ("received_at < ?", received_before),
        )
        where = [sql for sql, value in conditions if value is not None]
        params: list[str | int] = [value for _, value in conditions if value is not None]
        sql = "SELECT body FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # ULIDs sort by time, so internal_id order is arrival order.
        sql += " ORDER BY internal_id DESC LIMIT ?"
        with self._db.autocommit() as conn:
            rows = conn.execute(sql, [*params, limit]).fetchall()
        return [event_from_dict(loads(body)) for (body,) in rows]
