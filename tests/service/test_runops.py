"""Rerun and redrive through the real service, on SQLite and on DynamoDB (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wayline.engine import bulk as bulk_mod
from wayline.engine import redrive
from wayline.engine.bulk import BulkReruns, parse_filter
from wayline.engine.model import App, RunStatus, WorkItem, WorkKind
from wayline.engine.pause import CACHE_MS, PAUSED_RETRY_MS, Pauses
from wayline.engine.runops import RunOps
from wayline.engine.service import Blocked
from wayline.errors import ConflictError, NotFoundError

from .scripted_sdk import ScriptedSdk, drive
from .test_windows import STORES, Harness, make


@pytest.fixture(params=STORES)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def plain(backend: str, tmp_path: Path) -> Iterator[Harness]:
    yield from make({}, backend, tmp_path)


@pytest.fixture
def batched(backend: str, tmp_path: Path) -> Iterator[Harness]:
    yield from make({"batchEvents": {"maxSize": 3, "timeout": "5s"}}, backend, tmp_path)


def flaky_sdk(fixed: list[bool]) -> ScriptedSdk:
    def body(name: str) -> Any:
        if name == "three" and not fixed:
            raise RuntimeError("broken until fixed")
        return name

    return ScriptedSdk(steps=["one", "two", "three"], body=body)


def test_redrive_executes_only_the_failed_step(plain: Harness) -> None:
    h, fixed = plain, list[bool]()
    sdk = flaky_sdk(fixed)
    h.send("e", n=1)
    drive(h.service, h.store, sdk, now=h.clock.now)
    (old,) = h.store.runs.list_runs(function_id="app-fn")
    assert old.status is RunStatus.FAILED

    fixed.append(True)
    new = RunOps(h.service).rerun(old.id, mode=redrive.FROM_FAILED_STEP)
    drive(h.service, h.store, sdk, now=h.clock.now)

    done = h.store.runs.get_run(new.id)
    assert done is not None and done.status is RunStatus.COMPLETED
    assert done.output == ["one", "two", "three"]
    assert sdk.executed == {"one": 1, "two": 1, "three": 2}
    assert done.rerun_of == old.id and done.seeds == {}
    assert [s.seeded for s in done.steps] == [True, True, False]
    reloaded = h.store.runs.get_run(old.id)
    assert reloaded is not None and reloaded.reruns == (new.id,)


def test_rerun_from_start_runs_everything_again(plain: Harness) -> None:
    h, fixed = plain, [True]
    sdk = flaky_sdk(fixed)
    h.send("e", n=1)
    drive(h.service, h.store, sdk, now=h.clock.now)
    (old,) = h.store.runs.list_runs(function_id="app-fn")
    ops = RunOps(h.service)
    with pytest.raises(ConflictError, match="only a Failed run"):
        ops.rerun(old.id, mode=redrive.FROM_FAILED_STEP)
    new = ops.rerun(old.id)
    drive(h.service, h.store, sdk, now=h.clock.now)
    assert sdk.executed == {"one": 2, "two": 2, "three": 2}
    assert new.event_ids == old.event_ids
    with pytest.raises(NotFoundError):
        ops.rerun("nope")


def test_rerun_of_a_batched_run_keeps_every_event(batched: Harness) -> None:
    h = batched
    for n in range(3):
        h.send("e", n=n)
    (old,) = h.store.runs.list_runs(function_id="app-fn")
    assert len(old.event_ids) == 3
    h.service.cancel(old.id, reason="test")
    new = RunOps(h.service).rerun(old.id)
    assert new.event_ids == old.event_ids
    assert [e["data"] for e in new.events] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert new.status is RunStatus.QUEUED


def test_event_replay_starts_a_new_run_linked_to_the_original(plain: Harness) -> None:
    h = plain
    original = h.send("e", n=5)
    replayed = RunOps(h.service).replay_event(original)
    stored = h.store.events.get_event(replayed.internal_id)
    assert stored is not None and stored.replay_of == original and stored.data == {"n": 5}
    (run,) = h.store.runs.list_runs(event_id=replayed.internal_id)
    assert run.status is RunStatus.QUEUED
    assert len(h.store.runs.list_runs(function_id="app-fn")) == 2
    with pytest.raises(NotFoundError):
        RunOps(h.service).replay_event("nope")


def test_a_paused_function_starts_nothing_and_its_calls_wait_until_resumed(
    plain: Harness,
) -> None:
    h, ops = plain, RunOps(plain.service)
    sdk = flaky_sdk([True])
    h.send("e", n=1)  # a live run, its first call queued
    assert ops.set_paused("app-fn", paused=True)
    assert not ops.set_paused("app-fn", paused=True)  # repeating is a no-op

    skipped_event = h.send("e", n=2)
    (skipped,) = h.store.runs.list_runs(event_id=skipped_event)
    assert skipped.status is RunStatus.SKIPPED and skipped.cancel_reason == "function paused"
    assert h.store.events.get_event(skipped_event) is not None

    (live,) = [r for r in h.store.runs.list_runs(function_id="app-fn") if r.id != skipped.id]
    item = next(iter(live.pending.values()))
    blocked = h.service.prepare_call(item)
    assert isinstance(blocked, Blocked) and blocked.retry_ms == PAUSED_RETRY_MS
    # A re-sync replaces the function list; the pause stays.
    fn = h.store.apps.get_function("app-fn")
    assert fn is not None
    h.service.sync_app(App(id="app", url="http://127.0.0.1:1/"), [fn])
    assert isinstance(h.service.prepare_call(item), Blocked)

    assert ops.set_paused("app-fn", paused=False)
    drive(h.service, h.store, sdk, now=h.clock.now)
    done = h.store.runs.get_run(live.id)
    assert done is not None and done.status is RunStatus.COMPLETED
    with pytest.raises(NotFoundError):
        ops.set_paused("app-nope", paused=True)


def test_a_pause_made_elsewhere_is_seen_once_the_cache_lapses(plain: Harness) -> None:
    h = plain
    other_process = Pauses(h.store.counters)
    assert not h.service.pauses.is_paused("app-fn", now=h.clock.now)
    other_process.set("app-fn", paused=True, now=h.clock.now)
    h.clock.now += CACHE_MS
    assert h.service.pauses.is_paused("app-fn", now=h.clock.now)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def fail_runs(h: Harness, sdk: ScriptedSdk, count: int) -> list[str]:
    event_ids = [h.send("e", n=n) for n in range(count)]
    drive(h.service, h.store, sdk, now=h.clock.now)
    return [r.id for e in event_ids for r in h.store.runs.list_runs(event_id=e)]


def fire_ticks(h: Harness) -> list[WorkItem]:
    items = h.store.queue.claim(now=h.clock.now, lease_ms=1_000, limit=100)
    ticks = [i for i in items if i.kind is WorkKind.RERUNS]
    for item in ticks:
        h.service.fire(item)
        h.store.queue.ack(item.id)
    for item in items:
        if item not in ticks:
            h.store.queue.defer(item.id, until=h.clock.now)
    return ticks


def test_bulk_redrive_counts_then_reruns_the_failed_runs_of_the_window_at_a_paced_rate(
    plain: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk_mod, "RERUNS_PER_TICK", 2)  # fewer runs make the same point
    h, fixed = plain, list[bool]()
    sdk, bulk = flaky_sdk(fixed), BulkReruns(plain.service)
    failed = fail_runs(h, sdk, bulk_mod.RERUNS_PER_TICK + 2)
    window_end = h.clock.now + 60_000
    h.clock.now += 3_600_000
    fail_runs(h, sdk, 1)  # outside the window
    fixed.append(True)
    fail_runs(h, sdk, 0)
    flt = parse_filter(
        {
            "function_id": "app-fn",
            "status": ["Failed"],
            "since": iso(h.clock.now - 7_200_000),
            "until": iso(window_end),
            "from": "failed_step",
        }
    )
    dry = bulk.dry_run(flt)
    assert dry["count"] == len(failed) and dry["run_ids"] == sorted(failed)
    assert len(h.store.runs.list_runs(function_id="app-fn")) == len(failed) + 1  # no change

    job = bulk.create(flt)
    assert job["total"] == len(failed) and job["status"] == "running"
    assert [t.attempt for t in fire_ticks(h)] == [0]
    assert bulk.get(str(job["id"]))["done"] == bulk_mod.RERUNS_PER_TICK  # paced
    assert fire_ticks(h) == []  # the next tick is due a second later
    h.clock.now += bulk_mod.TICK_MS
    (second,) = fire_ticks(h)
    h.service.fire(second)  # delivered twice: no second rerun of anything
    progress = bulk.get(str(job["id"]))
    assert progress["status"] == "done" and progress["done"] == len(failed)
    assert progress["errors"] == {}
    reruns = progress["reruns"]
    assert isinstance(reruns, dict) and sorted(reruns) == sorted(failed)
    assert len(h.store.runs.list_runs(function_id="app-fn")) == 2 * len(failed) + 1

    drive(h.service, h.store, sdk, now=h.clock.now)
    for new_id in reruns.values():
        run = h.store.runs.get_run(new_id)
        assert run is not None and run.status is RunStatus.COMPLETED
    assert sdk.executed["one"] == len(failed) + 1  # never again for a redriven run
    with pytest.raises(NotFoundError):
        bulk.get("nope")
