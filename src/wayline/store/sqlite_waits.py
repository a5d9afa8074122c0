"""``WaitStore`` on SQLite: open pauses indexed by the event name they listen for."""

from __future__ import annotations

import sqlite3

from wayline.engine.model import Wait

from .codec import dumps, loads, wait_from_dict, wait_to_dict
from .sqlite_db import Database

# DELETE ... RETURNING (SQLite 3.35+) makes take_wait one atomic statement. Older
# libraries select and delete inside one write transaction, which is just as exclusive.
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


class SqliteWaitStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add_wait(self, wait: Wait) -> None:
        with self._db.autocommit() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO waits (id, event, run_id, created_at, body)"
                " VALUES (?, ?, ?, ?, ?)",
                (wait.id, wait.event, wait.run_id, wait.created_at, dumps(wait_to_dict(wait))),
            )

    def waits_for(self, event_name: str) -> list[Wait]:
        with self._db.autocommit() as conn:
            rows = conn.execute(
                "SELECT body FROM waits WHERE event = ? ORDER BY created_at, id", (event_name,)
            ).fetchall()
        return [wait_from_dict(loads(body)) for (body,) in rows]

    def take_wait(self, wait_id: str) -> Wait | None:
        with self._db.transaction() as conn:
            if HAS_RETURNING:
                # fetchall: the statement must run to completion inside the transaction.
                rows = conn.execute(
                    "DELETE FROM waits WHERE id = ? RETURNING body", (wait_id,)
                ).fetchall()
            else:
                rows = conn.execute("SELECT body FROM waits WHERE id = ?", (wait_id,)).fetchall()
                conn.execute("DELETE FROM waits WHERE id = ?", (wait_id,))
        return wait_from_dict(loads(rows[0][0])) if rows else None
