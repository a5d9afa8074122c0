"""The run record keeps every try: each attempt of a step with its timing, error and retry
time; failed calls outside any step on the run; open steps closed when the run ends."""

from __future__ import annotations

from wayline.engine import lifecycle, machine, steps
from wayline.engine.decision import Decision
from wayline.engine.ids import hash_step_id
from wayline.engine.machine import Env
from wayline.engine.model import (
    JSON,
    Attempt,
    FunctionDef,
    Run,
    RunStatus,
    StepStatus,
    Trigger,
    WorkItem,
)
from wayline.engine.protocol import CallResponse, Op
from wayline.engine.retry import backoff_ms

T0 = 1_800_000_000_000
FN = FunctionDef(
    id="app-fn",
    app_id="app",
    name="fn",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="e"),),
    retries=2,
)

ERROR = {"name": "ValueError", "message": "bad card", "stack": "Traceback...\n  line 3"}


def env(now: int = T0) -> Env:
    return Env(now=now, fn=FN, jitter_ms=0, retry_interval_ms=None)


def start() -> Decision:
    event: dict[str, JSON] = {"name": "e", "data": {}, "user": {}, "id": "ev1", "ts": T0}
    return lifecycle.start_run(run_id="run1", fn=FN, events=[event], event_ids=["ev1"], now=T0)


def only_item(run: Run) -> WorkItem:
    assert len(run.pending) == 1, run.pending
    return next(iter(run.pending.values()))


def ok(*ops: Op) -> CallResponse:
    return CallResponse(status=206, ops=ops)


def call(run: Run, resp: CallResponse, item: WorkItem | None = None, now: int = T0) -> Decision:
    return machine.apply_call(run, item or only_item(run), resp, env(now), started_at=now)


def step_run(name: str, data: JSON) -> Op:
    return Op(
        op="StepRun", id=hash_step_id(name), name=name, display_name=name, data=data, has_data=True
    )


def step_error(name: str, error: dict[str, str] = ERROR) -> Op:
    return Op(op="StepError", id=hash_step_id(name), name=name, display_name=name, error=error)


def test_every_try_of_a_step_is_kept_with_its_error_and_retry_time() -> None:
    run = start().run
    first = call(run, ok(step_error("charge")), now=T0 + 10)
    retry = only_item(first.run)
    assert retry.at == T0 + 10 + backoff_ms(0, jitter_ms=0)
    second = call(first.run, ok(step_error("charge")), now=retry.at)
    third = call(second.run, ok(step_run("charge", {"id": "c1"})), now=only_item(second.run).at)
    record = third.run.step(hash_step_id("charge"))
    assert record is not None
    assert record.status is StepStatus.COMPLETED and record.attempts == 3
    assert [(a.number, a.status, a.error) for a in record.history] == [
        (1, StepStatus.FAILED, ERROR),
        (2, StepStatus.FAILED, ERROR),
        (3, StepStatus.COMPLETED, None),
    ]
    assert record.history[0].retry_at == retry.at
    assert record.history[1].retry_at == only_item(second.run).at
    assert record.history[2].retry_at is None
    assert record.history[0].started_at == T0 + 10 == record.history[0].ended_at


def test_the_last_failed_try_has_no_retry_time() -> None:
    run = start().run
    for _ in range(FN.max_attempts):
        run = call(run, ok(step_error("charge")), now=T0).run
    record = run.step(hash_step_id("charge"))
    assert record is not None and record.status is StepStatus.FAILED
    assert len(record.history) == FN.max_attempts
    assert [a.retry_at is None for a in record.history] == [False, False, True]


def test_a_discovery_call_that_fails_is_recorded_on_the_run() -> None:
    run = start().run
    refused = CallResponse.failed_transport("could not reach http://app/api: ConnectionRefused")
    failed = call(run, refused, now=T0 + 5)
    (attempt,) = failed.run.call_failures
    retry = only_item(failed.run)
    assert attempt == Attempt(
        number=1,
        started_at=T0 + 5,
        ended_at=T0 + 5,
        status=StepStatus.FAILED,
        error={"name": "Error", "message": refused.transport_error},
        retry_at=retry.at,
    )
    bad = call(failed.run, CallResponse(status=502, body="<html>", is_sdk=False), now=retry.at)
    assert [a.number for a in bad.run.call_failures] == [1, 2]
    assert "502" in bad.run.call_failures[1].error["message"]


def test_a_step_call_that_fails_is_recorded_on_the_step() -> None:
    run = start().run
    first = call(run, ok(step_error("charge")), now=T0)
    retry = only_item(first.run)
    timed_out = CallResponse.failed_transport("could not reach http://app/api: TimeoutError")
    second = call(first.run, timed_out, now=retry.at)
    record = second.run.step(hash_step_id("charge"))
    assert record is not None and second.run.call_failures == ()
    assert record.history[-1].error == {"name": "Error", "message": timed_out.transport_error}
    assert record.history[-1].retry_at == only_item(second.run).at


def test_cancel_closes_open_steps_as_cancelled() -> None:
    done = call(start().run, ok(step_run("a", 1)))
    nap = Op(op="Sleep", id=hash_step_id("nap"), name="1h", display_name="nap")
    sleeping = call(done.run, ok(nap))
    assert sleeping.run.step(hash_step_id("nap")).status is StepStatus.SLEEPING  # type: ignore[union-attr]
    cancelled = machine.apply_cancel(sleeping.run, env(T0 + 99), reason="user").run
    assert cancelled.status is RunStatus.CANCELLED
    by_name = {s.name: s for s in cancelled.steps}
    assert by_name["nap"].status is StepStatus.CANCELLED and by_name["nap"].ended_at == T0 + 99
    assert by_name["a"].status is StepStatus.COMPLETED


def test_a_failed_run_shows_its_failing_step_failed() -> None:
    run = call(start().run, ok(step_error("charge"))).run
    for _ in range(FN.max_attempts - 1):
        item = only_item(run)
        run = call(run, CallResponse(status=500, body={"message": "boom"}), item=item).run
    assert run.status is RunStatus.FAILED
    record = run.step(hash_step_id("charge"))
    assert record is not None and record.status is StepStatus.FAILED


def test_history_stacks_are_bounded_and_say_so() -> None:
    long = {**ERROR, "stack": "x" * (steps.HISTORY_STACK_CHARS + 10)}
    attempt = Attempt(1, 0, 0, StepStatus.FAILED, long)
    (kept,) = steps.with_attempt((), attempt)
    assert kept.error["stack"].startswith("x" * steps.HISTORY_STACK_CHARS)
    assert "10 more characters cut" in kept.error["stack"]
    many: tuple[Attempt, ...] = ()
    for n in range(steps.MAX_HISTORY + 5):
        many = steps.with_attempt(many, Attempt(n, 0, 0, StepStatus.FAILED))
    assert len(many) == steps.MAX_HISTORY and many[-1].number == steps.MAX_HISTORY + 4


def test_a_first_try_success_keeps_no_history_but_shows_its_try() -> None:
    done = call(start().run, ok(step_run("a", 1)), now=T0 + 7)
    record = done.run.step(hash_step_id("a"))
    assert record is not None and record.history == ()  # nothing extra in the saved body
    assert record.tries == (Attempt(1, T0 + 7, T0 + 7, StepStatus.COMPLETED),)
    nap = Op(op="Sleep", id=hash_step_id("nap"), name="1h", display_name="nap")
    sleeping = call(done.run, ok(nap)).run.step(hash_step_id("nap"))
    assert sleeping is not None and sleeping.tries == ()  # a sleep is not a try
