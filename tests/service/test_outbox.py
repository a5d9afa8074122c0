"""What follows a save is part of the save: one reproduction per lost-work defect, on
SQLite and on DynamoDB (moto), each failing before the outbox.

Each test fails one store call at the named point - as a crash (nothing after it runs) or
as a write that took effect but reported an error - then lets the world go on: the
failed delivery is redelivered after its lease, clients retry. ``check_outcome`` then
demands every run Completed with its steps' output, its finish event exactly once and
no outbox left.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wayline.engine.lifecycle import FUNCTION_FINISHED, FUNCTION_INVOKED
from wayline.engine.model import RunStatus

from .faults import FaultPlan
from .sim import World, check_outcome, run_until_quiet, world_on

BACKENDS = ["sqlite-memory", "dynamodb-moto"]


@pytest.fixture(params=BACKENDS)
def plan_and_world(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[FaultPlan, World]]:
    plan = FaultPlan()
    with world_on(request.param, tmp_path, plan) as world:
        world.orders = ("o1",)
        yield plan, world


def _fail_when(world: World, plan: FaultPlan, memos: str, where: str, **how: bool) -> None:
    """Run the world until a run of ``memos`` = "<function>:<count>" has that many
    memos, then arm the fault at ``where``."""
    function, count = memos.split(":")
    for _ in range(200):
        world.step()
        runs = world.raw.runs.list_runs(function_id=f"app-{function}")
        if runs and len(runs[0].memos) >= int(count):
            plan.fail_next(where, **how)
            return
    pytest.fail(f"no {function} run reached {count} memos")


@pytest.mark.parametrize("after", [False, True], ids=["crash-before", "crash-after"])
def test_a_finish_event_survives_a_crash_between_the_final_save_and_its_publication(
    plan_and_world: tuple[FaultPlan, World], after: bool
) -> None:
    """Hardening #1 / AWS #3: ``function.finished`` was lost, so invoke parents hung."""
    plan, world = plan_and_world
    # The child's next save is its last; storing its finish event follows: fail that.
    _fail_when(world, plan, "child:1", "events.put_events", after=after)
    run_until_quiet(world)
    check_outcome(world, f"faults: {plan.injected}")
    assert plan.injected, "the fault was never injected"


def test_a_wait_survives_a_failed_wait_write_after_the_save(
    plan_and_world: tuple[FaultPlan, World],
) -> None:
    """AWS #2: the run was saved as waiting, the wait record write failed, and the
    redelivered item found nothing to do: the event was ignored and the wait timed out."""
    plan, world = plan_and_world
    _fail_when(world, plan, "parent:2", "waits.add_wait", crash=False)
    run_until_quiet(world)
    check_outcome(world, f"faults: {plan.injected}")
    assert plan.injected == ["error before waits.add_wait"]


def test_a_failed_enqueue_after_the_save_does_not_freeze_the_run(
    plan_and_world: tuple[FaultPlan, World],
) -> None:
    """AWS #4: the next item's enqueue failed after the save; nothing re-sent it."""
    plan, world = plan_and_world
    _fail_when(world, plan, "parent:1", "queue.enqueue", crash=False)
    run_until_quiet(world)
    check_outcome(world, f"faults: {plan.injected}")
    assert plan.injected == ["error before queue.enqueue"]


@pytest.mark.parametrize("where", ["runs.create_run", "queue.enqueue"])
def test_a_retried_ingest_finishes_a_run_start_that_died_after_its_claim(
    plan_and_world: tuple[FaultPlan, World], where: str
) -> None:
    """AWS #1: the 24 h claim was taken, the run never created, and the retry said
    "duplicate": the run never existed."""
    plan, world = plan_and_world
    plan.fail_next(where, crash=True)
    run_until_quiet(world)
    check_outcome(world, f"faults: {plan.injected}")
    assert plan.injected == [f"crash before {where}"]


def test_an_invoke_is_not_lost_when_publishing_invoked_fails(
    plan_and_world: tuple[FaultPlan, World],
) -> None:
    plan, world = plan_and_world
    _fail_when(world, plan, "parent:3", "events.put_events", crash=False)
    run_until_quiet(world)
    check_outcome(world, f"faults: {plan.injected}")
    invoked = world.raw.events.list_events(name=FUNCTION_INVOKED)
    assert len(invoked) == 1


def test_repair_publishes_what_a_finished_run_left_in_its_outbox(
    plan_and_world: tuple[FaultPlan, World],
) -> None:
    """The dev server's start-up repair (and the AWS sweep) flush finished runs too:
    nothing else would ever load a finished run again."""
    plan, world = plan_and_world
    _fail_when(world, plan, "parent:4", "events.put_events", crash=True)
    for _ in range(400):
        if not world.step() and plan.injected:
            break
    stuck = [r for r in world.raw.runs.list_live_runs() if r.status.is_terminal]
    finished = world.raw.events.list_events(name=FUNCTION_FINISHED)
    if stuck:  # the world itself had no reason to touch the finished run again
        assert stuck[0].status is RunStatus.COMPLETED and stuck[0].outbox
        assert not [e for e in finished if e.data.get("run_id") == stuck[0].id]
    world.service.repair(world.raw.runs.list_live_runs())
    run_until_quiet(world)
    check_outcome(world, f"faults: {plan.injected}")


def test_an_event_for_a_run_saved_as_waiting_is_not_missed_while_its_outbox_waits(
    plan_and_world: tuple[FaultPlan, World],
) -> None:
    """The worker dies right after the save that makes the run wait; the event comes at
    once, long before the item is redelivered and the outbox applied. It must resolve the
    wait: the run already says it waits (found by the AWS fault-injection run, seed 17)."""
    plan, world = plan_and_world
    _fail_when(world, plan, "parent:2", "runs.save_run", after=True, crash=True)
    for _ in range(50):
        world.step()
        if plan.injected:
            break
    (parent,) = world.raw.runs.list_runs(function_id="app-parent")
    assert parent.waiting and parent.outbox, "the crash should leave the run waiting, unapplied"
    world.go_sent.add("o1")
    world.send("shop/go", {"order": "o1"}, key="go-o1")
    run_until_quiet(world)
    check_outcome(world, f"faults: {plan.injected}")
