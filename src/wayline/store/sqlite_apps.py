"""``AppStore`` on SQLite: an app row plus one row per function, replaced together."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from wayline.engine.model import App, FunctionDef

from .codec import (
    app_from_dict,
    app_to_dict,
    dumps,
    function_from_dict,
    function_to_dict,
    loads,
)
from .sqlite_db import Database


class SqliteAppStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put_app(self, app: App, functions: Sequence[FunctionDef]) -> bool:
        """Replace the app and its functions; True iff anything but ``synced_at`` changed."""
        for fn in functions:
            if fn.app_id != app.id:
                raise ValueError(f"function {fn.id!r} of app {fn.app_id!r} put under {app.id!r}")
        new_fns = {fn.id: function_to_dict(fn) for fn in functions}
        with self._db.transaction() as conn:
            changed = _app_changed(conn, app)
            old_fns = {
                fn_id: loads(body)
                for fn_id, body in conn.execute(
                    "SELECT id, body FROM functions WHERE app_id = ?", (app.id,)
                )
            }
            conn.execute(
                "INSERT OR REPLACE INTO apps (id, body) VALUES (?, ?)",
                (app.id, dumps(app_to_dict(app))),
            )
            conn.executemany(
                "DELETE FROM functions WHERE id = ?", [(i,) for i in old_fns.keys() - new_fns]
            )
            # Decoded dicts are compared, not text: key order inside ``config`` is not a change.
            updates = [(i, d) for i, d in new_fns.items() if old_fns.get(i) != d]
            conn.executemany(
                "INSERT OR REPLACE INTO functions (id, app_id, body) VALUES (?, ?, ?)",
                [(fn_id, app.id, dumps(body)) for fn_id, body in updates],
            )
            return changed or bool(updates) or old_fns.keys() != new_fns.keys()

    def get_app(self, app_id: str) -> App | None:
        with self._db.autocommit() as conn:
            row = conn.execute("SELECT body FROM apps WHERE id = ?", (app_id,)).fetchone()
        return None if row is None else app_from_dict(loads(row[0]))

    def list_apps(self) -> list[App]:
        with self._db.autocommit() as conn:
            rows = conn.execute("SELECT body FROM apps ORDER BY id").fetchall()
        return [app_from_dict(loads(body)) for (body,) in rows]

    def get_function(self, function_id: str) -> FunctionDef | None:
        with self._db.autocommit() as conn:
            row = conn.execute("SELECT body FROM functions WHERE id = ?", (function_id,)).fetchone()
        return None if row is None else function_from_dict(loads(row[0]))

    def list_functions(self, app_id: str | None = None) -> list[FunctionDef]:
        with self._db.autocommit() as conn:
            if app_id is None:
                rows = conn.execute("SELECT body FROM functions ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    "SELECT body FROM functions WHERE app_id = ? ORDER BY id", (app_id,)
                ).fetchall()
        return [function_from_dict(loads(body)) for (body,) in rows]


def _app_changed(conn: sqlite3.Connection, app: App) -> bool:
    row = conn.execute("SELECT body FROM apps WHERE id = ?", (app.id,)).fetchone()
    if row is None:
        return True
    # A re-sync always moves ``synced_at``; only the rest of the app counts as a change.
    old = app_from_dict(loads(row[0]))
    return replace(old, synced_at=app.synced_at) != app
