"""The dev worker's group commit (``turn_batch``) on a real SQLite file: the call
cycles' store steps of one loop turn share one transaction, every call goes out only once
its run's ``started`` save is committed (seen from another connection), a failing step
fails only its own cycle, and a failed commit fails them all and stores none of them."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from wayline.calls.cycle import Reply
from wayline.devserver.worker import Worker
from wayline.engine import machine
from wayline.engine.events import validate_event
from wayline.engine.gateway import Outbound
from wayline.engine.model import App, FunctionDef, RunStatus, Trigger
from wayline.engine.service import Service
from wayline.errors import StoreError
from wayline.store.sqlite import SqliteStore
from wayline.turn_batch import TurnBatch

from .test_windows import Clock, Entropy

SDK = {"x-inngest-sdk": "py:v0.5.0"}
FN = FunctionDef(
    id="app-fn",
    app_id="app",
    name="fn",
    url="http://127.0.0.1:1/",
    triggers=(Trigger("e"),),
    retries=0,
)


class Setup:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sqlite = SqliteStore(path)
        self.clock = Clock()
        self.service = Service(self.sqlite.store(), self.clock, Entropy(), batch=self.sqlite.batch)
        self.service.sync_app(App(id="app", url=FN.url), [FN])
        self.statements: list[str] = []
        with self.sqlite._db.autocommit() as conn:
            conn.set_trace_callback(self.statements.append)

    def send(self, n: int) -> None:
        for i in range(n):
            self.service.send_events([validate_event({"name": "e", "data": {"i": i}})])

    def statuses(self) -> list[RunStatus]:
        return [r.status for r in self.service.store.runs.list_runs(function_id=FN.id)]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path / "dev.sqlite3")
    try:
        yield s
    finally:
        s.sqlite.close()


class CommittedCalls:
    """Answers each call with a finished function, after checking from a second connection
    (another reader of the file: only committed data) that the run is already Running."""

    def __init__(self, path: Path) -> None:
        self._reader = sqlite3.connect(path, isolation_level=None)
        self.seen: list[str] = []

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Reply:
        run_id = headers["x-run-id"]
        (status,) = self._reader.execute(
            "SELECT status FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        self.seen.append(status)
        for _ in range(3):
            await asyncio.sleep(0)
        return Reply(200, SDK, b'"done"')

    async def fetch(self, request: Outbound) -> Reply:
        raise AssertionError("no gateway requests here")


async def drain(setup: Setup, worker: Worker, runs: int) -> None:
    loop = asyncio.create_task(worker.run())
    try:
        for _ in range(2_000):
            if setup.statuses().count(RunStatus.COMPLETED) == runs:
                return
            await asyncio.sleep(0.002)
        raise AssertionError(f"runs not completed: {setup.statuses()}")
    finally:
        await worker.stop()
        loop.cancel()


def test_calls_go_out_after_their_start_is_committed_and_steps_share_commits(
    setup: Setup,
) -> None:
    setup.send(20)
    calls = CommittedCalls(setup.path)
    del setup.statements[:]
    asyncio.run(drain(setup, Worker(setup.service, calls, setup.clock), runs=20))
    assert calls.seen == [RunStatus.RUNNING.value] * 20
    # Alone, each run's cycle made two commits (its start, its result); here the 20
    # starts were claimed together and share one, and the results come back in groups.
    commits = setup.statements.count("COMMIT")
    assert commits <= 20, commits
    assert setup.service.store.queue.next_due() is None  # every item acknowledged


def _poison_commits(sqlite: SqliteStore) -> None:
    """Every transaction that writes a run fails at COMMIT (a deferred foreign key that the
    write breaks): real SQLite behaviour, injected through the schema."""
    with sqlite._db.autocommit() as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(
            """
            CREATE TABLE parent (id TEXT PRIMARY KEY);
            CREATE TABLE child (
                parent TEXT REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED
            );
            CREATE TRIGGER poison AFTER UPDATE ON runs
            BEGIN INSERT INTO child (parent) VALUES ('missing'); END;
            """
        )


def test_a_failed_commit_fails_every_step_of_the_turn(setup: Setup) -> None:
    setup.send(3)
    (r0, r1, r2) = (r.id for r in setup.service.store.runs.list_runs(function_id=FN.id))
    _poison_commits(setup.sqlite)
    batch = TurnBatch(setup.service.batch)
    saved: list[str] = []

    def start(run_id: str) -> str:
        setup.service.update_run(run_id, machine.apply_started)
        saved.append(run_id)
        return run_id

    async def three() -> list[object]:
        steps = [batch.run(functools.partial(start, run_id)) for run_id in (r0, r1, r2)]
        return await asyncio.gather(*steps, return_exceptions=True)

    outcomes = asyncio.run(three())
    assert len(saved) == 3  # every step ran, in one transaction that did not commit
    assert all(isinstance(o, StoreError) for o in outcomes), outcomes
    assert setup.statuses() == [RunStatus.QUEUED] * 3


def test_a_failing_step_fails_only_itself(setup: Setup) -> None:
    setup.send(3)
    (r0, r1, r2) = (r.id for r in setup.service.store.runs.list_runs(function_id=FN.id))
    batch = TurnBatch(setup.service.batch)

    def start(run_id: str) -> str:
        setup.service.update_run(run_id, machine.apply_started)
        if run_id == r1:
            raise RuntimeError("this step fails after its save")
        return run_id

    async def three() -> list[object]:
        steps = [batch.run(functools.partial(start, run_id)) for run_id in (r0, r1, r2)]
        return await asyncio.gather(*steps, return_exceptions=True)

    del setup.statements[:]
    first, failed, third = asyncio.run(three())
    assert (first, third) == (r0, r2) and isinstance(failed, RuntimeError)
    assert setup.statements.count("COMMIT") == 1
    by_id = {r.id: r.status for r in setup.service.store.runs.list_runs(function_id=FN.id)}
    assert by_id == {r0: RunStatus.RUNNING, r1: RunStatus.QUEUED, r2: RunStatus.RUNNING}
