"""``machine.apply_checkpoint``, ``RunComplete`` and the checkpoint fields of call requests."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wayline.engine import checkpoint, lifecycle, machine, protocol
from wayline.engine.checkpoint import Checkpoint, Verdict
from wayline.engine.decision import Decision, Env
from wayline.engine.ids import hash_step_id
from wayline.engine.model import (
    JSON,
    FunctionDef,
    Run,
    RunStatus,
    StepStatus,
    Trigger,
    WorkItem,
    WorkKind,
)
from wayline.engine.protocol import CallResponse, Op
from wayline.engine.wire import Opcode
from wayline.errors import ValidationError

T0 = 1_800_000_000_000
FN = FunctionDef(
    id="app-fn",
    app_id="app",
    name="fn",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="e"),),
    retries=2,
)
EVENT: dict[str, JSON] = {"name": "e", "data": {}, "user": {}, "id": "ev1", "ts": T0}


def env(now: int = T0) -> Env:
    return Env(now=now, fn=FN, jitter_ms=0, retry_interval_ms=None)


def only_item(run: Run) -> WorkItem:
    assert len(run.pending) == 1, run.pending
    return next(iter(run.pending.values()))


def ok(*ops: Op) -> CallResponse:
    return CallResponse(status=206, ops=ops)


def step_run(name: str, data: JSON) -> Op:
    return Op(
        op="StepRun", id=hash_step_id(name), name=name, display_name=name, data=data, has_data=True
    )


def planned(name: str) -> Op:
    return Op(op="StepPlanned", id=hash_step_id(name), name=name, display_name=name)


def call(run: Run, resp: CallResponse, item: WorkItem | None = None, now: int = T0) -> Decision:
    return machine.apply_call(run, item or only_item(run), resp, env(now), started_at=now)


def start() -> Decision:
    return lifecycle.start_run(run_id="run1", fn=FN, events=[EVENT], event_ids=["ev1"], now=T0)


def running() -> tuple[Run, WorkItem]:
    """A run whose first (discovery) call is in flight."""
    run = start().run
    run = machine.apply_started(run, env()).run
    return run, only_item(run)


def ckpt(item: WorkItem, *ops: Op) -> Checkpoint:
    return Checkpoint(run_id=item.run_id, qi_id=item.id, steps=ops)


def apply(run: Run, cp: Checkpoint, now: int = T0 + 50) -> Verdict:
    return machine.apply_checkpoint(run, cp, env(now))


def assert_refused(verdict: Verdict, status: int, run: Run) -> None:
    assert verdict.status == status, verdict
    assert verdict.decision is not None
    assert not verdict.decision.changed
    assert verdict.decision.run is run
    assert verdict.decision.enqueue == ()


# ------------------------------------------------------------------ accepted


def test_a_step_is_saved_with_memo_stack_and_timeline_and_nothing_is_enqueued() -> None:
    run, item = running()
    timed = replace(step_run("a", {"x": 1}), timing={"a": 0, "b": 20_000_000})
    verdict = apply(run, ckpt(item, timed))

    assert verdict.status == 200
    assert verdict.decision is not None
    saved = verdict.decision.run
    assert saved.memos == {hash_step_id("a"): {"data": {"x": 1}}}
    assert saved.stack == (hash_step_id("a"),)
    step = saved.step(hash_step_id("a"))
    assert step is not None
    assert (step.name, step.status, step.output, step.attempts) == (
        "a",
        StepStatus.COMPLETED,
        {"x": 1},
        1,
    )
    assert (step.started_at, step.ended_at) == (T0 + 30, T0 + 50)  # 20 ms measured by the SDK
    assert verdict.decision.enqueue == ()
    assert saved.pending == run.pending  # the open call still owns the run


def test_several_steps_keep_their_order_and_the_call_then_completes() -> None:
    run, item = running()
    for name in ("a", "b", "c"):
        verdict = apply(run, ckpt(item, step_run(name, name.upper())))
        assert verdict.decision is not None
        run = verdict.decision.run
    assert run.stack == tuple(hash_step_id(n) for n in "abc")

    done = call(run, ok(Op(op="RunComplete", id="done", data={"ok": True}, has_data=True)))

    assert done.run.status is RunStatus.COMPLETED
    assert done.run.output == {"ok": True}
    assert done.run.pending == {}
    assert done.enqueue == ()


def test_identical_resend_is_200_and_writes_nothing() -> None:
    run, item = running()
    first = apply(run, ckpt(item, step_run("a", 1)))
    assert first.decision is not None
    saved = first.decision.run

    again = apply(saved, ckpt(item, step_run("a", 1)))

    assert again.status == 200
    assert again.decision is not None and not again.decision.changed


def test_step_planned_is_accepted_and_stores_nothing() -> None:
    run, item = running()
    verdict = apply(run, ckpt(item, planned("later")))
    assert verdict.status == 200
    assert verdict.decision is not None and not verdict.decision.changed


def test_a_checkpoint_resets_the_attempt_so_a_later_failure_retries_from_zero() -> None:
    run, _ = running()
    failed = call(run, CallResponse(status=500, body={"message": "boom"}))
    retry = only_item(failed.run)
    assert retry.attempt == 1

    verdict = apply(failed.run, ckpt(retry, step_run("a", 1)))
    assert verdict.decision is not None
    reset = verdict.decision.run
    assert reset.pending[retry.id].attempt == 0

    # The worker still holds the message with attempt 1: the pending copy wins.
    again = call(reset, CallResponse(status=500, body={"message": "boom"}), item=retry)
    assert only_item(again.run).attempt == 1
    assert again.run.status is RunStatus.RUNNING


# ------------------------------------------------------------------ refused


def test_unknown_item_is_a_stale_dispatch() -> None:
    run, item = running()
    stale = replace(item, id=f"{run.id}:99")
    assert_refused(apply(run, ckpt(stale, step_run("a", 1))), 409, run)


def test_answered_call_is_fenced() -> None:
    run, item = running()
    after = call(run, ok(step_run("a", 1))).run  # the call answered: its item is dropped
    verdict = apply(after, ckpt(item, step_run("b", 2)))
    assert_refused(verdict, 409, after)
    assert "stale dispatch" in verdict.message


@pytest.mark.parametrize("how", ["cancel", "complete"])
def test_finished_run_is_409(how: str) -> None:
    run, item = running()
    if how == "cancel":
        ended = machine.apply_cancel(run, env(), reason="test").run
    else:
        ended = call(run, CallResponse(status=200, body="done")).run
    verdict = apply(ended, ckpt(item, step_run("a", 1)))
    assert_refused(verdict, 409, ended)
    assert ended.status.value.lower() in verdict.message


def test_non_call_item_is_409() -> None:
    run, _ = running()
    slept = call(run, ok(Op(op="Sleep", id="nap", name="1s"))).run
    sleep_item = next(i for i in slept.pending.values() if i.kind is WorkKind.SLEEP)
    assert_refused(apply(slept, ckpt(sleep_item, step_run("a", 1))), 409, slept)


@pytest.mark.parametrize(
    "op", ["StepError", "StepFailed", "Sleep", "WaitForEvent", "RunComplete", "DeferAdd", "Nope"]
)
def test_other_ops_are_400_and_nothing_of_the_request_is_saved(op: str) -> None:
    run, item = running()
    verdict = apply(run, ckpt(item, step_run("a", 1), Op(op=op, id="x", data=1)))
    assert_refused(verdict, 400, run)
    assert "steps[1].op" in verdict.message


def test_conflicting_memo_is_409_and_keeps_the_first() -> None:
    run, item = running()
    first = apply(run, ckpt(item, step_run("a", 1)))
    assert first.decision is not None
    saved = first.decision.run

    verdict = apply(saved, ckpt(item, step_run("b", 2), step_run("a", "other")))

    assert_refused(verdict, 409, saved)
    assert saved.memos == {hash_step_id("a"): {"data": 1}}


def test_step_output_over_the_limit_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "MAX_STEP_OUTPUT_BYTES", 10)
    run, item = running()
    verdict = apply(run, ckpt(item, step_run("a", "y" * 20)))
    assert_refused(verdict, 413, run)
    assert "steps[0].data is 22 bytes; the limit is 10" in verdict.message


def test_state_over_the_limit_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    run, item = running()
    monkeypatch.setattr(checkpoint, "MAX_STATE_BYTES", protocol.state_size(run) + 5)
    verdict = apply(run, ckpt(item, step_run("a", "y" * 20)))
    assert_refused(verdict, 413, run)


# ------------------------------------------------------------------ RunComplete in a 206


def test_run_complete_saves_the_steps_sent_along_then_completes_without_discovery() -> None:
    run, _ = running()
    done = Op(op="RunComplete", id="c", data={"r": 2}, has_data=True)
    decision = call(run, ok(step_run("a", 1), done))

    assert decision.run.status is RunStatus.COMPLETED
    assert decision.run.output == {"r": 2}
    assert decision.run.memos == {hash_step_id("a"): {"data": 1}}
    assert decision.enqueue == ()
    assert decision.publish[0]["data"]["result"] == {"r": 2}


def test_stepless_run_complete() -> None:
    run, _ = running()
    decision = call(run, ok(Op(op="RunComplete", id="c", data=None, has_data=True)))
    assert decision.run.status is RunStatus.COMPLETED
    assert decision.run.output is None


def test_a_206_step_already_saved_by_a_checkpoint_still_drives_discovery() -> None:
    """inngest#4130: the SDK's fallback after a lost ack re-sends a saved step in a 206;
    treating it as a duplicate to ignore would strand the run."""
    run, item = running()
    verdict = apply(run, ckpt(item, step_run("a", 1)))
    assert verdict.decision is not None

    decision = call(verdict.decision.run, ok(step_run("a", 1)))

    nxt = only_item(decision.run)
    assert (nxt.kind, nxt.step_id) == (WorkKind.CALL, None)
    assert decision.enqueue == (nxt,)
    assert decision.run.stack == (hash_step_id("a"),)


# ------------------------------------------------------------------ request parsing


def test_parse_accepts_the_js_body_and_ignores_unknown_keys() -> None:
    body: JSON = {
        "run_id": "run1",
        "fn_id": "app-fn",
        "qi_id": "run1:1",
        "request_id": "run1:1",
        "generation_id": None,
        "request_started_at": T0,
        "steps": [
            {
                "op": "StepRun",
                "id": "h",
                "name": "a",
                "displayName": "a",
                "data": 1,
                "timing": {"a": 1, "b": 2},
                "userland": {"id": "a"},
            }
        ],
        "ts": T0,
    }
    parsed = checkpoint.parse(body, run_id="run1")
    assert parsed.qi_id == "run1:1"
    assert parsed.steps[0].op == Opcode.STEP_RUN
    assert (parsed.steps[0].label, parsed.steps[0].data) == ("a", 1)
    assert parsed.steps[0].timing == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"qi_id": "q", "steps": [], "run_id": "other"}, "run_id"),
        ({"steps": []}, "qi_id"),
        ({"qi_id": "", "steps": []}, "qi_id"),
        ({"qi_id": "q", "fn_id": 3, "steps": []}, "fn_id"),
        ({"qi_id": "q"}, "steps"),
        ({"qi_id": "q", "steps": {}}, "steps"),
        ({"qi_id": "q", "steps": [1]}, "steps[0]"),
        ({"qi_id": "q", "steps": [{"id": "x"}]}, "steps[0].op"),
        ({"qi_id": "q", "steps": [{"op": "StepRun", "id": 5}]}, "steps[0].id"),
    ],
)
def test_parse_names_the_bad_field(body: JSON, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        checkpoint.parse(body, run_id="run1")
    assert caught.value.field == field
    assert field in str(caught.value)


# ------------------------------------------------------------------ call requests


def test_discovery_calls_carry_fn_id_and_qi_id_only_when_checkpointing() -> None:
    run, item = running()
    on = protocol.build_request(
        run, FN, item, disable_immediate_execution=False, checkpointing=True
    )
    off = protocol.build_request(run, FN, item, disable_immediate_execution=False)
    assert on["ctx"]["fn_id"] == FN.id and on["ctx"]["qi_id"] == item.id
    assert protocol.call_headers(on) == {"x-request-id": item.id}
    assert "fn_id" not in off["ctx"] and "qi_id" not in off["ctx"]
    assert protocol.call_headers(off) == {}


def test_targeted_and_plan_only_calls_never_checkpoint() -> None:
    run, item = running()
    targeted = replace(item, step_id="s")
    for body in (
        protocol.build_request(
            run, FN, targeted, disable_immediate_execution=False, checkpointing=True
        ),
        protocol.build_request(run, FN, item, disable_immediate_execution=True, checkpointing=True),
    ):
        assert "fn_id" not in body["ctx"] and "qi_id" not in body["ctx"]
        assert protocol.call_headers(body) == {}


def test_opcode_enum_matches_the_wire_strings() -> None:
    assert Opcode("StepRun") is Opcode.STEP_RUN
    assert Opcode.RUN_COMPLETE.value == "RunComplete"
    assert protocol.parse_response(206, {}, b'[{"op":"RunComplete","id":"c","data":1}]').ops == (
        Op(op="RunComplete", id="c", data=1, has_data=True),
    )


def test_parse_op_keeps_unknown_opcodes_as_strings() -> None:
    op = protocol.parse_op({"op": "Brand-New", "id": "x"})
    assert op.op == "Brand-New"
    failed = call(running()[0], ok(op)).run
    assert failed.status is RunStatus.FAILED
    assert "'Brand-New'" in str(failed.output)
