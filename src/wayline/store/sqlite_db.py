"""The one SQLite connection shared by every SQLite port, and the schema it holds.

One connection, one re-entrant lock: the dev server calls the store from its asyncio loop
and from worker threads, and a ``sqlite3.Connection`` must not run two statements at
once. Autocommit (``isolation_level=None``) for single statements; ``transaction()`` wraps
multi-statement operations in ``BEGIN IMMEDIATE`` so that the write lock is taken up
front and conditional writes are atomic across processes sharing the file too.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wayline.errors import StoreError

SCHEMA_VERSION = 2

# Run as one script in one transaction: every statement is idempotent, so opening an
# existing store (or two processes opening a new one at once) is safe.
_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);

CREATE TABLE IF NOT EXISTS events (
    internal_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (name, internal_id);

CREATE TABLE IF NOT EXISTS apps (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS functions (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS functions_by_app ON functions (app_id, id);

CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    function_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    outbox INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_function ON runs (function_id, id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, id);
-- Run search (``search_runs``): newest first by created_at, filtered by function or status.
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at, id);
CREATE INDEX IF NOT EXISTS runs_by_function_created ON runs (function_id, created_at, id);
CREATE INDEX IF NOT EXISTS runs_by_status_created ON runs (status, created_at, id);
CREATE TABLE IF NOT EXISTS run_events (
    event_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (event_id, run_id)
);
CREATE TABLE IF NOT EXISTS memos (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id)
);

CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS idempotency_by_expiry ON idempotency (expires_at);

CREATE TABLE IF NOT EXISTS queue (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    lease_until INTEGER,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_at ON queue (at, id);
-- Only leased items (a handful: at most the worker pool) are in this index.
CREATE INDEX IF NOT EXISTS queue_leased ON queue (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE IF NOT EXISTS waits (
    id TEXT PRIMARY KEY,
    event TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS waits_by_event ON waits (event, created_at, id);

CREATE TABLE IF NOT EXISTS leases (
    key TEXT NOT NULL,
    holder TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key, holder)
);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
-- Work items blocked by a full concurrency key, woken oldest first on a release.
CREATE TABLE IF NOT EXISTS parked (
    key TEXT NOT NULL,
    item_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (key, item_id)
);
CREATE INDEX IF NOT EXISTS parked_oldest ON parked (key, at, item_id);
COMMIT;
"""


_ADDED_COLUMNS = (
    ("runs", "outbox", "INTEGER NOT NULL DEFAULT 0"),
    ("idempotency", "owner", "TEXT NOT NULL DEFAULT ''"),
)
"""Columns added after schema version 1 (SQLite cannot ``ADD COLUMN IF NOT EXISTS``)."""


class Database:
    """A locked ``sqlite3`` connection with the Wayline schema applied."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.RLock()
        try:
            # timeout: how long to wait for another process's write lock (busy timeout).
            self._conn = sqlite3.connect(
                str(path), timeout=10.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store at {path!s}: {exc}") from exc
        try:
            with self.autocommit():
                self._configure(in_memory=str(path) == ":memory:")
                self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _configure(self, *, in_memory: bool) -> None:
        if not in_memory:
            # WAL + NORMAL: each commit survives a process kill (not necessarily a power
            # loss) without an fsync per commit, and readers never block the writer.
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")

    def _migrate(self) -> None:
        self._conn.executescript(_SCHEMA)
        self._add_columns()
        # One statement, so atomic: a new store gets exactly one version row.
        self._conn.execute(
            "INSERT INTO schema_version (version)"
            " SELECT ? WHERE NOT EXISTS (SELECT 1 FROM schema_version)",
            (SCHEMA_VERSION,),
        )
        (version,) = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(f"store schema version {version} is newer than {SCHEMA_VERSION}")

    def _add_columns(self) -> None:
        """Bring a version-1 store up to date: columns added since, each once, atomically
        (``BEGIN IMMEDIATE`` so two processes opening one old file do not both add one)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for table, column, definition in _ADDED_COLUMNS:
                present = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            self._conn.execute(
                "CREATE INDEX IF NOT EXISTS runs_with_outbox ON runs (id) WHERE outbox = 1"
            )
            self._conn.execute(
                "UPDATE schema_version SET version = ? WHERE version < ?",
                (SCHEMA_VERSION, SCHEMA_VERSION),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def autocommit(self) -> Iterator[sqlite3.Connection]:
        """Run statements under the lock, each in its own autocommit transaction."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store failed: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements in one ``BEGIN IMMEDIATE`` transaction; roll back on any error."""
        with self.autocommit() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            finally:
                # The body or COMMIT failed. SQLite may already have rolled back (then a
                # ROLLBACK would fail and hide the real error); if it has not, a dangling
                # transaction would make every later BEGIN on this connection fail.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
