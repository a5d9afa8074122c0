"""The WaitForSignal opcode and signal memos (pure)."""

from __future__ import annotations

from wayline.engine import lifecycle, machine, signals
from wayline.engine.decision import Decision
from wayline.engine.ids import hash_step_id
from wayline.engine.machine import Env
from wayline.engine.model import FunctionDef, StepStatus, Trigger, WaitKind
from wayline.engine.protocol import CallResponse, Op

T0 = 1_800_000_000_000
FN = FunctionDef(
    id="a-f", app_id="a", name="f", url="http://x/", triggers=(Trigger("e"),), retries=0
)
STEP = hash_step_id("approval")


def report(opts: dict[str, object], name: str = "") -> Decision:
    run = lifecycle.start_run(
        run_id="r1", fn=FN, events=[{"name": "e", "data": {}}], event_ids=["e1"], now=T0
    ).run
    item = next(iter(run.pending.values()))
    op = Op(op="WaitForSignal", id=STEP, name=name, display_name="approval", opts=opts)
    return machine.apply_call(run, item, CallResponse(206, ops=(op,)), Env(T0, FN), started_at=T0)


def test_wait_for_signal_opens_a_signal_pause_with_its_timeout() -> None:
    d = report({"signal": "go", "timeout": "1m"}, name="go")
    wait = d.run.waiting[STEP]
    assert (wait.kind, wait.event) == (WaitKind.SIGNAL, "inngest/signal:go")
    assert wait.expires_at == T0 + 60_000
    assert d.waits == (wait,)
    step = d.run.step(STEP)
    assert step is not None and step.op == "WaitForSignal" and step.status is StepStatus.WAITING


def test_a_signal_op_without_timeout_fails_its_step_with_the_reason() -> None:
    d = report({"signal": "go"})
    error = d.run.memos[STEP]["error"]
    assert error["name"] == "InvalidSignal" and "waitForSignal.timeout" in error["message"]
    long = report({"signal": "x" * 300, "timeout": "1m"}).run.memos[STEP]["error"]
    assert "the limit is 256" in long["message"]


def test_memos() -> None:
    assert signals.memo(None) == (None, StepStatus.COMPLETED)
    assert signals.memo(signals.resolution("s", {"a": 1})) == (
        {"data": {"signal": "s", "data": {"a": 1}}},
        StepStatus.COMPLETED,
    )
    memo, status = signals.memo(signals.conflict("s", "r0"))
    assert status is StepStatus.FAILED and memo["error"]["name"] == "SignalConflictError"
