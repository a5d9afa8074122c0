"""``RunStore`` on SQLite: one row per run, memos in their own write-once table.

Memos live apart from the run body because they are the bulk of a run and never change
once written: a ``save_run`` rewrites the small body and inserts only the new memos, so
its cost does not grow with the size of the step outputs already stored.

``Run.event_ids`` is indexed (for ``list_runs(event_id=...)``) by ``create_run`` only:
the events that triggered a run are fixed when it is created.

Step outputs are stored once: the engine copies each output into the step's timeline
record, and the body keeps those copies as references to the memo (``strip_outputs``).
Runs this process committed or read are kept decoded in a ``RunCache``, checked against
the row's version and outbox flag on every load (see ``sqlite_run_cache``): a load of an
unchanged run reads two columns of one row and decodes nothing, and a save inserts the
new memos without first reading which ones are stored.

A run's outbox is kept in its own column (``effects``), not in the body, so acknowledging
it clears two columns instead of rewriting the body. Rows written before (schema 2) hold
it in the body: they decode as before and are acknowledged by a body rewrite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from operator import eq, is_

from wayline.engine import search
from wayline.engine.model import JSON, Run, RunStatus
from wayline.engine.ports import RunPage, RunQuery

from .codec import (
    dumps,
    loads,
    outbox_to_dict,
    restore_outputs,
    run_from_dict,
)
from .sqlite_db import Database
from .sqlite_run_body import BodyEncoder
from .sqlite_run_cache import RunCache

_CHUNK = 500


class SqliteRunStore:
    def __init__(self, db: Database, cache: RunCache | None = None) -> None:
        self._db = db
        self._cache = cache or RunCache()
        self._bodies = BodyEncoder()

    def create_run(self, run: Run) -> bool:
        with self._db.transaction() as conn:
            inserted = conn.execute(
                "INSERT OR IGNORE INTO runs"
                " (id, function_id, version, status, created_at, body, outbox, effects)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.function_id,
                    run.version,
                    run.status.value,
                    run.created_at,
                    self._bodies.body(run),
                    bool(run.outbox),
                    _effects(run),
                ),
            ).rowcount
            if not inserted:
                return False
            conn.executemany(
                "INSERT OR IGNORE INTO run_events (event_id, run_id) VALUES (?, ?)",
                [(event_id, run.id) for event_id in run.event_ids],
            )
            _insert_memos(conn, run.id, run.memos.items())
        self._db.after_commit(lambda: self._cache.put(run))
        return True

    def save_run(self, run: Run, *, expected_version: int) -> bool:
        if run.version != expected_version + 1:
            raise ValueError(
                f"run {run.id}: version {run.version} must be expected_version + 1"
                f" ({expected_version + 1})"
            )
        with self._db.transaction() as conn:
            if self._body_only(run, expected_version):
                updated = conn.execute(
                    "UPDATE runs SET version = ?, body = ? WHERE id = ? AND version = ?",
                    (run.version, self._bodies.body(run), run.id, expected_version),
                ).rowcount
            else:
                updated = conn.execute(
                    "UPDATE runs SET version = ?, status = ?, body = ?, outbox = ?, effects = ?"
                    " WHERE id = ? AND version = ?",
                    (
                        run.version,
                        run.status.value,
                        self._bodies.body(run),
                        bool(run.outbox),
                        _effects(run),
                        run.id,
                        expected_version,
                    ),
                ).rowcount
            if not updated:
                return False  # lost the race (or no such run): the transaction wrote nothing
            stored = self._stored_memos(conn, run.id, expected_version)
            _insert_memos(conn, run.id, ((k, v) for k, v in run.memos.items() if k not in stored))
        self._remember(run, stored_at=expected_version)
        return True

    def _body_only(self, run: Run, expected_version: int) -> bool:
        """Whether saving ``run`` over ``expected_version`` changes only the version and
        the body: the cached run is that stored version (a version is written once, and an
        outbox only ever becomes non-empty with a new one), with ``run``'s status and no
        outbox, and ``run`` has none. Then the status and outbox columns, and the indexes
        on them, are left alone: a checkpoint saves a step and nothing else, and writing
        those index entries was ~half the cost of its UPDATE."""
        previous = self._cache.latest(run.id)
        return (
            previous is not None
            and previous.version == expected_version
            and previous.status is run.status
            and not previous.outbox
            and not run.outbox
        )

    def _remember(self, run: Run, *, stored_at: int) -> None:
        """Once committed, cache ``run`` if it is exactly what is stored: its memos start
        with every memo of the cached version ``stored_at``, in their order and as the
        same objects (memos are write-once, never deleted, listed in first-write order,
        so a save cannot change, drop or move one). Otherwise the stored memos differ from
        ``run``'s, and the next load reads them. Checked at commit, when the callbacks of
        the writes before this one in the same transaction have updated the cache."""

        def remember() -> None:
            previous = self._cache.latest(run.id)
            exact = (
                previous is not None
                and previous.version == stored_at
                and len(run.memos) >= len(previous.memos)
                # Pairwise up to the shorter (the previous), in C: a save per checkpoint.
                and all(map(eq, run.memos, previous.memos))
                and all(map(is_, run.memos.values(), previous.memos.values()))
            )
            if exact:
                self._cache.put(run)
            else:
                self._cache.drop(run.id)

        self._db.after_commit(remember)

    def _stored_memos(self, conn: sqlite3.Connection, run_id: str, version: int) -> Collection[str]:
        """The step ids of the memos stored with ``version`` of the run: the cached run's,
        when the cache holds that version (memos are write-once), else read."""
        cached = self._cache.latest(run_id)
        if cached is not None and cached.version == version:
            return cached.memos
        return {
            step_id
            for (step_id,) in conn.execute("SELECT step_id FROM memos WHERE run_id = ?", (run_id,))
        }

    def ack_outbox(self, run: Run) -> bool:
        if run.outbox:
            raise ValueError(f"run {run.id}: acknowledge with the outbox emptied")
        with self._db.autocommit() as conn:
            # The body holds no outbox (``effects`` does) unless the row predates that.
            acked = bool(
                conn.execute(
                    "UPDATE runs SET outbox = 0, effects = NULL"
                    " WHERE id = ? AND version = ? AND effects IS NOT NULL",
                    (run.id, run.version),
                ).rowcount
            ) or bool(
                conn.execute(
                    "UPDATE runs SET body = ?, outbox = 0, effects = NULL"
                    " WHERE id = ? AND version = ?",
                    (self._bodies.body(run), run.id, run.version),
                ).rowcount
            )
        if acked:
            self._remember(run, stored_at=run.version)
        return acked

    def get_run(self, run_id: str) -> Run | None:
        with self._db.autocommit() as conn:
            row = conn.execute(
                "SELECT version, outbox FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                return None
            cached = self._cache.get(run_id, version=row[0], outbox=bool(row[1]))
            if cached is not None:
                return cached
            body, effects = conn.execute(
                "SELECT body, effects FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            run = _decode(body, effects, _memos(conn, [run_id]).get(run_id, {}))
            self._db.after_commit(lambda: self._cache.put(run))
            return run

    def list_runs(
        self,
        *,
        function_id: str | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        if limit <= 0:
            return []
        # Run ids are ULIDs: id order is creation order, so id DESC is newest first.
        sql = "SELECT r.id, r.version, r.outbox, r.body, r.effects FROM runs r"
        where: list[str] = []
        params: list[str | int] = []
        if event_id is not None:
            sql += " JOIN run_events e ON e.run_id = r.id"
            where.append("e.event_id = ?")
            params.append(event_id)
        if function_id is not None:
            where.append("r.function_id = ?")
            params.append(function_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.id DESC LIMIT ?"
        params.append(limit)
        with self._db.autocommit() as conn:
            return self._listed(conn, conn.execute(sql, params).fetchall())

    def search_runs(self, query: RunQuery) -> RunPage:
        """One indexed SELECT: ``runs_by_function_created``, ``runs_by_status_created`` or
        ``runs_by_created`` serve the filter and the order; ``event_id`` joins
        ``run_events``. One row more than the page says whether there is a next page."""
        search.validate_query(query)
        sql = "SELECT r.id, r.version, r.outbox, r.body, r.effects FROM runs r"
        where: list[str] = []
        params: list[str | int] = []
        if query.event_id is not None:
            sql += " JOIN run_events e ON e.run_id = r.id"
            where.append("e.event_id = ?")
            params.append(query.event_id)
        if query.function_id is not None:
            where.append("r.function_id = ?")
            params.append(query.function_id)
        if query.statuses:
            where.append(f"r.status IN ({','.join('?' for _ in query.statuses)})")
            params.extend(status.value for status in query.statuses)
        if query.since is not None:
            where.append("r.created_at >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("r.created_at < ?")
            params.append(query.until)
        if query.cursor is not None:
            where.append("(r.created_at, r.id) < (?, ?)")
            params.extend(search.parse_cursor(query.cursor))
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
        params.append(query.limit + 1)
        with self._db.autocommit() as conn:
            rows = conn.execute(sql, params).fetchall()[: query.limit + 1]
            more = len(rows) > query.limit
            runs = self._listed(conn, rows[: query.limit])
        return RunPage(runs, search.run_cursor(runs[-1]) if more else None)

    def list_live_runs(self, *, limit: int = 10_000, after: str | None = None) -> list[Run]:
        live = [s.value for s in RunStatus if not s.is_terminal]
        marks = ",".join("?" for _ in live)
        with self._db.autocommit() as conn:
            rows = conn.execute(
                f"SELECT {_LISTED} FROM runs r"  # noqa: S608
                f" WHERE (r.status IN ({marks}) OR r.outbox = 1)"
                " AND r.id > ? ORDER BY r.id LIMIT ?",
                (*live, after or "", limit),
            ).fetchall()
            return self._listed(conn, rows)

    def _listed(
        self, conn: sqlite3.Connection, rows: list[tuple[str, int, int, str, str | None]]
    ) -> list[Run]:
        """Decode listed rows (``_LISTED``), in order: cached runs as they are, the others
        with their memos read in one query. Listing does not fill the cache: a page of
        old runs must not push out the live ones."""
        cached = {
            run_id: run
            for run_id, version, outbox, _, _ in rows
            if (run := self._cache.get(run_id, version=version, outbox=bool(outbox)))
        }
        memos = _memos(conn, [row[0] for row in rows if row[0] not in cached])
        return [
            cached.get(run_id) or _decode(body, effects, memos.get(run_id, {}))
            for run_id, _, _, body, effects in rows
        ]


_LISTED = "r.id, r.version, r.outbox, r.body, r.effects"
"""The columns ``_listed`` decodes (the list queries spell them out)."""


def _effects(run: Run) -> str | None:
    return dumps(outbox_to_dict(run.outbox)) if run.outbox else None


def _decode(body: str, effects: str | None, memos: dict[str, JSON]) -> Run:
    doc = loads(body)
    doc["memos"] = memos
    if effects is not None:
        doc["outbox"] = loads(effects)
    restore_outputs(doc)
    return run_from_dict(doc)


def _insert_memos(conn: sqlite3.Connection, run_id: str, memos: Iterable[tuple[str, JSON]]) -> None:
    # OR IGNORE: write-once even if a key slipped past the caller's filter.
    conn.executemany(
        "INSERT OR IGNORE INTO memos (run_id, step_id, value) VALUES (?, ?, ?)",
        [(run_id, step_id, dumps(value)) for step_id, value in memos],
    )


def _memos(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, dict[str, JSON]]:
    """Memos of several runs in one query, each in the order they were first written."""
    by_run: dict[str, dict[str, JSON]] = {run_id: {} for run_id in run_ids}
    # Chunked to stay under SQLite's bound-parameter limit for any ``limit``.
    for start in range(0, len(run_ids), _CHUNK):
        chunk = run_ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT run_id, step_id, value FROM memos WHERE run_id IN ({marks}) ORDER BY rowid",  # noqa: S608
            chunk,
        )
        for run_id, step_id, value in rows:
            by_run[run_id][step_id] = loads(value)
    return by_run
