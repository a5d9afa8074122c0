"""Checkpoints saved as memos alone (``engine.checkpoint_append``, DynamoDB) next to the
run's version-based transitions, on both stores: the call's answer is decided on a view
that holds what the call checkpointed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wayline.engine.checkpoint import Checkpoint
from wayline.engine.ids import hash_step_id
from wayline.engine.model import RunStatus
from wayline.engine.protocol import CallResponse, Op

from .test_checkpoints import in_flight, step, stored
from .test_windows import STORES, Harness, make


@pytest.fixture(params=STORES)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield from make({}, request.param, tmp_path)


def test_the_calls_answer_never_overwrites_a_step_it_checkpointed(harness: Harness) -> None:
    """The SDK's fallback answer repeats a step it checkpointed, with another result (a
    nondeterministic body re-run): the checkpointed memo stays, once in the timeline."""
    item, prepared = in_flight(harness)
    assert harness.service.checkpoint(Checkpoint(item.run_id, item.id, (step("a", 1),))).accepted

    harness.service.complete_call(
        item,
        CallResponse(status=206, ops=(step("a", 2),)),
        started_at=harness.clock.now,
        run=prepared.run,  # loaded before the checkpoint
    )

    run = stored(harness, item.run_id)
    assert run.memos[hash_step_id("a")] == {"data": 1}
    assert run.stack == (hash_step_id("a"),)
    assert [s.name for s in run.steps] == ["a"]


def test_checkpointed_steps_then_the_answer_keep_their_order(harness: Harness) -> None:
    item, prepared = in_flight(harness)
    for name in ("a", "b", "c"):
        verdict = harness.service.checkpoint(Checkpoint(item.run_id, item.id, (step(name, 1),)))
        assert verdict.status == 200
    nap = Op(op="Sleep", id=hash_step_id("nap"), name="nap", opts={"duration": "1m"})

    harness.service.complete_call(
        item, CallResponse(status=206, ops=(nap,)), started_at=harness.clock.now, run=prepared.run
    )

    run = stored(harness, item.run_id)
    assert run.status is RunStatus.RUNNING
    assert [s.id for s in run.steps] == [hash_step_id(n) for n in ("a", "b", "c", "nap")]
    assert run.stack == tuple(hash_step_id(n) for n in "abc")
