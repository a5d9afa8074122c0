"""The one SQLite connection shared by every SQLite port, and the schema it holds.

One connection, one re-entrant lock: the dev server calls the store from its asyncio loop
and from worker threads, and a ``sqlite3.Connection`` must not run two statements at
once. Autocommit (``isolation_level=None``) for single statements; ``transaction()`` wraps
multi-statement operations in ``BEGIN IMMEDIATE`` so that the write lock is taken up
front and conditional writes are atomic across processes sharing the file too.

Transactions nest: one opened inside another (``batch``: several writes that arrive
together, committed once) is a SAVEPOINT, so it stays atomic on its own - its failure
undoes only its writes - and everything commits, or nothing, with the outermost one.
What a port caches in memory about the file is told with ``after_commit``: a callback
runs once the writes it describes are committed, and never if they are rolled back, so a
cache only ever holds committed state.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from wayline.errors import StoreError

SCHEMA_VERSION = 3

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
    outbox INTEGER NOT NULL DEFAULT 0,
    effects TEXT
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
    ("runs", "effects", "TEXT"),  # version 3: a run's outbox, apart from its body
)
"""Columns added after schema version 1 (SQLite cannot ``ADD COLUMN IF NOT EXISTS``)."""


class Database:
    """A locked ``sqlite3`` connection with the Wayline schema applied."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        """How many transactions are open on the connection (read and changed under the lock)."""
        self._after_commit: list[tuple[int, Callable[[], None]]] = []
        """Callbacks for the outermost commit, each with the depth it was registered at."""
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

    def autocommit(self) -> AbstractContextManager[sqlite3.Connection]:
        """Run statements under the lock, each in its own autocommit transaction."""
        return _Autocommit(self)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """Run statements in one ``BEGIN IMMEDIATE`` transaction; roll back on any error.
        Inside another transaction, a savepoint of it (see the module's docstring)."""
        return _Transaction(self)

    batch = transaction
    """Several operations committed together (each still atomic on its own)."""

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once what was written so far is committed: now, outside a
        transaction; at the outermost commit inside one (never, if it rolls back)."""
        with self._lock:
            if not self._depth:
                callback()
                return
            self._after_commit.append((self._depth, callback))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _store_error(exc: sqlite3.Error) -> StoreError:
    return StoreError(f"SQLite store failed: {exc}")


# The context managers are classes, not ``@contextmanager`` generators: every store call
# opens one and a save opens two (its transaction in the service's batch), and the
# generator machinery cost several times the SQLite statements they wrap.


class _Autocommit:
    __slots__ = ("_db",)

    def __init__(self, db: Database) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db._lock.acquire()
        return self._db._conn

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self._db._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise _store_error(exc) from exc


class _Transaction:
    """``Database.transaction``: a ``BEGIN IMMEDIATE`` ... ``COMMIT`` at depth 1, a
    savepoint deeper; any SQLite error, of the body or of the statements here, is raised
    as ``StoreError``."""

    __slots__ = ("_db", "_level")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._level = 0

    def __enter__(self) -> sqlite3.Connection:
        db = self._db
        db._lock.acquire()
        level = db._depth + 1
        try:
            db._conn.execute("BEGIN IMMEDIATE" if level == 1 else f"SAVEPOINT wayline_{level}")
        except BaseException as exc:
            db._lock.release()
            if isinstance(exc, sqlite3.Error):
                raise _store_error(exc) from exc
            raise
        db._depth = self._level = level
        return db._conn

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        db = self._db
        try:
            if self._level == 1:
                self._commit(db, failed=exc is not None)
            else:
                self._release(db, failed=exc is not None)
        except sqlite3.Error as error:
            raise _store_error(error) from error
        finally:
            db._lock.release()
        if isinstance(exc, sqlite3.Error):
            raise _store_error(exc) from exc

    @staticmethod
    def _commit(db: Database, *, failed: bool) -> None:
        conn = db._conn
        committed = False
        try:
            if not failed:
                conn.execute("COMMIT")
                committed = True
        finally:
            db._depth = 0
            callbacks, db._after_commit = db._after_commit, []
            # The body or COMMIT failed. SQLite may already have rolled back (then a
            # ROLLBACK would fail and hide the real error); if it has not, a dangling
            # transaction would make every later BEGIN on this connection fail.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        if committed:
            for _depth, callback in callbacks:
                callback()

    def _release(self, db: Database, *, failed: bool) -> None:
        level = self._level
        conn = db._conn
        try:
            if not failed:
                conn.execute(f"RELEASE wayline_{level}")
                return
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO wayline_{level}")
                conn.execute(f"RELEASE wayline_{level}")
            # What this savepoint's writes would have told a cache is void now.
            db._after_commit = [(d, cb) for d, cb in db._after_commit if d < level]
        finally:
            db._depth = level - 1
