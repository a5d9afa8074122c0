"""Group commit of checkpoints (``api.checkpoint_group``) on a real SQLite file: the
checkpoints of one event-loop turn commit in one transaction, each is answered only
after it, a failed commit saves and acknowledges none, and one refusal leaves the
others saved. COMMITs are counted by SQLite's own trace callback, the commit is made to
fail by SQLite's authorizer."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from wayline.api.checkpoints import CheckpointApi
from wayline.engine.checkpoint import Checkpoint, Verdict
from wayline.engine.events import parse_request
from wayline.engine.ids import hash_step_id
from wayline.engine.model import App
from wayline.engine.protocol import Op
from wayline.engine.service import PreparedCall, Service
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, FixedClock
from .test_checkpoint_api import FN

RUNS = 8


@dataclass
class Group:
    sqlite: SqliteStore
    service: Service
    api: CheckpointApi
    calls: dict[str, str]
    """Run id -> the work item id of its call in flight (its ``qi_id``)."""
    statements: list[str]

    def commits(self) -> int:
        return sum(1 for sql in self.statements if sql.strip().upper() == "COMMIT")

    def send(self, checkpoints: list[Checkpoint]) -> list[Verdict]:
        """Post ``checkpoints`` concurrently (all in one turn of a fresh loop)."""

        async def all_at_once() -> list[Verdict]:
            return list(await asyncio.gather(*(self.api.verdict(c) for c in checkpoints)))

        self.statements.clear()
        return asyncio.run(all_at_once())


def step(name: str, data: object) -> Op:
    return Op(op="StepRun", id=hash_step_id(name), name=name, data=data, has_data=True)


def ckpt(run_id: str, qi_id: str, *steps: Op) -> Checkpoint:
    return Checkpoint(run_id=run_id, qi_id=qi_id, steps=steps)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    sqlite = SqliteStore(tmp_path / "wayline.db")
    service = Service(sqlite.store(), FixedClock(), CountingEntropy(), batch=sqlite.batch)
    service.sync_app(App(id="app", url=FN.url), [FN])
    for _ in range(RUNS):
        service.send_events(parse_request(b'{"name": "go", "data": {}}'))
    calls = {}
    for run in service.store.runs.list_runs(function_id=FN.id):
        (item,) = run.pending.values()
        assert isinstance(service.prepare_call(item), PreparedCall)  # the call is in flight
        calls[run.id] = item.id
    statements: list[str] = []
    with sqlite._db.autocommit() as conn:
        conn.set_trace_callback(statements.append)
    try:
        yield Group(sqlite, service, CheckpointApi(service), calls, statements)
    finally:
        sqlite.close()


def memos(path: Path, run_id: str) -> dict[str, object]:
    """The run's memos as a fresh store reads them from the file (no cache of ours)."""
    with SqliteStore(path) as fresh:
        run = fresh.runs.get_run(run_id)
        assert run is not None
        return dict(run.memos)


def test_concurrent_checkpoints_commit_in_one_transaction(group: Group, tmp_path: Path) -> None:
    verdicts = group.send([ckpt(r, q, step("a", r)) for r, q in group.calls.items()])
    assert [v.status for v in verdicts] == [200] * RUNS
    assert group.commits() == 1
    for run_id in group.calls:
        assert memos(tmp_path / "wayline.db", run_id) == {hash_step_id("a"): {"data": run_id}}
        cached = group.service.store.runs.get_run(run_id)
        assert cached is not None and list(cached.memos) == [hash_step_id("a")]


def test_a_lone_checkpoint_commits_at_once(group: Group) -> None:
    run_id, qi_id = next(iter(group.calls.items()))
    (verdict,) = group.send([ckpt(run_id, qi_id, step("a", 1))])
    assert verdict.status == 200
    assert group.commits() == 1


