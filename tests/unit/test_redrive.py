"""Redrive seeding: which steps of a failed run a redrive reuses, and how the new run
uses them (pure: runs are built by driving the state machine with SDK responses)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wayline.engine import lifecycle, machine, redrive
from wayline.engine.decision import Decision
from wayline.engine.ids import hash_step_id
from wayline.engine.machine import Env
from wayline.engine.model import JSON, FunctionDef, Run, RunStatus, Trigger, WorkItem
from wayline.engine.protocol import CallResponse, Op
from wayline.errors import ValidationError

T0 = 1_800_000_000_000
FN = FunctionDef(
    id="app-fn",
    app_id="app",
    name="fn",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="e"),),
    retries=0,
)
EVENT: dict[str, JSON] = {"name": "e", "data": {}, "user": {}, "id": "ev1", "ts": T0}


def env(now: int) -> Env:
    return Env(now=now, fn=FN)


def call(run: Run, resp: CallResponse, item: WorkItem, now: int) -> Decision:
    return machine.apply_call(run, item, resp, env(now), started_at=now)


def ok(*ops: Op) -> CallResponse:
    return CallResponse(status=206, ops=ops)


def step_run(name: str, data: JSON) -> Op:
    return Op(op="StepRun", id=hash_step_id(name), name=name, display_name=name, data=data)


def planned(name: str) -> Op:
    return Op(op="StepPlanned", id=hash_step_id(name), name=name, display_name=name)


BOOM: dict[str, JSON] = {"name": "Error", "message": "boom"}


def failed(name: str) -> Op:
    return Op(op="StepFailed", id=hash_step_id(name), name=name, display_name=name, error=BOOM)


def fn_error() -> CallResponse:
    return CallResponse(status=500, body=BOOM, no_retry=True)


def new_run(run_id: str = "run1") -> Run:
    return lifecycle.start_run(run_id=run_id, fn=FN, events=[EVENT], event_ids=["ev1"], now=T0).run


def discovery(run: Run) -> WorkItem:
    return next(i for i in run.pending.values() if i.step_id is None)


def targeted(run: Run, name: str) -> WorkItem:
    return next(i for i in run.pending.values() if i.step_id == hash_step_id(name))


def sequential(*responses: CallResponse, start: Run | None = None, at: int = T0) -> Run:
    """Feed one response per discovery call, one millisecond apart, after ``at``."""
    run = start or new_run()
    for offset, resp in enumerate(responses, start=1):
        run = call(run, resp, discovery(run), now=at + offset).run
    return run


def ids(*names: str) -> set[str]:
    return {hash_step_id(n) for n in names}


def test_sequential_run_seeds_the_steps_before_the_failed_one() -> None:
    old = sequential(ok(step_run("a", 1)), ok(step_run("b", 2)), ok(failed("c")), fn_error())
    assert old.status is RunStatus.FAILED
    seeds = redrive.seeds_for_redrive(old)
    assert set(seeds) == ids("a", "b")
    assert seeds[hash_step_id("b")].memo == {"data": 2}
    assert seeds[hash_step_id("a")].name == "a"


def test_loop_with_a_repeated_id_seeds_each_iteration_under_its_own_hash() -> None:
    old = sequential(
        ok(step_run("item", 0)), ok(step_run("item:1", 1)), ok(failed("item:2")), fn_error()
    )
    seeds = redrive.seeds_for_redrive(old)
    assert set(seeds) == ids("item", "item:1")
    assert seeds[hash_step_id("item:1")].memo == {"data": 1}


def test_steps_after_a_caught_failure_are_not_seeded() -> None:
    # b failed, the function caught the StepError and ran c, then failed: c's result may
    # depend on b having failed, so only a is reused.
    old = sequential(ok(step_run("a", 1)), ok(failed("b")), ok(step_run("c", 3)), fn_error())
    assert set(redrive.seeds_for_redrive(old)) == ids("a")


def test_parallel_siblings_of_the_failed_step_are_seeded() -> None:
    run = new_run()
    run = call(run, ok(planned("a"), planned("b"), planned("c")), discovery(run), T0 + 1).run
    # All three calls start together; a finishes, b fails, c finishes after b failed.
    run = call(run, ok(step_run("a", 1)), targeted(run, "a"), now=T0 + 2).run
    run = call(run, ok(failed("b")), targeted(run, "b"), now=T0 + 3).run
    run = call(run, ok(step_run("c", 3)), targeted(run, "c"), now=T0 + 4).run
    # Each targeted call's start is its `started_at`: put them all before b's failure.
    run = replace(run, steps=tuple(replace(s, started_at=T0 + 1) for s in run.steps))
    old = sequential(ok(step_run("after", 9)), fn_error(), start=run, at=T0 + 10)
    assert old.status is RunStatus.FAILED
    assert set(redrive.seeds_for_redrive(old)) == ids("a", "c")


def test_function_level_failure_seeds_every_completed_step() -> None:
    old = sequential(ok(step_run("a", 1)), ok(step_run("b", 2)), fn_error())
    assert redrive.failed_steps(old) == []
    assert set(redrive.seeds_for_redrive(old)) == ids("a", "b")


def test_a_planned_step_that_failed_at_function_level_is_the_failed_step() -> None:
    # py re-raises NonRetriableError from step.run as a 500 on the targeted call: no
    # error memo, but the step's record carries the error.
    run = sequential(ok(step_run("a", 1)))
    run = call(run, ok(planned("b")), discovery(run), now=T0 + 5).run
    old = call(run, fn_error(), targeted(run, "b"), now=T0 + 6).run
    assert old.status is RunStatus.FAILED
    assert [s.id for s in redrive.failed_steps(old)] == [hash_step_id("b")]
    assert set(redrive.seeds_for_redrive(old)) == ids("a")


def test_sleeps_and_waits_are_seeded_with_their_memos() -> None:
    old = replace(
        sequential(ok(step_run("a", 1)), ok(failed("c")), fn_error()),
    )
    sleep_id, wait_id = hash_step_id("nap"), hash_step_id("wait")
    event = {"name": "x", "data": {}}
    old = replace(
        old,
        memos={**old.memos, sleep_id: None, wait_id: event},
        stack=(sleep_id, wait_id, *old.stack),
    )
    seeds = redrive.seeds_for_redrive(old)
    assert seeds[sleep_id].memo is None
    assert seeds[wait_id].memo == event


# ----------------------------------------------------------------------- the new run


def redriven(old: Run) -> Run:
    return redrive.as_rerun(new_run("run2"), old, redrive.FROM_FAILED_STEP)


def failed_abc() -> Run:
    return sequential(ok(step_run("a", 1)), ok(step_run("b", 2)), ok(failed("c")), fn_error())


def test_a_planned_step_with_a_seed_completes_from_it_and_rediscovers() -> None:
    run = redriven(failed_abc())
    assert run.rerun_of == "run1" and set(run.seeds) == ids("a", "b")
    d = call(run, ok(planned("a")), discovery(run), now=T0 + 10)
    step = d.run.step(hash_step_id("a"))
    assert step is not None and step.seeded and step.attempts == 0 and step.output == 1
    assert d.run.memos[hash_step_id("a")] == {"data": 1}
    assert set(d.run.seeds) == ids("b")
    # Nothing is executed: the next call is a discovery, not a targeted call of "a".
    assert [i.step_id for i in d.run.pending.values()] == [None]


def test_redrive_runs_only_the_failed_step_and_ends_with_no_seed_left() -> None:
    run = redriven(failed_abc())
    d = call(run, ok(planned("a")), discovery(run), now=T0 + 10)
    d = call(d.run, ok(planned("b")), discovery(d.run), now=T0 + 11)
    d = call(d.run, ok(step_run("c", 3)), discovery(d.run), now=T0 + 12)
    d = call(d.run, CallResponse(status=200, body=6), discovery(d.run), now=T0 + 13)
    assert d.run.status is RunStatus.COMPLETED
    assert d.run.seeds == {}
    assert redrive.unused_seeds(d.run) == []
    executed = [s.name for s in d.run.steps if not s.seeded]
    assert executed == ["c"]


def test_a_seed_the_new_code_never_reaches_is_reported() -> None:
    run = redriven(failed_abc())  # the new code dropped step "b"
    d = call(run, ok(planned("a")), discovery(run), now=T0 + 10)
    d = call(d.run, ok(step_run("c", 3)), discovery(d.run), now=T0 + 11)
    d = call(d.run, CallResponse(status=200, body=4), discovery(d.run), now=T0 + 12)
    assert d.run.status is RunStatus.COMPLETED
    assert redrive.unused_seeds(d.run) == [{"id": hash_step_id("b"), "name": "b", "op": "StepRun"}]


def test_a_seeded_step_the_sdk_ran_anyway_keeps_its_new_result() -> None:
    run = redriven(failed_abc())
    d = call(run, ok(step_run("a", 100)), discovery(run), now=T0 + 10)
    assert d.run.memos[hash_step_id("a")] == {"data": 100}
    assert hash_step_id("a") not in d.run.seeds


def test_a_parallel_group_uses_seeds_and_runs_the_rest() -> None:
    old = failed_abc()
    run = redriven(old)
    d: Decision = call(run, ok(planned("a"), planned("c")), discovery(run), now=T0 + 10)
    assert d.run.memos[hash_step_id("a")] == {"data": 1}
    assert d.run.planned == frozenset(ids("c"))
    assert [i.step_id for i in d.run.pending.values()] == [hash_step_id("c")]


def test_a_seed_of_another_kind_is_not_used() -> None:
    run = redriven(failed_abc())
    sleep = Op(op="Sleep", id=hash_step_id("a"), name="1s", display_name="a")
    d = machine.apply_call(run, discovery(run), ok(sleep), env(T0 + 10), started_at=T0 + 10)
    assert hash_step_id("a") not in d.run.memos


def test_rerun_from_start_seeds_nothing() -> None:
    run = redrive.as_rerun(new_run("run2"), failed_abc(), redrive.FROM_START)
    assert run.rerun_of == "run1" and run.seeds == {}


def test_refusals() -> None:
    done = replace(failed_abc(), status=RunStatus.COMPLETED)
    assert redrive.refusal(failed_abc(), redrive.FROM_FAILED_STEP) is None
    assert "only a Failed run" in (redrive.refusal(done, redrive.FROM_FAILED_STEP) or "")
    assert redrive.refusal(done, redrive.FROM_START) is None
    assert "still Queued" in (redrive.refusal(new_run(), redrive.FROM_START) or "")


def test_mode_is_validated() -> None:
    assert redrive.check_mode(None) == "start"
    assert redrive.check_mode("failed_step") == "failed_step"
    with pytest.raises(ValidationError, match="from must be one of start, failed_step"):
        redrive.check_mode("middle")


def test_with_rerun_is_idempotent() -> None:
    old = failed_abc()
    once = redrive.with_rerun(old, "run2").run
    assert once.reruns == ("run2",)
    assert not redrive.with_rerun(once, "run2").changed
