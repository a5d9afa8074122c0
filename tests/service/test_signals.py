"""Signals through the real service, on SQLite and on DynamoDB (moto): one waiter per
signal, a send resolves it, a second waiter fails clearly, a stale claim is taken over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wayline.engine.ids import hash_step_id
from wayline.engine.model import Run, RunStatus, StepStatus, WaitKind, WorkKind
from wayline.engine.protocol import CallResponse, Op
from wayline.engine.service import PreparedCall
from wayline.errors import NotFoundError

from .test_windows import STORES, Harness, make

STEP = hash_step_id("approval")


@pytest.fixture(params=STORES)
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    yield from make({}, str(request.param), tmp_path)


def wait_on(h: Harness, signal: str, timeout: str = "1h") -> Run:
    """Start a run whose first call reports a WaitForSignal op."""
    (run,) = h.store.runs.list_runs(event_id=h.send("e"))
    item = next(iter(run.pending.values()))
    call = h.service.prepare_call(item)
    assert isinstance(call, PreparedCall)
    op = Op(
        op="WaitForSignal",
        id=STEP,
        name=signal,
        display_name="approval",
        opts={"signal": signal, "timeout": timeout},
    )
    h.service.complete_call(item, CallResponse(status=206, ops=(op,)), started_at=h.clock.now)
    h.store.queue.ack(item.id)
    stored = h.store.runs.get_run(run.id)
    assert stored is not None
    return stored


def test_a_sent_signal_resolves_the_waiting_run(h: Harness) -> None:
    run = wait_on(h, "approve-7")
    assert run.waiting[STEP].kind is WaitKind.SIGNAL
    assert h.service.signals.send("approve-7", {"ok": True}, now=h.clock.now) == run.id
    done = h.store.runs.get_run(run.id)
    assert done is not None
    assert done.memos[STEP] == {"data": {"signal": "approve-7", "data": {"ok": True}}}
    assert STEP not in done.waiting
    with pytest.raises(NotFoundError, match="no run is waiting for signal 'approve-7'"):
        h.service.signals.send("approve-7", None, now=h.clock.now)


def test_nobody_waiting_is_not_found(h: Harness) -> None:
    with pytest.raises(NotFoundError):
        h.service.signals.send("nobody", {}, now=h.clock.now)


def test_a_second_waiter_fails_with_a_clear_error(h: Harness) -> None:
    first = wait_on(h, "shared")
    second = wait_on(h, "shared")
    record = second.step(STEP)
    assert record is not None and record.status is StepStatus.FAILED
    error = second.memos[STEP]["error"]
    assert error["name"] == "SignalConflictError"
    assert first.id in error["message"] and "'shared'" in error["message"]
    # The first run still owns the signal.
    assert h.service.signals.send("shared", 1, now=h.clock.now) == first.id


def test_a_timed_out_waiter_leaves_the_signal_to_the_next_one(h: Harness) -> None:
    first = wait_on(h, "later", timeout="1s")
    h.clock.now += 1_000
    for item in first.pending.values():
        if item.kind is WorkKind.WAIT_TIMEOUT:
            h.service.fire(item)
    timed_out = h.store.runs.get_run(first.id)
    assert timed_out is not None and timed_out.memos[STEP] is None
    second = wait_on(h, "later")  # takes over the claim the timed-out run left
    assert second.status is RunStatus.RUNNING and STEP in second.waiting
    assert h.service.signals.send("later", 2, now=h.clock.now) == second.id