def test_a_refusal_does_not_affect_the_others_of_its_group(group: Group, tmp_path: Path) -> None:
    (first, qi_first), (second, qi_second), *_ = group.calls.items()
    group.send([ckpt(second, qi_second, step("a", "kept"))])
    verdicts = group.send(
        [
            ckpt(first, "no-such-item", step("a", 1)),  # a stale dispatch
            ckpt(first, qi_first, step("a", 1)),
            ckpt(second, qi_second, step("a", "other")),  # a different result: conflict
            ckpt(second, qi_second, step("b", 2)),
            ckpt(first, qi_first, Op(op="Sleep", id=hash_step_id("z"))),  # cannot checkpoint
            ckpt("no-such-run", qi_first, step("a", 1)),
        ]
    )
    assert [v.status for v in verdicts] == [409, 200, 409, 200, 400, 409]
    assert group.commits() == 1
    db = tmp_path / "wayline.db"
    assert memos(db, first) == {hash_step_id("a"): {"data": 1}}
    assert memos(db, second) == {
        hash_step_id("a"): {"data": "kept"},
        hash_step_id("b"): {"data": 2},
    }


def test_checkpoints_of_one_run_in_one_group_see_each_other(group: Group, tmp_path: Path) -> None:
    run_id, qi_id = next(iter(group.calls.items()))
    verdicts = group.send(
        [
            ckpt(run_id, qi_id, step("a", 1)),
            ckpt(run_id, qi_id, step("a", 1)),  # an SDK's retry after a lost ack
            ckpt(run_id, qi_id, step("b", 2)),
            ckpt(run_id, qi_id, step("b", 3)),
        ]
    )
    assert [(v.status, v.message) for v in verdicts][:3] == [
        (200, "saved"),
        (200, "already saved"),
        (200, "saved"),
    ]
    assert verdicts[3].status == 409
    assert group.commits() == 1
    expected = {hash_step_id("a"): {"data": 1}, hash_step_id("b"): {"data": 2}}
    assert memos(tmp_path / "wayline.db", run_id) == expected
    run = group.service.store.runs.get_run(run_id)
    assert run is not None and dict(run.memos) == expected
    assert run.stack == (hash_step_id("a"), hash_step_id("b"))


def test_a_failed_commit_answers_every_checkpoint_503_and_saves_none(
    group: Group, tmp_path: Path
) -> None:
    def no_commit(action: int, arg: str | None, *_: str | None) -> int:
        refused = action == sqlite3.SQLITE_TRANSACTION and arg == "COMMIT"
        return sqlite3.SQLITE_DENY if refused else sqlite3.SQLITE_OK

    checkpoints = [ckpt(r, q, step("a", r)) for r, q in group.calls.items()]
    with group.sqlite._db.autocommit() as conn:
        conn.set_authorizer(no_commit)
    verdicts = group.send(checkpoints)
    assert {v.status for v in verdicts} == {503}
    assert "not saved" in verdicts[0].message and "retry" in verdicts[0].message
    for run_id in group.calls:
        assert memos(tmp_path / "wayline.db", run_id) == {}
        run = group.service.store.runs.get_run(run_id)  # nor in this process's cache
        assert run is not None and dict(run.memos) == {}
    with group.sqlite._db.autocommit() as conn:
        conn.set_authorizer(None)
    retried = group.send(checkpoints)  # the SDKs retry: saved now, and new
    assert [(v.status, v.message) for v in retried] == [(200, "saved")] * RUNS
    assert group.commits() == 1


def test_a_group_decides_on_what_another_connection_committed(group: Group, tmp_path: Path) -> None:
    """The run this process has in memory is stale once another connection saved it: the
    group's checkpoint is decided on the stored run (here: cancelled, so refused)."""
    (first, qi_first), (second, qi_second), *_ = group.calls.items()
    assert group.service.store.runs.get_run(first) is not None  # cached here
    with SqliteStore(tmp_path / "wayline.db") as other:
        assert Service(other.store(), FixedClock(), CountingEntropy()).cancel(first, reason="x")
    verdicts = group.send(
        [ckpt(first, qi_first, step("a", 1)), ckpt(second, qi_second, step("a", 2))]
    )
    assert [v.status for v in verdicts] == [409, 200]
    assert "cancelled" in verdicts[0].message
    assert memos(tmp_path / "wayline.db", first) == {}
