"""RunStore contract: conditional writes, write-once memos, round trip, listing."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from wayline.engine.model import Outbox, RunStatus
from wayline.engine.ports import Store

from .conftest import Backend, make_full_run, make_outbox, make_run, unset_fields


def test_full_run_round_trips(store: Store) -> None:
    run = make_full_run()
    assert store.runs.create_run(run) is True
    assert store.runs.get_run(run.id) == run


def test_round_trip_keeps_types(store: Store) -> None:
    run = make_full_run()
    store.runs.create_run(run)
    got = store.runs.get_run(run.id)
    assert got is not None
    assert type(got.status) is RunStatus
    assert isinstance(got.events, tuple)
    assert isinstance(got.steps, tuple)
    assert isinstance(got.planned, frozenset)
    assert list(got.memos) == list(run.memos)  # insertion order kept


def test_get_missing_run(store: Store) -> None:
    assert store.runs.get_run("nope") is None


def test_create_is_insert_only(store: Store) -> None:
    run = make_run(memos={"a": {"data": 1}})
    assert store.runs.create_run(run) is True
    other = replace(run, status=RunStatus.RUNNING, memos={"a": {"data": 2}, "b": None})
    assert store.runs.create_run(other) is False
    assert store.runs.get_run(run.id) == run


def test_save_bumps_version(store: Store) -> None:
    run = make_run()
    store.runs.create_run(run)
    saved = replace(run, version=1, status=RunStatus.RUNNING, memos={"s1": {"data": 1}})
    assert store.runs.save_run(saved, expected_version=0) is True
    assert store.runs.get_run(run.id) == saved
    later = replace(saved, version=2, status=RunStatus.COMPLETED, output={"x": 1})
    assert store.runs.save_run(later, expected_version=1) is True
    assert store.runs.get_run(run.id) == later


def test_save_with_stale_version_writes_nothing(store: Store) -> None:
    run = make_run()
    store.runs.create_run(run)
    store.runs.save_run(replace(run, version=1), expected_version=0)
    stale = replace(run, version=1, status=RunStatus.FAILED, memos={"s1": {"data": 1}})
    assert store.runs.save_run(stale, expected_version=0) is False
    assert store.runs.get_run(run.id) == replace(run, version=1)


def test_save_of_missing_run_is_false(store: Store) -> None:
    assert store.runs.save_run(make_run(version=1), expected_version=0) is False
    assert store.runs.get_run(make_run().id) is None


@pytest.mark.parametrize("version", [0, 2, 5])
def test_save_requires_next_version(store: Store, version: int) -> None:
    run = make_run()
    store.runs.create_run(run)
    with pytest.raises(ValueError, match="expected_version"):
        store.runs.save_run(replace(run, version=version), expected_version=0)
    assert store.runs.get_run(run.id) == run


def test_two_writers_from_same_version_one_wins(store: Store) -> None:
    run = make_run(memos={"s0": None})
    store.runs.create_run(run)
    a = replace(run, version=1, status=RunStatus.RUNNING, memos={"s0": None, "a": {"data": "a"}})
    b = replace(run, version=1, status=RunStatus.FAILED, memos={"s0": None, "b": {"data": "b"}})
    assert store.runs.save_run(a, expected_version=0) is True
    assert store.runs.save_run(b, expected_version=0) is False
    assert store.runs.get_run(run.id) == a  # the loser's status and memo "b" are absent


def _race_saves(stores: list[Store], run_id: str) -> list[bool]:
    """Each store saves its own version-1 run (with its own memo) at the same moment."""
    base = stores[0].runs.get_run(run_id)
    assert base is not None
    barrier = threading.Barrier(len(stores))
    results: list[bool] = [False] * len(stores)

    def save(i: int) -> None:
        mine = replace(base, version=1, memos={**base.memos, f"m{i}": {"data": i}})
        barrier.wait()
        results[i] = stores[i].runs.save_run(mine, expected_version=0)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _assert_single_winner(store: Store, run_id: str, results: list[bool]) -> None:
    assert results.count(True) == 1
    winner = results.index(True)
    got = store.runs.get_run(run_id)
    assert got is not None
    assert got.version == 1
    assert dict(got.memos) == {f"m{winner}": {"data": winner}}


def test_threads_racing_one_store_one_wins(store: Store) -> None:
    run = make_run()
    store.runs.create_run(run)
    results = _race_saves([store] * 8, run.id)
    _assert_single_winner(store, run.id, results)


def test_connections_racing_one_wins(durable: Backend) -> None:
    stores = [durable.open() for _ in range(4)]
    run = make_run()
    stores[0].runs.create_run(run)
    results = _race_saves(stores, run.id)
    _assert_single_winner(stores[0], run.id, results)


def test_memos_are_write_once(store: Store) -> None:
    run = make_run(memos={"s1": {"data": "first"}})
    store.runs.create_run(run)
    changed = replace(run, version=1, memos={"s1": {"data": "second"}, "s2": None})
    assert store.runs.save_run(changed, expected_version=0) is True
    got = store.runs.get_run(run.id)
    assert got is not None
    assert dict(got.memos) == {"s1": {"data": "first"}, "s2": None}


def test_memos_are_never_deleted(store: Store) -> None:
    run = make_run(memos={"s1": {"data": 1}})
    store.runs.create_run(run)
    store.runs.save_run(replace(run, version=1, memos={}), expected_version=0)
    got = store.runs.get_run(run.id)
    assert got is not None
    assert dict(got.memos) == {"s1": {"data": 1}}


def test_memo_order_is_first_write_order(store: Store) -> None:
    run = make_run(memos={"z": 1, "a": 2})
    store.runs.create_run(run)
    store.runs.save_run(replace(run, version=1, memos={"m": 3, "z": 1, "a": 2}), expected_version=0)
    got = store.runs.get_run(run.id)
    assert got is not None
    assert list(got.memos) == ["z", "a", "m"]


def test_list_runs_newest_first_with_limit(store: Store) -> None:
    ids = [f"01HRUN00000000000000000{i:03d}" for i in range(5)]
    for run_id in (ids[2], ids[0], ids[4], ids[1], ids[3]):
        store.runs.create_run(make_run(run_id, memos={"s": run_id}))
    runs = store.runs.list_runs()
    assert [r.id for r in runs] == ids[::-1]
    assert [r.memos for r in runs] == [{"s": i} for i in ids[::-1]]
    assert [r.id for r in store.runs.list_runs(limit=2)] == [ids[4], ids[3]]
    assert store.runs.list_runs(limit=0) == []


def test_list_runs_filters(store: Store) -> None:
    store.runs.create_run(make_run("r1", function_id="f1", event_ids=("e1",)))
    store.runs.create_run(make_run("r2", function_id="f2", event_ids=("e1", "e2")))
    store.runs.create_run(make_run("r3", function_id="f1", event_ids=("e2",)))

    def ids(function_id: str | None = None, event_id: str | None = None) -> list[str]:
        return [r.id for r in store.runs.list_runs(function_id=function_id, event_id=event_id)]

    assert ids(function_id="f1") == ["r3", "r1"]
    assert ids(event_id="e1") == ["r2", "r1"]
    assert ids(event_id="e2") == ["r3", "r2"]
    assert ids(function_id="f1", event_id="e2") == ["r3"]
    assert ids(function_id="nope") == []
    assert ids(event_id="nope") == []


def test_list_runs_shows_saved_state(store: Store) -> None:
    run = make_run()
    store.runs.create_run(run)
    done = replace(run, version=1, status=RunStatus.COMPLETED, memos={"s": 1})
    store.runs.save_run(done, expected_version=0)
    assert store.runs.list_runs(function_id=run.function_id) == [done]
    assert store.runs.list_runs(event_id=run.event_ids[0]) == [done]


def test_live_runs_page_oldest_first_from_a_cursor(store: Store) -> None:
    ids = [f"01HRUN00000000000000000{i:03d}" for i in range(7)]
    for run_id in reversed(ids):
        store.runs.create_run(make_run(run_id, status=RunStatus.RUNNING))
    store.runs.create_run(make_run("01HRUN00000000000000000003X", status=RunStatus.COMPLETED))
    pages, cursor = [], None
    while True:
        page = store.runs.list_live_runs(limit=3, after=cursor)
        pages.append([r.id for r in page])
        if len(page) < 3:
            break
        cursor = page[-1].id
    assert pages == [ids[0:3], ids[3:6], ids[6:7]]
    assert [r.id for r in store.runs.list_live_runs(after=ids[-1])] == []


def test_full_run_sets_every_field() -> None:
    assert unset_fields(make_full_run()) == set()


def test_the_outbox_is_saved_with_the_run_and_acknowledged_without_a_new_version(
    store: Store,
) -> None:
    run = make_run()
    store.runs.create_run(run)
    saved = replace(run, version=1, status=RunStatus.RUNNING, outbox=make_outbox(run.id))
    assert store.runs.save_run(saved, expected_version=0) is True
    assert store.runs.get_run(run.id) == saved
    acknowledged = replace(saved, outbox=Outbox())
    assert store.runs.ack_outbox(acknowledged) is True
    assert store.runs.get_run(run.id) == acknowledged  # same version, no outbox


def test_an_acknowledgement_of_an_older_version_changes_nothing(store: Store) -> None:
    run = make_run(outbox=make_outbox())
    store.runs.create_run(run)
    later = replace(run, version=1, outbox=make_outbox())
    assert store.runs.save_run(later, expected_version=0) is True
    assert store.runs.ack_outbox(replace(run, outbox=Outbox())) is False
    assert store.runs.get_run(run.id) == later


def test_the_sweep_lists_finished_runs_until_their_outbox_is_acknowledged(
    store: Store,
) -> None:
    live, done = make_run("01HRUN0000000000000000000A"), make_run("01HRUN0000000000000000000B")
    for run in (live, done):
        store.runs.create_run(run)
    finished = replace(done, version=1, status=RunStatus.COMPLETED, outbox=make_outbox(done.id))
    store.runs.save_run(finished, expected_version=0)
    assert [r.id for r in store.runs.list_live_runs()] == [live.id, done.id]
    store.runs.ack_outbox(replace(finished, outbox=Outbox()))
    assert [r.id for r in store.runs.list_live_runs()] == [live.id]
