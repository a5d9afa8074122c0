"""Admission and concurrency through the real service, on SQLite and DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from wayline.engine.model import Run, RunStatus, WorkKind
from wayline.engine.service import Blocked, PreparedCall

from .test_windows import STORES, Harness, make

Make = Callable[[dict[str, Any]], Harness]


@pytest.fixture(params=STORES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Make]:
    """Builds one service per test (a moto backend owns the process-wide mock)."""
    made: list[Generator[Harness, None, None]] = []

    def build(config: dict[str, Any]) -> Harness:
        assert not made, "one harness per test"
        gen = make(config, str(request.param), tmp_path)
        made.append(gen)
        return next(gen)

    yield build
    for gen in made:
        gen.close()


def runs(h: Harness) -> list[Run]:
    return sorted(h.store.runs.list_runs(function_id="app-fn", limit=100), key=lambda r: r.id)


def statuses(h: Harness) -> list[RunStatus]:
    return [r.status for r in runs(h)]


def first_call(run: Run) -> int:
    return min(i.at for i in run.pending.values() if i.kind is WorkKind.CALL)


def test_rate_limit_skips_and_records(harness: Make) -> None:
    h = harness({"rateLimit": {"limit": 1, "period": "1h", "key": "event.data.user"}})
    for user in "aab":
        h.send("e", user=user)
    assert statuses(h) == [RunStatus.QUEUED, RunStatus.SKIPPED, RunStatus.QUEUED]


def test_idempotency_skips_and_records(harness: Make) -> None:
    h = harness({"idempotency": "event.data.order"})
    for order in "xxy":
        h.send("e", order=order)
    skipped = [r for r in runs(h) if r.status is RunStatus.SKIPPED]
    assert len(skipped) == 1 and "idempotency" in str(skipped[0].cancel_reason)


def test_throttle_schedules_starts_by_the_interval(harness: Make) -> None:
    h = harness({"throttle": {"limit": 2, "period": "10s"}})
    for n in range(3):
        h.send("e", n=n)
    starts = [first_call(r) - h.clock.now for r in runs(h)]
    assert starts == [0, 5_000, 10_000]


def test_priority_moves_the_first_call_earlier(harness: Make) -> None:
    h = harness({"priority": {"run": "event.data.vip ? 9999 : 0"}})
    h.send("e", vip=True)
    h.send("e", vip=False)
    assert [first_call(r) - h.clock.now for r in runs(h)] == [-600_000, 0]  # clamped


@pytest.mark.parametrize("mode", ["skip", "cancel"])
def test_singleton(harness: Make, mode: str) -> None:
    h = harness({"singleton": {"mode": mode, "key": "event.data.user"}})
    h.send("e", user="u")
    h.send("e", user="v")
    h.send("e", user="u")
    if mode == "skip":
        assert statuses(h) == [RunStatus.QUEUED, RunStatus.QUEUED, RunStatus.SKIPPED]
    else:
        assert statuses(h) == [RunStatus.CANCELLED, RunStatus.QUEUED, RunStatus.QUEUED]


def test_concurrency_slots_block_then_free(harness: Make) -> None:
    h = harness({"concurrency": [{"limit": 2}]})
    for n in range(3):
        h.send("e", n=n)
    items = [next(iter(r.pending.values())) for r in runs(h)]
    prepared = [h.service.prepare_call(i) for i in items]
    assert [type(p) for p in prepared] == [PreparedCall, PreparedCall, Blocked]
    assert statuses(h) == [RunStatus.RUNNING, RunStatus.RUNNING, RunStatus.QUEUED]
    first = prepared[0]
    assert isinstance(first, PreparedCall)
    h.service.release_call(first, items[0])
    assert isinstance(h.service.prepare_call(items[2]), PreparedCall)


def test_start_timeout_cancels_a_run_stuck_behind_a_limit(harness: Make) -> None:
    h = harness({"concurrency": [{"limit": 1}], "timeouts": {"start": "5s"}})
    h.send("e", n=0)
    h.send("e", n=1)
    items = [next(i for i in r.pending.values() if i.kind is WorkKind.CALL) for r in runs(h)]
    assert isinstance(h.service.prepare_call(items[0]), PreparedCall)
    assert isinstance(h.service.prepare_call(items[1]), Blocked)
    h.clock.now += 5_000
    for run in runs(h):
        for item in run.pending.values():
            if item.kind is WorkKind.TIMEOUT:
                h.service.fire(item)
    assert statuses(h) == [RunStatus.RUNNING, RunStatus.CANCELLED]
    assert "timeouts.start" in str(runs(h)[1].cancel_reason)


def test_cancel_on_matches_only_later_matching_events(harness: Make) -> None:
    h = harness({"cancel": [{"event": "stop", "if": "event.data.id == async.data.id"}]})
    h.send("stop", id="a")  # before the run: does not count
    h.send("e", id="a")
    h.send("e", id="b")
    h.send("stop", id="c")
    assert statuses(h) == [RunStatus.QUEUED, RunStatus.QUEUED]
    h.send("stop", id="a")
    assert statuses(h) == [RunStatus.CANCELLED, RunStatus.QUEUED]


def test_keyed_concurrency_limits_each_key(harness: Make) -> None:
    h = harness({"concurrency": [{"limit": 1, "key": "event.data.user"}]})
    for user in "aab":
        h.send("e", user=user)
    items = [next(iter(r.pending.values())) for r in runs(h)]
    prepared = [h.service.prepare_call(i) for i in items]
    assert [type(p) for p in prepared] == [PreparedCall, Blocked, PreparedCall]


def test_finish_timeout_cancels_a_run_running_too_long(harness: Make) -> None:
    h = harness({"timeouts": {"finish": "10s"}})
    h.send("e", n=0)
    (run,) = runs(h)
    assert isinstance(h.service.prepare_call(next(iter(run.pending.values()))), PreparedCall)
    (run,) = runs(h)
    timer = next(i for i in run.pending.values() if i.kind is WorkKind.TIMEOUT)
    assert timer.at == h.clock.now + 10_000
    h.clock.now += 10_000
    h.service.fire(timer)
    (run,) = runs(h)
    assert run.status is RunStatus.CANCELLED and "timeouts.finish" in str(run.cancel_reason)


def test_bulk_cancel_filters_by_time_and_expression(harness: Make) -> None:
    h = harness({})
    for tenant in "aab":
        h.send("e", tenant=tenant)
        h.clock.now += 1_000
    cancelled = h.service.cancel_matching(
        function_id="app-fn", started_before=h.clock.now, condition="event.data.tenant == 'a'"
    )
    assert len(cancelled) == 2
    assert statuses(h) == [RunStatus.CANCELLED, RunStatus.CANCELLED, RunStatus.QUEUED]
    assert h.service.cancel_matching(function_id="app-fn", started_before=h.clock.now - 5_000) == []
