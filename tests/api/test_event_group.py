"""Group commit of event ingests (``api.event_group``) on a real SQLite file: the ingests of
one event-loop turn share one transaction; a failed commit stores nothing of the group and
fails every request of it; one failing ingest fails only itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wayline.api.event_group import EventGroup
from wayline.api.rest import ApiConfig, create_app
from wayline.engine.events import EventInput, parse_request
from wayline.engine.model import App, FunctionDef, Trigger
from wayline.engine.service import Service
from wayline.errors import StoreError
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, FixedClock
from .serving import serving

FN = FunctionDef(
    id="app-go",
    app_id="app",
    name="go",
    url="http://127.0.0.1:9/api/inngest",
    triggers=(Trigger(event="go"),),
    retries=0,
)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "dev.sqlite3")
    try:
        yield store
    finally:
        store.close()


def _service(sqlite: SqliteStore) -> Service:
    service = Service(sqlite.store(), FixedClock(), CountingEntropy(), batch=sqlite.batch)
    service.sync_app(App(id="app", url=FN.url), [FN])
    return service


def _statements(sqlite: SqliteStore) -> list[str]:
    seen: list[str] = []
    with sqlite._db.autocommit() as conn:
        conn.set_trace_callback(seen.append)
    return seen


def _events(mark: str = "") -> list[EventInput]:
    return parse_request(f'{{"name": "go", "data": {{"mark": "{mark}"}}}}'.encode())


async def _send_all(group: EventGroup, n: int) -> list[list[str] | BaseException]:
    sends = (group.send(_events(), seed=None) for _ in range(n))
    return await asyncio.gather(*sends, return_exceptions=True)


def test_concurrent_ingests_commit_in_one_transaction(sqlite: SqliteStore) -> None:
    service = _service(sqlite)
    statements = _statements(sqlite)
    outcomes = asyncio.run(_send_all(EventGroup(service), 20))
    assert all(isinstance(ids, list) and len(ids) == 1 for ids in outcomes)
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert statements.count("COMMIT") == 1
    # Each ingest stored its event and started its run, with its item queued.
    for ids in outcomes:
        assert isinstance(ids, list)
        (run,) = service.store.runs.list_runs(event_id=ids[0])
        assert service.store.events.get_event(ids[0]) is not None
        assert list(run.pending) and not run.outbox
    assert len(service.store.queue.claim(now=FixedClock().now, lease_ms=1000, limit=100)) == 20


def _fail_commits(sqlite: SqliteStore) -> None:
    """Every transaction that stores an event fails at COMMIT (a deferred
    foreign key that the insert breaks), not before: the group has done all its work.
    Real SQLite behaviour, injected through the schema."""
    with sqlite._db.autocommit() as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(
            """
            CREATE TABLE parent (id TEXT PRIMARY KEY);
            CREATE TABLE child (
                parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED
            );
            CREATE TRIGGER poison AFTER INSERT ON events
            BEGIN INSERT INTO child (parent) VALUES ('missing'); END;
            """
        )


def test_a_failed_commit_answers_every_ingest_and_stores_nothing(sqlite: SqliteStore) -> None:
    service = _service(sqlite)
    _fail_commits(sqlite)
    outcomes = asyncio.run(_send_all(EventGroup(service), 5))
    assert all(isinstance(o, StoreError) for o in outcomes)
    assert service.store.events.list_events() == []
    assert service.store.runs.list_runs() == []
    assert service.store.queue.next_due() is None
    # Nothing of the failed group is left in a cache either: the next ingest stands alone.
    with sqlite._db.autocommit() as conn:
        conn.execute("DROP TRIGGER poison")
    (ids,) = asyncio.run(_send_all(EventGroup(service), 1))
    assert isinstance(ids, list) and len(service.store.runs.list_runs()) == 1


def test_one_failing_ingest_fails_only_itself(sqlite: SqliteStore) -> None:
    service = _service(sqlite)
    with sqlite._db.autocommit() as conn:  # fails the run's insert, after its event's
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON runs WHEN new.body LIKE '%poison%'"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )

    async def mixed() -> list[list[str] | BaseException]:
        group = EventGroup(service)
        sends = [group.send(_events(mark), seed=None) for mark in ("", "poison", "")]
        return await asyncio.gather(*sends, return_exceptions=True)

    first, bad, third = asyncio.run(mixed())
    assert isinstance(bad, StoreError) and "refused by the test" in str(bad)
    assert isinstance(first, list) and isinstance(third, list)
    assert {e.internal_id for e in service.store.events.list_events()} == {first[0], third[0]}
    assert len(service.store.runs.list_runs()) == 2


def test_a_store_error_answers_503_naming_what_happened(sqlite: SqliteStore) -> None:
    service = _service(sqlite)
    _fail_commits(sqlite)
    for fast_paths in (True, False):
        app = create_app(service, ApiConfig(), fast_paths=fast_paths)
        with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            resp = client.post("/e/any", json={"name": "go"})
        assert resp.status_code == 503
        assert resp.json()["ids"] == [] and "not stored" in resp.json()["error"]
    assert service.store.events.list_events() == []
