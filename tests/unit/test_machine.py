"""Run state machine transitions, driven with the opcodes the official SDKs send."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wayline.engine import lifecycle, machine
from wayline.engine.decision import Decision
from wayline.engine.ids import hash_step_id
from wayline.engine.machine import Env
from wayline.engine.model import (
    JSON,
    FunctionDef,
    Run,
    RunStatus,
    StepStatus,
    Trigger,
    WaitKind,
    WorkItem,
    WorkKind,
)
from wayline.engine.protocol import CallResponse, Op

T0 = 1_800_000_000_000
FN = FunctionDef(
    id="app-fn",
    app_id="app",
    name="fn",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="e"),),
    retries=2,
)
EVENT: dict[str, JSON] = {"name": "e", "data": {"id": "u1"}, "user": {}, "id": "ev1", "ts": T0}


def env(now: int = T0, fn: FunctionDef = FN) -> Env:
    return Env(now=now, fn=fn, jitter_ms=0, retry_interval_ms=None)


def start(fn: FunctionDef = FN) -> Decision:
    return lifecycle.start_run(run_id="run1", fn=fn, events=[EVENT], event_ids=["ev1"], now=T0)


def only_item(run: Run) -> WorkItem:
    assert len(run.pending) == 1, run.pending
    return next(iter(run.pending.values()))


def ok(*ops: Op, headers: dict[str, str] | None = None) -> CallResponse:
    no_retry = bool(headers and headers.get("x-inngest-no-retry") == "true")
    return CallResponse(status=206, ops=ops, no_retry=no_retry)


def step_run(name: str, data: JSON) -> Op:
    return Op(
        op="StepRun", id=hash_step_id(name), name=name, display_name=name, data=data, has_data=True
    )


def planned(name: str, race: bool = False) -> Op:
    return Op(
        op="StepPlanned",
        id=hash_step_id(name),
        name=name,
        display_name=name,
        opts={"parallelMode": "race"} if race else None,
    )


def call(run: Run, resp: CallResponse, item: WorkItem | None = None, now: int = T0) -> Decision:
    return machine.apply_call(run, item or only_item(run), resp, env(now), started_at=now)


def test_start_enqueues_one_discovery_call() -> None:
    decision = start()
    item = only_item(decision.run)
    assert decision.enqueue == (item,)
    assert (item.kind, item.step_id, item.attempt, item.at) == (WorkKind.CALL, None, 0, T0)
    assert decision.run.status is RunStatus.QUEUED
    assert decision.run.started_at is None


def test_inline_step_run_memoizes_and_rediscovers() -> None:
    run = start().run
    d = call(run, ok(step_run("a", 1)))
    assert d.run.memos == {hash_step_id("a"): {"data": 1}}
    assert d.run.stack == (hash_step_id("a"),)
    nxt = only_item(d.run)
    assert nxt.step_id is None and nxt.attempt == 0
    assert d.run.step(hash_step_id("a")) is not None


def test_200_completes_and_publishes_finished_event() -> None:
    run = start().run
    d = call(run, CallResponse(status=200, body={"ok": True}))
    assert d.run.status is RunStatus.COMPLETED
    assert d.run.output == {"ok": True}
    assert d.run.pending == {}
    names = [e["name"] for e in d.publish]
    assert names == [lifecycle.FUNCTION_FINISHED]
    assert d.publish[0]["data"]["result"] == {"ok": True}


def test_duplicate_delivery_is_a_no_op() -> None:
    run = start().run
    item = only_item(run)
    first = call(run, ok(step_run("a", 1)), item)
    again = machine.apply_call(first.run, item, ok(step_run("a", 2)), env(), started_at=T0)
    assert not again.changed
    assert again.run.memos[hash_step_id("a")] == {"data": 1}


@pytest.mark.parametrize(
    ("resp", "retries_left_status"),
    [
        (CallResponse(status=500, body={"code": "unknown", "message": "boom"}), RunStatus.RUNNING),
        (CallResponse.failed_transport("refused"), RunStatus.RUNNING),
        (CallResponse(status=200, body="<html>", is_sdk=False), RunStatus.RUNNING),
    ],
)
def test_function_level_errors_retry_with_backoff(
    resp: CallResponse, retries_left_status: RunStatus
) -> None:
    run = start().run
    d = call(run, resp)
    assert d.run.status is retries_left_status
    retry = only_item(d.run)
    assert retry.attempt == 1 and retry.step_id is None
    assert retry.at == T0 + 15_000  # first backoff table entry, zero jitter


def test_function_error_on_last_attempt_fails_with_sdk_body() -> None:
    run = start().run
    body = {"code": "unknown", "message": "boom", "name": "ValueError", "stack": "tb"}
    for _ in range(FN.max_attempts):
        assert not run.status.is_terminal
        run = call(run, CallResponse(status=500, body=body)).run
    assert run.status is RunStatus.FAILED
    assert run.output == body


def test_no_retry_header_fails_immediately_and_emits_failed_event() -> None:
    run = start().run
    body = {"code": "non_retriable_error", "message": "nope", "name": "NonRetriableError"}
    d = call(run, CallResponse(status=500, body=body, no_retry=True))
    assert d.run.status is RunStatus.FAILED
    failed = [e for e in d.publish if e["name"] == lifecycle.FUNCTION_FAILED]
    assert len(failed) == 1
    data = failed[0]["data"]
    assert isinstance(data, dict)
    assert data["function_id"] == FN.id and data["run_id"] == "run1"
    assert data["error"]["message"] == "nope"
    assert data["event"] == EVENT


def test_retry_after_header_overrides_backoff() -> None:
    run = start().run
    resp = CallResponse(status=500, body={"message": "later"}, retry_after="3")
    retry = only_item(call(run, resp).run)
    assert retry.at == T0 + 3_000


def test_fixed_retry_interval() -> None:
    run = start().run
    e = replace(env(), retry_interval_ms=1000)
    d = machine.apply_call(run, only_item(run), CallResponse(status=500, body={}), e, started_at=T0)
    assert only_item(d.run).at == T0 + 1000


def test_step_error_retries_the_step_then_step_failed_memoizes() -> None:
    run = start().run
    error = {"name": "ValueError", "message": "bad"}
    err_op = Op(op="StepError", id=hash_step_id("a"), name="a", error=error)
    d = call(run, ok(err_op))
    retry = only_item(d.run)
    assert (retry.step_id, retry.attempt) == (hash_step_id("a"), 1)
    assert hash_step_id("a") not in d.run.memos
    failed = Op(op="StepFailed", id=hash_step_id("a"), name="a", error=error)
    d = call(d.run, ok(failed), retry)
    assert d.run.memos[hash_step_id("a")] == {"error": error}
    assert only_item(d.run).step_id is None  # discovery: the SDK raises StepError in user code


def test_step_error_with_no_retry_is_final() -> None:
    run = start().run
    err_op = Op(op="StepError", id=hash_step_id("a"), name="a", error={"message": "nested"})
    d = call(run, CallResponse(status=206, ops=(err_op,), no_retry=True))
    assert d.run.memos[hash_step_id("a")] == {"error": {"message": "nested"}}


def test_parallel_wait_mode_coalesces_discovery() -> None:
    run = start().run
    d = call(run, ok(planned("a"), planned("b")))
    assert d.run.force_step_plan
    items = {i.step_id: i for i in d.run.pending.values()}
    assert set(items) == {hash_step_id("a"), hash_step_id("b")}
    d = call(d.run, ok(step_run("a", 1)), items[hash_step_id("a")])
    assert list(d.run.pending.values()) == [items[hash_step_id("b")]]  # no discovery yet
    d = call(d.run, ok(step_run("b", 2)), items[hash_step_id("b")])
    discovery = only_item(d.run)
    assert discovery.step_id is None
    assert not d.run.force_step_plan  # reset once the batch drained


def test_parallel_race_mode_discovers_after_each_completion() -> None:
    run = start().run
    d = call(run, ok(planned("a", race=True), planned("b", race=True)))
    items = {i.step_id: i for i in d.run.pending.values()}
    d = call(d.run, ok(step_run("a", 1)), items[hash_step_id("a")])
    kinds = sorted((i.step_id or "discovery") for i in d.run.pending.values())
    assert kinds == sorted([hash_step_id("b"), "discovery"])
    assert d.run.force_step_plan  # batch not drained


def test_replanning_an_in_flight_step_is_ignored() -> None:
    run = start().run
    d = call(run, ok(planned("a", race=True), planned("b", race=True)))
    items = {i.step_id: i for i in d.run.pending.values()}
    d = call(d.run, ok(step_run("a", 1)), items[hash_step_id("a")])
    disc = next(i for i in d.run.pending.values() if i.step_id is None)
    d = call(d.run, ok(planned("a.2", race=True), planned("b", race=True)), disc)
    targets = sorted(i.step_id or "" for i in d.run.pending.values())
    assert targets == sorted([hash_step_id("b"), hash_step_id("a.2")])


def test_sleep_schedules_wake_and_memo_is_null() -> None:
    run = start().run
    sleep = Op(op="Sleep", id=hash_step_id("nap"), name="2026-01-01T00:00:00Z", display_name="nap")
    target_ms = 1_767_225_600_000
    d = call(run, ok(sleep), now=target_ms - 5_000)
    wake = only_item(d.run)
    assert (wake.kind, wake.at) == (WorkKind.SLEEP, target_ms)
    d = machine.apply_sleep_elapsed(d.run, wake, env(target_ms))
    assert d.run.memos[hash_step_id("nap")] is None
    assert only_item(d.run).kind is WorkKind.CALL


def test_sleep_over_366_days_memoizes_an_error() -> None:
    run = start().run
    sleep = Op(op="Sleep", id=hash_step_id("nap"), name="400d", display_name="nap")
    d = call(run, ok(sleep))
    memo = d.run.memos[hash_step_id("nap")]
    assert isinstance(memo, dict) and "366d" in memo["error"]["message"]


def wait_op(condition: str | None, timeout: str = "1m") -> Op:
    return Op(
        op="WaitForEvent",
        id=hash_step_id("w"),
        name="other/event",
        display_name="w",
        opts={"if": condition, "timeout": timeout},
    )


def test_wait_for_event_interpolates_trigger_event() -> None:
    run = start().run
    d = call(run, ok(wait_op("event.data.id == async.data.id")))
    (wait,) = d.waits
    assert wait.event == "other/event"
    assert wait.expression == '"u1" == async.data.id'
    assert wait.expires_at == T0 + 60_000
    timer = only_item(d.run)
    assert timer.kind is WorkKind.WAIT_TIMEOUT


def test_wait_resolved_by_event_then_timer_is_a_no_op() -> None:
    run = start().run
    d = call(run, ok(wait_op(None)))
    timer = only_item(d.run)
    matched = {"name": "other/event", "data": {"x": 1}, "id": "e2", "ts": T0, "user": {}}
    d = machine.apply_wait_resolved(d.run, step_id=hash_step_id("w"), event=matched, env=env())
    assert d.run.memos[hash_step_id("w")] == matched
    record = d.run.step(hash_step_id("w"))
    assert record is not None and record.op == "WaitForEvent" and record.output == matched
    assert d.drop_waits == (f"run1/{hash_step_id('w')}",)
    late = machine.apply_wait_timeout(d.run, timer, env(T0 + 60_000))
    assert not late.changed


def test_wait_timeout_memoizes_null() -> None:
    run = start().run
    d = call(run, ok(wait_op(None)))
    d = machine.apply_wait_timeout(d.run, only_item(d.run), env(T0 + 60_000))
    assert d.run.memos[hash_step_id("w")] is None


def invoke_op(timeout: str | None = "1s") -> Op:
    return Op(
        op="InvokeFunction",
        id=hash_step_id("inv"),
        name="inv",
        display_name="inv",
        opts={"function_id": "app-child", "payload": {"data": {"k": 1}}, "timeout": timeout},
    )


def test_invoke_publishes_invoked_event_and_waits_for_finish() -> None:
    run = start().run
    d = call(run, ok(invoke_op()))
    (invoked,) = d.publish
    assert invoked["name"] == lifecycle.FUNCTION_INVOKED
    data = invoked["data"]
    assert isinstance(data, dict)
    assert data["k"] == 1
    assert data["_inngest"]["fn_id"] == "app-child"
    assert data["_inngest"]["correlation_id"] == f"run1.{hash_step_id('inv')}"
    (wait,) = d.waits
    assert wait.kind is WaitKind.INVOKE and wait.event == lifecycle.FUNCTION_FINISHED


@pytest.mark.parametrize(
    ("finished_data", "memo"),
    [
        ({"result": {"foo": 1}}, {"data": {"foo": 1}}),
        ({"error": {"name": "E", "message": "m"}}, {"error": {"name": "E", "message": "m"}}),
        (None, {"error": machine.INVOKE_TIMEOUT_ERROR}),
    ],
)
def test_invoke_memo(finished_data: JSON, memo: JSON) -> None:
    run = call(start().run, ok(invoke_op())).run
    event = (
        None
        if finished_data is None
        else {"name": lifecycle.FUNCTION_FINISHED, "data": finished_data}
    )
    d = machine.apply_wait_resolved(run, step_id=hash_step_id("inv"), event=event, env=env())
    assert d.run.memos[hash_step_id("inv")] == memo


def test_cancel_discards_in_flight_result_and_emits_cancelled() -> None:
    run = start().run
    item = only_item(run)
    d = machine.apply_cancel(run, env(), reason="test")
    assert d.run.status is RunStatus.CANCELLED
    assert [e["name"] for e in d.publish] == [
        lifecycle.FUNCTION_FINISHED,
        lifecycle.FUNCTION_CANCELLED,
    ]
    late = machine.apply_call(d.run, item, ok(step_run("a", 1)), env(), started_at=T0)
    assert not late.changed
    assert not machine.apply_cancel(d.run, env(), reason="again").changed


def test_failure_handler_runs_emit_no_finish_events() -> None:
    failed_event = {"name": lifecycle.FUNCTION_FAILED, "data": {}, "id": "x", "ts": T0, "user": {}}
    run = lifecycle.start_run(
        run_id="r2", fn=FN, events=[failed_event], event_ids=["x"], now=T0
    ).run
    d = call(run, CallResponse(status=500, body={"message": "x"}, no_retry=True))
    assert d.run.status is RunStatus.FAILED
    assert d.publish == ()


def test_unsupported_opcode_fails_the_run_clearly_and_shows_the_step() -> None:
    run = start().run
    d = call(run, ok(Op(op="Teleport", id="abc", name="beam-me-up")))
    assert d.run.status is RunStatus.FAILED
    assert isinstance(d.run.output, dict)
    assert "Teleport" in str(d.run.output["message"])
    (step,) = d.run.steps
    assert (step.id, step.name, step.op, step.status) == (
        "abc",
        "beam-me-up",
        "Teleport",
        StepStatus.FAILED,
    )
    assert step.error == d.run.output


def gateway(name: str, **result: JSON) -> Op:
    opts: dict[str, JSON] = {"url": "http://127.0.0.1:9/v1/messages", "format": "anthropic"}
    return Op(
        op="AIGateway",
        id=hash_step_id(name),
        name=name,
        display_name=name,
        opts=opts,
        data=result.get("data"),
        has_data="data" in result,
        error=result.get("error"),
    )


def test_an_ai_gateway_answer_is_memoized_and_discovery_follows() -> None:
    run = start().run
    d = call(run, ok(gateway("ask", data={"text": "hi"})))
    assert d.run.memos[hash_step_id("ask")] == {"data": {"text": "hi"}}
    (step,) = d.run.steps
    assert (step.op, step.status, step.output) == (
        "AIGateway",
        StepStatus.COMPLETED,
        {"text": "hi"},
    )
    item = only_item(d.run)
    assert (item.kind, item.step_id) == (WorkKind.CALL, None)


def test_a_failed_ai_gateway_call_retries_the_sdk_call_then_memoizes_the_error() -> None:
    error: JSON = {"name": "Error making AI request: unsuccessful status code: 500", "message": "x"}
    run = start().run
    first = only_item(run)
    d = call(run, ok(gateway("ask", error=error)))
    retry = only_item(d.run)
    assert (retry.step_id, retry.attempt) == (first.step_id, 1)  # the same call, again
    assert hash_step_id("ask") not in d.run.memos
    d = call(d.run, ok(gateway("ask", error=error)), retry)
    d = call(d.run, ok(gateway("ask", error=error)), only_item(d.run))  # FN has 2 retries
    assert d.run.memos[hash_step_id("ask")] == {"error": error}
    assert d.run.steps[0].status is StepStatus.FAILED
    assert only_item(d.run).step_id is None  # discovery: the SDK raises StepError


def test_an_ai_gateway_op_no_driver_resolved_fails_its_step_at_once() -> None:
    d = call(start().run, ok(gateway("ask")))
    memo = d.run.memos[hash_step_id("ask")]
    assert isinstance(memo, dict) and memo["error"]["name"] == "InvalidAIGateway"


def test_step_records_keep_first_seen_order() -> None:
    run = start().run
    d = call(run, ok(planned("a"), planned("b")))
    items = {i.step_id: i for i in d.run.pending.values()}
    d = call(d.run, ok(step_run("b", 2)), items[hash_step_id("b")])
    d = call(d.run, ok(step_run("a", 1)), items[hash_step_id("a")])
    assert [s.name for s in d.run.steps] == ["a", "b"]
    assert all(s.status is StepStatus.COMPLETED for s in d.run.steps)


def test_stale_discovery_in_race_mode_never_stalls_the_run() -> None:
    run = start().run
    d = call(run, ok(planned("a", race=True), planned("b", race=True)))
    items = {i.step_id: i for i in d.run.pending.values()}
    d = call(d.run, ok(step_run("a", 1)), items[hash_step_id("a")])
    stale_discovery = next(i for i in d.run.pending.values() if i.step_id is None)
    # b completes while that discovery is in flight: no second discovery is queued ...
    d = call(d.run, ok(step_run("b", 2)), items[hash_step_id("b")])
    assert [i.step_id for i in d.run.pending.values()] == [None]
    # ... and the stale discovery reports only b, which is already done.
    d = call(d.run, ok(planned("b", race=True)), stale_discovery)
    follow_up = only_item(d.run)
    assert follow_up.step_id is None and follow_up.id != stale_discovery.id


FLOW_FN = replace(
    FN,
    config={
        "cancel": [
            {"event": "order/cancelled", "if": "event.data.id == async.data.id"},
            {"event": "never", "if": "event.data.id == 'someone-else'"},
        ],
        "timeouts": {"start": "10s", "finish": "1m"},
    },
)


def test_cancel_on_listeners_are_interpolated_at_start() -> None:
    d = start(FLOW_FN)
    (wait,) = d.waits  # the second condition interpolates to a literal false: no listener
    assert wait.kind is WaitKind.CANCEL and wait.event == "order/cancelled"
    assert wait.expression == '"u1" == async.data.id'
    assert d.run.cancel_waits == (wait,)
    done = machine.apply_cancel(d.run, env(fn=FLOW_FN), reason="x")
    assert wait.id in done.drop_waits


def test_start_timeout_cancels_a_run_that_never_started() -> None:
    d = start(FLOW_FN)
    timer = next(i for i in d.run.pending.values() if i.kind is WorkKind.TIMEOUT)
    assert timer.at == T0 + 10_000
    late = machine.apply_timeout(d.run, timer, env(T0 + 10_000, FLOW_FN))
    assert late.run.status is RunStatus.CANCELLED
    assert "timeouts.start" in str(late.run.cancel_reason)


def test_start_timeout_is_a_no_op_once_started_and_finish_timeout_takes_over() -> None:
    d = start(FLOW_FN)
    start_timer = next(i for i in d.run.pending.values() if i.kind is WorkKind.TIMEOUT)
    started = machine.apply_started(d.run, env(T0 + 1, FLOW_FN))
    assert started.run.status is RunStatus.RUNNING and started.run.started_at == T0 + 1
    (finish_timer,) = started.enqueue
    assert finish_timer.at == T0 + 1 + 60_000
    after = machine.apply_timeout(started.run, start_timer, env(T0 + 10_000, FLOW_FN))
    assert after.run.status is RunStatus.RUNNING
    done = machine.apply_timeout(after.run, finish_timer, env(T0 + 60_001, FLOW_FN))
    assert done.run.status is RunStatus.CANCELLED
    assert "timeouts.finish" in str(done.run.cancel_reason)
