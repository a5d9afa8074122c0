"""``store.sqlite_db.Database``'s transactions: a SQLite error anywhere (the body, a nested
savepoint, BEGIN or COMMIT) is a ``StoreError``, undoes what it must and nothing more,
and leaves the connection usable, unlocked and at depth 0; after-commit callbacks run
once, after the outermost commit only."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from wayline.errors import StoreError
from wayline.store.sqlite_db import Database


def _rows(db: Database) -> list[str]:
    with db.autocommit() as conn:
        return [key for (key,) in conn.execute("SELECT key FROM idempotency ORDER BY key")]


def _put(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("INSERT INTO idempotency (key, expires_at) VALUES (?, 0)", (key,))


def _usable_from_another_thread(db: Database) -> bool:
    done = threading.Event()

    def use() -> None:
        with db.transaction() as conn:
            _put(conn, "from-thread")
        done.set()

    thread = threading.Thread(target=use)
    thread.start()
    thread.join(timeout=10)
    return done.is_set()


def test_errors_are_store_errors_and_undo_only_their_part(tmp_path: Path) -> None:
    db = Database(tmp_path / "w.db")
    called: list[str] = []
    with db.transaction() as conn:
        _put(conn, "a")
        db.after_commit(lambda: called.append("a"))
        with pytest.raises(StoreError, match="UNIQUE"), db.transaction() as inner:
            _put(inner, "b")
            db.after_commit(lambda: called.append("b"))
            _put(inner, "a")  # a duplicate key: this savepoint fails
        with db.transaction() as inner:
            _put(inner, "c")
            db.after_commit(lambda: called.append("c"))
        assert called == []
    assert called == ["a", "c"]
    assert _rows(db) == ["a", "c"]
    with pytest.raises(StoreError, match="no such table"), db.autocommit() as conn:
        conn.execute("SELECT * FROM nowhere")
    with pytest.raises(StoreError, match="no such table"), db.transaction() as conn:
        _put(conn, "d")
        conn.execute("SELECT * FROM nowhere")
    assert _rows(db) == ["a", "c"]
    assert db._depth == 0
    assert _usable_from_another_thread(db)
    assert _rows(db) == ["a", "c", "from-thread"]
    db.close()


def test_a_failed_commit_is_a_store_error_and_rolls_back(tmp_path: Path) -> None:
    db = Database(tmp_path / "w.db")
    called: list[str] = []

    def no_commit(action: int, arg: str | None, *_: str | None) -> int:
        refused = action == sqlite3.SQLITE_TRANSACTION and arg == "COMMIT"
        return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

    with db.autocommit() as conn:
        conn.set_authorizer(no_commit)
    with pytest.raises(StoreError, match="not authorized"), db.transaction() as conn:
        _put(conn, "a")
        db.after_commit(lambda: called.append("a"))
    with db.autocommit() as conn:
        conn.set_authorizer(None)
        assert not conn.in_transaction
    assert called == []
    assert _rows(db) == []
    assert db._depth == 0
    assert _usable_from_another_thread(db)
    db.close()
