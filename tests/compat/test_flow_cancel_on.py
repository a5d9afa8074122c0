"""cancelOn and timeouts.finish with the official SDK's configuration."""

from __future__ import annotations

import datetime
import time

import inngest
import pytest

from .harness import CANCELLED, RUNNING, Compat, JSONDict, wait_until

pytestmark = pytest.mark.compat

LONG = datetime.timedelta(seconds=30)


def _run_sleeping(compat: Compat, event_id: str) -> JSONDict:
    """Wait until the run ``event_id`` started has recorded its sleep step."""
    found: list[JSONDict] = []

    def sleeping() -> bool:
        summary = compat.current_run(event_id)
        run = compat.get_run(str(summary["run_id"])) if summary else None
        if run is None or not any(s["op"] == "Sleep" for s in run["steps"]):
            return False
        found.append(run)
        return True

    wait_until(sleeping, timeout=10.0, message="run never reached its sleep")
    return found[-1]


def _serve_cancellable(compat: Compat, timeout: datetime.timedelta | None = None) -> None:
    client = compat.client()

    @client.create_function(
        fn_id="order-flow",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/order.placed"),
        cancel=[
            inngest.Cancel(
                event="compat/order.cancelled",
                if_exp="event.data.order == async.data.order",
                timeout=timeout,
            )
        ],
    )
    def fn(ctx: inngest.ContextSync) -> str:
        ctx.step.run("reserve", lambda: "reserved")
        ctx.step.sleep("hold", LONG)
        return "shipped"

    compat.serve("fastapi", client, [fn])


def test_matching_cancel_event_cancels_only_its_run(compat: Compat) -> None:
    _serve_cancellable(compat)
    run_a = _run_sleeping(compat, compat.send("compat/order.placed", {"order": "A"}))
    run_b = _run_sleeping(compat, compat.send("compat/order.placed", {"order": "B"}))

    compat.send("compat/order.cancelled", {"order": "C"})  # matches neither run
    compat.send("compat/order.cancelled", {"order": "A"})
    cancelled = compat.wait_run_by_id(str(run_a["run_id"]), status=CANCELLED, timeout=5.0)
    assert "cancelOn" in str(cancelled["cancel_reason"])
    assert compat.get_run(str(run_b["run_id"]))["status"] == RUNNING
    compat.cancel_run(str(run_b["run_id"]))


def test_cancel_event_sent_before_the_run_started_does_not_count(compat: Compat) -> None:
    _serve_cancellable(compat)
    compat.send("compat/order.cancelled", {"order": "D"})
    run = _run_sleeping(compat, compat.send("compat/order.placed", {"order": "D"}))
    time.sleep(0.5)
    assert compat.get_run(str(run["run_id"]))["status"] == RUNNING
    compat.send("compat/order.cancelled", {"order": "D"})  # this one is after the start
    compat.wait_run_by_id(str(run["run_id"]), status=CANCELLED, timeout=5.0)


def test_cancel_listener_expires_after_its_timeout(compat: Compat) -> None:
    _serve_cancellable(compat, datetime.timedelta(seconds=2))
    run = _run_sleeping(compat, compat.send("compat/order.placed", {"order": "E"}))
    compat.advance_clock(3_000)
    compat.send("compat/order.cancelled", {"order": "E"})
    time.sleep(0.5)
    assert compat.get_run(str(run["run_id"]))["status"] == RUNNING
    compat.cancel_run(str(run["run_id"]))


def test_finish_timeout_cancels_a_run_that_runs_too_long(compat: Compat) -> None:
    client = compat.client()

    @client.create_function(
        fn_id="slowpoke",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/slow"),
        timeouts=inngest.Timeouts(finish=datetime.timedelta(seconds=5)),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("forever", LONG)
        return "never"

    compat.serve("fastapi", client, [fn])
    run = _run_sleeping(compat, compat.send("compat/slow"))
    compat.advance_clock(6_000)
    cancelled = compat.wait_run_by_id(str(run["run_id"]), status=CANCELLED, timeout=5.0)
    assert "timeouts.finish" in str(cancelled["cancel_reason"])
    wait_until(
        lambda: any(
            e["data"].get("run_id") == run["run_id"]
            for e in compat.list_events("inngest/function.cancelled")
        ),
        timeout=5.0,
        message="no inngest/function.cancelled event",
    )
