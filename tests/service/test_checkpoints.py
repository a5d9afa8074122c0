"""``Service.checkpoint`` on both stores: a saved checkpoint is in the store before the
verdict, a refusal writes nothing, and the call's own answer then finishes the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wayline.engine.checkpoint import Checkpoint
from wayline.engine.ids import hash_step_id
from wayline.engine.model import Run, RunStatus, WorkItem, WorkKind
from wayline.engine.protocol import CallResponse, Op
from wayline.engine.service import PreparedCall

from .test_windows import STORES, Harness, make


@pytest.fixture(params=STORES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield from make({}, request.param, tmp_path)


def in_flight(harness: Harness) -> tuple[WorkItem, PreparedCall]:
    harness.send("e", n=1)
    (item,) = [
        i
        for i in harness.store.queue.claim(now=harness.clock.now, lease_ms=60_000, limit=10)
        if i.kind is WorkKind.CALL
    ]
    prepared = harness.service.prepare_call(item)
    assert isinstance(prepared, PreparedCall)
    assert prepared.body["ctx"]["qi_id"] == item.id
    return item, prepared


def stored(harness: Harness, run_id: str) -> Run:
    run = harness.store.runs.get_run(run_id)
    assert run is not None
    return run


def step(name: str, data: object) -> Op:
    return Op(op="StepRun", id=hash_step_id(name), name=name, data=data, has_data=True)


def test_checkpoints_are_stored_before_the_verdict_and_the_call_completes(
    harness: Harness,
) -> None:
    item, _ = in_flight(harness)
    for name in ("a", "b"):
        verdict = harness.service.checkpoint(Checkpoint(item.run_id, item.id, (step(name, 1),)))
        assert verdict.status == 200
    run = stored(harness, item.run_id)
    assert run.stack == (hash_step_id("a"), hash_step_id("b"))
    assert run.memos[hash_step_id("b")] == {"data": 1}
    assert set(run.pending) == {item.id}  # nothing enqueued

    done = Op(op="RunComplete", id="c", data={"ok": 2}, has_data=True)
    harness.service.complete_call(
        item, CallResponse(status=206, ops=(done,)), started_at=harness.clock.now
    )
    run = stored(harness, item.run_id)
    assert (run.status, run.output) == (RunStatus.COMPLETED, {"ok": 2})
    assert len(run.memos) == 2


def test_refusals_write_nothing(harness: Harness) -> None:
    item, _ = in_flight(harness)
    assert harness.service.checkpoint(Checkpoint(item.run_id, item.id, (step("a", 1),))).accepted
    before = stored(harness, item.run_id)

    refused = [
        Checkpoint(item.run_id, item.id, (step("a", 2),)),  # a different result
        Checkpoint(item.run_id, f"{item.run_id}:99", (step("b", 1),)),  # stale dispatch
        Checkpoint(item.run_id, item.id, (Op(op="Sleep", id="s"),)),
        Checkpoint(item.run_id, item.id, (step("a", 1),)),  # a re-send: 200, no write
    ]
    assert [harness.service.checkpoint(c).status for c in refused] == [409, 409, 400, 200]
    assert harness.service.checkpoint(Checkpoint("nope", item.id, ())).status == 409
    assert stored(harness, item.run_id).version == before.version

    harness.service.cancel(item.run_id, reason="test")
    late = harness.service.checkpoint(Checkpoint(item.run_id, item.id, (step("b", 1),)))
    assert late.status == 409
    assert hash_step_id("b") not in stored(harness, item.run_id).memos
