"""``RunStore.search_runs`` and the CEL-filtered search on top of it, on every backend."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wayline.engine import search
from wayline.engine.model import Run, RunStatus
from wayline.engine.ports import RunQuery, Store
from wayline.errors import ValidationError

from .conftest import make_run

T0 = 1_700_000_000_000


def _run(n: int, **kw: object) -> Run:
    """Run ``n``: created at T0 + n seconds, with an id that sorts against that order (so
    a store that orders by id instead of created_at fails)."""
    fields: dict[str, object] = {
        "created_at": T0 + n * 1000,
        "events": ({"name": "shop/order.created", "data": {"n": n, "user": f"u{n % 3}"}},),
        "event_ids": (f"E{n:03d}",),
    }
    fields.update(kw)
    return make_run(f"01HRUN{999 - n:020d}", **fields)


def _seed(store: Store) -> list[Run]:
    runs = [
        _run(0, function_id="f1", status=RunStatus.COMPLETED),
        _run(1, function_id="f2", status=RunStatus.RUNNING),
        _run(2, function_id="f1", status=RunStatus.FAILED),
        _run(3, function_id="f1", status=RunStatus.RUNNING),
        _run(4, function_id="f2", status=RunStatus.COMPLETED, event_ids=("E001", "E004")),
        _run(5, function_id="f1", status=RunStatus.QUEUED),
    ]
    for run in runs:
        assert store.runs.create_run(run)
    return runs


def _ids(store: Store, **kw: object) -> list[str]:
    return [r.id for r in store.runs.search_runs(RunQuery(**kw)).runs]  # type: ignore[arg-type]


def _all_pages(store: Store, query: RunQuery) -> list[list[str]]:
    pages, cursor = [], None
    for _ in range(20):
        page = store.runs.search_runs(replace(query, cursor=cursor))
        pages.append([r.id for r in page.runs])
        cursor = page.cursor
        if cursor is None:
            return pages
    raise AssertionError("paging never ended")


def test_newest_first_by_created_at_then_id(store: Store) -> None:
    runs = _seed(store)
    twin = _run(5, function_id="f1", status=RunStatus.QUEUED)
    twin = replace(twin, id="01HRUN0000000000000000A000")  # same created_at, higher id
    store.runs.create_run(twin)
    expected = [twin.id] + [r.id for r in reversed(runs)]
    assert _ids(store) == expected
    page = store.runs.search_runs(RunQuery())
    assert page.cursor is None
    assert page.runs[1] == runs[5]  # whole runs, memos included


def test_pages_cover_every_run_once_in_order(store: Store) -> None:
    runs = _seed(store)
    pages = _all_pages(store, RunQuery(limit=2))
    assert pages == [[runs[5].id, runs[4].id], [runs[3].id, runs[2].id], [runs[1].id, runs[0].id]]
    f1 = _all_pages(store, RunQuery(function_id="f1", limit=3))
    assert f1 == [[runs[5].id, runs[3].id, runs[2].id], [runs[0].id]]


def test_a_run_created_after_the_first_page_does_not_shift_the_next(store: Store) -> None:
    runs = _seed(store)
    first = store.runs.search_runs(RunQuery(limit=2))
    store.runs.create_run(_run(9))
    second = store.runs.search_runs(RunQuery(limit=2, cursor=first.cursor))
    assert [r.id for r in second.runs] == [runs[3].id, runs[2].id]


def test_filters(store: Store) -> None:
    r = [run.id for run in _seed(store)]
    assert _ids(store, function_id="f2") == [r[4], r[1]]
    assert _ids(store, statuses=(RunStatus.RUNNING,)) == [r[3], r[1]]
    assert _ids(store, statuses=(RunStatus.RUNNING, RunStatus.FAILED)) == [r[3], r[2], r[1]]
    assert _ids(store, function_id="f1", statuses=(RunStatus.RUNNING,)) == [r[3]]
    assert _ids(store, function_id="f1", statuses=(RunStatus.COMPLETED, RunStatus.QUEUED)) == [
        r[5],
        r[0],
    ]
    assert _ids(store, since=T0 + 2000) == [r[5], r[4], r[3], r[2]]  # since is inclusive
    assert _ids(store, until=T0 + 2000) == [r[1], r[0]]  # until is exclusive
    assert _ids(store, since=T0 + 1000, until=T0 + 4000, function_id="f1") == [r[3], r[2]]
    assert _ids(store, event_id="E001") == [r[4], r[1]]
    assert _ids(store, event_id="E001", function_id="f2", statuses=(RunStatus.RUNNING,)) == [r[1]]
    assert _ids(store, event_id="E001", since=T0 + 2000) == [r[4]]
    assert _ids(store, function_id="nope") == []
    assert _ids(store, statuses=(RunStatus.CANCELLED,)) == []
    assert _ids(store, since=T0 + 5000, until=T0 + 1000) == []


def test_event_filter_pages_too(store: Store) -> None:
    runs = [_run(n, event_ids=("shared",)) for n in range(5)]
    for run in runs:
        store.runs.create_run(run)
    pages = _all_pages(store, RunQuery(event_id="shared", limit=2))
    assert pages == [[runs[4].id, runs[3].id], [runs[2].id, runs[1].id], [runs[0].id]]


def test_a_saved_status_moves_the_run_between_status_filters(store: Store) -> None:
    run = _run(1, function_id="f1", status=RunStatus.RUNNING)
    store.runs.create_run(run)
    done = replace(run, version=1, status=RunStatus.COMPLETED)
    assert store.runs.save_run(done, expected_version=0)
    assert _ids(store, statuses=(RunStatus.RUNNING,)) == []
    assert _ids(store, function_id="f1", statuses=(RunStatus.RUNNING,)) == []
    assert store.runs.search_runs(RunQuery(statuses=(RunStatus.COMPLETED,))).runs == [done]
    assert _ids(store, function_id="f1", statuses=(RunStatus.COMPLETED,)) == [run.id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (RunQuery(limit=0), "limit"),
        (RunQuery(limit=1001), "limit"),
        (RunQuery(cursor="not a cursor"), "cursor"),
        (RunQuery(cursor="MTIz"), "cursor"),  # "123": no run id
        (RunQuery(since=-1), "since"),
    ],
)
def test_bad_queries_name_the_field(store: Store, query: RunQuery, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        store.runs.search_runs(query)
    assert raised.value.field == field


# -- the CEL filter over the triggering event (engine.search on top of the port) ----------


def _filtered(
    store: Store, condition: str, *, limit: int = 50, budget: int = 1000, cursor: str | None = None
) -> search.SearchResult:
    query = RunQuery(limit=limit, cursor=cursor)
    return search.search_runs(store.runs, query, condition=condition, scan_budget=budget, now_ms=T0)


def test_if_filters_on_the_trigger_event(store: Store) -> None:
    runs = [_run(n) for n in range(7)]
    for run in runs:
        store.runs.create_run(run)
    found = _filtered(store, 'event.data.user == "u1"')
    assert [r.id for r in found.runs] == [runs[4].id, runs[1].id]
    assert found.cursor is None and found.scanned == 7


def test_if_search_stops_at_the_scan_budget_and_resumes(store: Store) -> None:
    runs = [_run(n) for n in range(7)]
    for run in runs:
        store.runs.create_run(run)
    first = _filtered(store, 'event.data.user == "u1"', budget=2)
    assert first.runs == [] and first.scanned == 2  # runs 6 and 5: no match
    assert first.cursor is not None
    second = _filtered(store, 'event.data.user == "u1"', budget=2, cursor=first.cursor)
    assert [r.id for r in second.runs] == [runs[4].id]
    rest = _filtered(store, 'event.data.user == "u1"', budget=10, cursor=second.cursor)
    assert [r.id for r in rest.runs] == [runs[1].id] and rest.cursor is None


def test_if_search_with_a_full_page_points_after_its_last_run(store: Store) -> None:
    runs = [_run(n) for n in range(7)]
    for run in runs:
        store.runs.create_run(run)
    first = _filtered(store, "event.data.n % 2 == 0", limit=2)
    assert [r.id for r in first.runs] == [runs[6].id, runs[4].id] and first.scanned == 3
    second = _filtered(store, "event.data.n % 2 == 0", limit=2, cursor=first.cursor)
    assert [r.id for r in second.runs] == [runs[2].id, runs[0].id]


def test_if_must_compile(store: Store) -> None:
    with pytest.raises(ValidationError) as raised:
        _filtered(store, "event.data.n ==")
    assert raised.value.field == "if"


def test_a_status_page_is_filled_past_runs_in_other_statuses(store: Store) -> None:
    # On DynamoDB Queued and Running runs share one index partition: a search for one
    # reads the other's entries too and must read on to fill the page.
    for n in range(5):
        assert store.runs.create_run(_run(n + 10, status=RunStatus.QUEUED))
    running = [_run(n, status=RunStatus.RUNNING) for n in range(3)]
    for run in running:
        assert store.runs.create_run(run)
    page = store.runs.search_runs(RunQuery(statuses=(RunStatus.RUNNING,), limit=2))
    assert [r.id for r in page.runs] == [running[2].id, running[1].id]
    assert page.cursor is not None
    rest = store.runs.search_runs(
        RunQuery(statuses=(RunStatus.RUNNING,), limit=2, cursor=page.cursor)
    )
    assert [r.id for r in rest.runs] == [running[0].id] and rest.cursor is None
    queued = _ids(store, statuses=(RunStatus.QUEUED,), limit=50)
    assert len(queued) == 5
