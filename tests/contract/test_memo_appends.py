"""MemoAppends contract: checkpointed memos written without a transition
(``ports.MemoAppends``; DynamoDB's own, ``AppendBySave`` for SQLite, whose service keeps
the transition path)."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from wayline.engine.model import JSON, Run, RunStatus, StepRecord, StepStatus, WorkItem, WorkKind
from wayline.engine.ports import AppendedMemo, MemoAppends, RunHead, Store
from wayline.store.memo_appends import AppendBySave

from .conftest import make_run

NOW = 1_700_000_100_000


def appends_of(store: Store) -> MemoAppends:
    return store.appends if store.appends is not None else AppendBySave(store.runs)


def live_run(**kw: Any) -> Run:
    call = WorkItem(id="call-1", run_id="01HRUN0000000000000000000A", kind=WorkKind.CALL, at=1)
    return make_run(status=RunStatus.RUNNING, pending={call.id: call}, **kw)


def step(step_id: str, data: JSON, ended: int = NOW) -> AppendedMemo:
    record = StepRecord(
        step_id, f"name-{step_id}", "StepRun", StepStatus.COMPLETED, 1, ended - 5, ended, data
    )
    return AppendedMemo(step_id, {"data": data}, record)


def head_of(appends: MemoAppends, run_id: str) -> RunHead:
    head = appends.run_head(run_id)
    assert head is not None
    return head


def test_the_head_shows_status_version_and_pending_work(store: Store) -> None:
    run = live_run()
    store.runs.create_run(run)
    saved = replace(run, version=1, started_at=5)
    assert store.runs.save_run(saved, expected_version=0)

    head = head_of(appends_of(store), run.id)

    assert head.run.status is RunStatus.RUNNING
    assert head.run.version == 1
    assert head.run.pending == run.pending
    assert head.run.started_at == 5
    assert appends_of(store).run_head("missing") is None


def test_appended_memos_load_after_the_saved_ones_in_append_order(store: Store) -> None:
    first = step("s1", 1, ended=NOW - 100)
    run = live_run(memos={"s1": first.memo}, stack=("s1",), steps=(first.record,))
    store.runs.create_run(run)
    appends = appends_of(store)

    assert appends.append_memos(head_of(appends, run.id), [step("a", "A")], now=NOW) == [
        {"data": "A"}
    ]
    assert appends.append_memos(head_of(appends, run.id), [step("b", "B")], now=NOW) == [
        {"data": "B"}
    ]

    loaded = store.runs.get_run(run.id)
    assert loaded is not None
    assert list(loaded.memos) == ["s1", "a", "b"]
    assert loaded.stack == ("s1", "a", "b")
    assert loaded.steps == (first.record, step("a", "A").record, step("b", "B").record)
    assert loaded.memos["b"] == {"data": "B"}


def test_an_appended_memo_is_write_once(store: Store) -> None:
    run = live_run()
    store.runs.create_run(run)
    appends = appends_of(store)
    appends.append_memos(head_of(appends, run.id), [step("a", 1)], now=NOW)

    kept = appends.append_memos(head_of(appends, run.id), [step("a", 2)], now=NOW + 1)

    assert kept == [{"data": 1}]
    loaded = store.runs.get_run(run.id)
    assert loaded is not None and loaded.memos["a"] == {"data": 1}
    assert [s.id for s in loaded.steps] == ["a"]


def test_racing_appends_of_one_step_agree_on_the_first(store: Store) -> None:
    run = live_run()
    store.runs.create_run(run)
    appends = appends_of(store)
    head = head_of(appends, run.id)
    results: list[list[JSON]] = []

    def append(value: int) -> None:
        results.append(appends.append_memos(head, [step("a", value)], now=NOW + value))

    threads = [threading.Thread(target=append, args=(v,)) for v in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    loaded = store.runs.get_run(run.id)
    assert loaded is not None
    assert results[0] == results[1] == [loaded.memos["a"]]


def test_a_save_from_a_loaded_view_keeps_appended_memos_and_their_order(store: Store) -> None:
    run = live_run()
    store.runs.create_run(run)
    appends = appends_of(store)
    appends.append_memos(head_of(appends, run.id), [step("a", 1), step("b", 2)], now=NOW)

    loaded = store.runs.get_run(run.id)
    assert loaded is not None
    nap = StepRecord("n", "nap", "Sleep", StepStatus.COMPLETED, 1, NOW + 1, NOW + 2)
    saved = replace(
        loaded,
        version=loaded.version + 1,
        memos={**loaded.memos, "n": None},
        stack=(*loaded.stack, "n"),
        steps=(*loaded.steps, nap),
    )
    assert store.runs.save_run(saved, expected_version=loaded.version)
    appends.append_memos(head_of(appends, run.id), [step("c", 3)], now=NOW + 3)

    final = store.runs.get_run(run.id)
    assert final is not None
    assert final.stack == ("a", "b", "n", "c")
    assert [s.id for s in final.steps] == ["a", "b", "n", "c"]
    assert final.steps[:3] == saved.steps
    assert final.memos == {**saved.memos, "c": {"data": 3}}
    again = replace(final, version=final.version + 1, status=RunStatus.COMPLETED, pending={})
    assert store.runs.save_run(again, expected_version=final.version)
    assert store.runs.get_run(run.id) == again
