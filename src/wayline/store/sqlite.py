"""The SQLite backend: every engine port on one local database file (or ``:memory:``).

Used by the dev server and by tests. Each port is a small class in its own
``sqlite_*`` module; they share one ``Database`` (connection + lock + schema)::

    with SqliteStore("wayline.db") as db:
        store = db.store()
        store.runs.get_run(run_id)
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from wayline.engine.ports import Store

from .sqlite_apps import SqliteAppStore
from .sqlite_db import Database
from .sqlite_events import SqliteEventStore
from .sqlite_flow import SqliteCounters, SqliteLeases, SqliteParking
from .sqlite_queue import SqliteIdempotency, SqliteWorkQueue
from .sqlite_runs import SqliteRunStore
from .sqlite_waits import SqliteWaitStore

__all__ = ["SqliteStore"]


class SqliteStore:
    """Opens (creating if needed) the store at ``path``; ``":memory:"`` for a private one."""

    def __init__(self, path: str | Path) -> None:
        self._db = Database(path)
        self.events = SqliteEventStore(self._db)
        self.apps = SqliteAppStore(self._db)
        self.runs = SqliteRunStore(self._db)
        self.queue = SqliteWorkQueue(self._db)
        self.waits = SqliteWaitStore(self._db)
        self.idempotency = SqliteIdempotency(self._db)
        self.leases = SqliteLeases(self._db)
        self.parked = SqliteParking(self._db)
        self.counters = SqliteCounters(self._db)

    def store(self) -> Store:
        return Store(
            events=self.events,
            apps=self.apps,
            runs=self.runs,
            queue=self.queue,
            waits=self.waits,
            idempotency=self.idempotency,
            leases=self.leases,
            parked=self.parked,
            counters=self.counters,
        )

    def release_leases(self) -> int:
        return self.queue.release_leases()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
