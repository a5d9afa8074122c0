"""A run kept in memory never drives a decision once the stored run has moved on.

Two ``Service``s on one SQLite file, each with its own store object (so each has its own
cache of runs and of encoded memos): one advances or cancels a run behind the other's
back. The other's cached copy must lose its conditional save and be reloaded - never
used to decide - and its next request must carry the new memos.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from wayline.engine.events import validate_event
from wayline.engine.ids import hash_step_id
from wayline.engine.model import App, FunctionDef, RunStatus, Trigger, WorkItem, WorkKind
from wayline.engine.protocol import CallResponse, Op
from wayline.engine.service import PreparedCall, Service
from wayline.store.sqlite import SqliteStore

from .test_windows import Clock, Entropy

FN = FunctionDef(
    id="app-steps",
    app_id="app",
    name="steps",
    url="http://127.0.0.1:9/api",
    triggers=(Trigger(event="app/go"),),
    retries=0,
)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[Service, Service]]:
    clock = Clock()
    stores = [SqliteStore(tmp_path / "shared.db") for _ in range(2)]
    made = [Service(s.store(), clock, Entropy(), batch=s.batch) for s in stores]
    made[0].sync_app(App(id="app", url=FN.url), [FN])
    yield made[0], made[1]
    for store in stores:
        store.close()


def _call_item(service: Service, run_id: str) -> WorkItem:
    run = service.store.runs.get_run(run_id)
    assert run is not None
    (item,) = (i for i in run.pending.values() if i.kind is WorkKind.CALL)
    return item


def _prepare(service: Service, item: WorkItem) -> PreparedCall:
    prepared = service.prepare_call(item)
    assert isinstance(prepared, PreparedCall)
    return prepared


def _step(name: str, value: int) -> CallResponse:
    op = Op("StepRun", hash_step_id(name), name, data=value, has_data=True)
    return CallResponse(status=206, ops=(op,))


def _start(service: Service) -> str:
    (event_id,) = service.send_events([validate_event({"name": "app/go", "data": {}})])
    (run,) = service.store.runs.list_runs(event_id=event_id)
    return run.id


def test_a_cached_run_loses_its_save_to_another_process_and_is_reloaded(
    services: tuple[Service, Service],
) -> None:
    mine, other = services
    run_id = _start(mine)
    item = _call_item(mine, run_id)
    prepared = _prepare(mine, item)  # ``mine`` now holds the run in memory

    # Behind its back, the other process makes the same call and records step "a".
    other_call = _prepare(other, _call_item(other, run_id))
    other.complete_call(item, _step("a", 1), started_at=0, run=other_call.run)

    # ``mine`` applies a different result to its stale copy: the save must lose, the
    # run be reloaded, and the item (already applied) change nothing.
    mine.complete_call(item, _step("b", 2), started_at=0, run=prepared.run)

    stored = other.store.runs.get_run(run_id)
    cached = mine.store.runs.get_run(run_id)
    assert stored is not None and cached is not None
    assert cached == stored
    assert [s.name for s in stored.steps] == ["a"]
    assert list(stored.memos) == [hash_step_id("a")]

    # The next request ``mine`` builds carries the other process's memo.
    follow = _prepare(mine, _call_item(mine, run_id))
    assert json.loads(follow.payload)["steps"] == {hash_step_id("a"): {"data": 1}}


def test_a_cached_run_is_not_used_after_another_process_cancels_it(
    services: tuple[Service, Service],
) -> None:
    mine, other = services
    run_id = _start(mine)
    item = _call_item(mine, run_id)
    before = mine.store.runs.get_run(run_id)  # now cached in ``mine``
    other.cancel(run_id, reason="test")

    # A decision from the cached copy would make the call; the stored run says no.
    assert mine.prepare_call(item) is None
    mine.complete_call(item, _step("a", 1), started_at=0, run=before)
    run = other.store.runs.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.CANCELLED
    assert run.steps == () and not run.memos
