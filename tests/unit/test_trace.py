"""The one trace model (``wayline.trace``) and the waterfall laid out from it."""

from __future__ import annotations

from wayline.api.dashboard_format import duration, relative, short_time, waterfall
from wayline.engine.model import (
    Attempt,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
    Wait,
    WaitKind,
    WorkItem,
    WorkKind,
)
from wayline.trace import build_trace

T0 = 1_800_000_000_000
DAY = 86_400_000


def _run(status: RunStatus, *steps: StepRecord, **extra: object) -> Run:
    return Run(
        id="r1",
        function_id="app-fn",
        app_id="app",
        status=status,
        events=(),
        event_ids=(),
        created_at=T0,
        steps=steps,
        **extra,  # type: ignore[arg-type]
    )


def _step(
    name: str, op: str, status: StepStatus, start: int, end: int | None, **kw: object
) -> StepRecord:
    return StepRecord(
        id=name * 4,
        name=name,
        op=op,
        status=status,
        started_at=start,
        ended_at=end,
        **kw,  # type: ignore[arg-type]
    )


def test_the_tree_is_run_then_steps_with_wake_times() -> None:
    run = _run(
        RunStatus.RUNNING,
        _step("load", "StepRun", StepStatus.COMPLETED, T0 + 10, T0 + 30, attempts=2),
        _step("nap", "Sleep", StepStatus.SLEEPING, T0 + 40, None, output={"until": T0 + 3 * DAY}),
        _step("hold", "WaitForEvent", StepStatus.WAITING, T0 + 50, None),
        waiting={
            "hold" * 4: Wait(
                id="w",
                run_id="r1",
                step_id="hold" * 4,
                kind=WaitKind.EVENT,
                event="shop/paid",
                expression=None,
                expires_at=T0 + DAY,
            )
        },
        pending={
            "i": WorkItem(
                id="i", run_id="r1", kind=WorkKind.SLEEP, at=T0 + 3 * DAY, step_id="nap" * 4
            )
        },
    )
    root = build_trace(run)
    assert (root.kind, root.status, root.is_open) == ("run", "Running", True)
    load, nap, hold = root.children
    assert (load.kind, load.attempt, load.end_ms) == ("run", 2, T0 + 30)
    assert (nap.kind, nap.wake_ms, nap.is_open) == ("sleep", T0 + 3 * DAY, True)
    assert (hold.kind, hold.wake_ms, hold.waits_for) == ("wait", T0 + DAY, "shop/paid")
    assert [depth for depth, _ in root.walk()] == [0, 1, 1, 1]


def test_cancelling_a_run_cancels_its_open_steps_at_the_cancel_time() -> None:
    run = _run(
        RunStatus.CANCELLED,
        _step("done", "StepRun", StepStatus.COMPLETED, T0 + 1, T0 + 2),
        _step("nap", "Sleep", StepStatus.SLEEPING, T0 + 3, None, output={"until": T0 + DAY}),
        ended_at=T0 + 500,
    )
    done, nap = build_trace(run).children
    assert done.status == "Completed"
    assert (nap.status, nap.end_ms) == ("Cancelled", T0 + 500)


def test_a_long_sleep_gets_an_axis_break_so_short_steps_stay_visible() -> None:
    run = _run(
        RunStatus.RUNNING,
        _step("send", "StepRun", StepStatus.COMPLETED, T0 + 100, T0 + 300),
        _step("nap", "Sleep", StepStatus.SLEEPING, T0 + 400, None, output={"until": T0 + 3 * DAY}),
    )
    layout = waterfall(build_trace(run), now=T0 + 1000)
    assert layout.break_left is not None and layout.break_label == "2 d 23 h"
    _, send, nap = layout.rows
    assert send.width > 10  # 200 ms of a 1 s main span: a fifth of 82 %
    assert nap.solid is False and nap.wake_width is not None
    assert nap.wake_left is not None and nap.wake_left + nap.wake_width > 99
    assert nap.label.startswith("until ")
    assert layout.now_left is not None and layout.now_left <= 82.01


def test_a_finished_run_has_a_linear_axis_and_no_now_line() -> None:
    run = _run(
        RunStatus.COMPLETED,
        _step("a", "StepRun", StepStatus.COMPLETED, T0, T0 + 500),
        _step("b", "StepRun", StepStatus.COMPLETED, T0 + 500, T0 + 1000),
        ended_at=T0 + 1000,
    )
    layout = waterfall(build_trace(run), now=T0 + 60_000)
    _, a, b = layout.rows
    assert (round(a.left), round(a.width), round(b.left), round(b.width)) == (0, 50, 50, 50)
    assert layout.break_left is None and layout.now_left is None
    assert [t.label for t in layout.ticks][:3] == ["+0 ms", "+200 ms", "+400 ms"]


def test_durations_and_relative_times_read_naturally() -> None:
    assert [duration(ms) for ms in (812, 4200, 192_000, 7_380_000, 93_600_000)] == [
        "812 ms",
        "4.2 s",
        "3 m 12 s",
        "2 h 3 m",
        "1 d 2 h",
    ]
    assert relative(T0 - 3000, T0) == "3.0 s ago"
    assert relative(T0 + 2 * DAY, T0) == "in 2 d"
    assert relative(T0, T0 + 200) == "just now"


def test_every_attempt_is_a_child_span_and_app_call_failures_are_run_spans() -> None:
    boom = {"name": "UpstreamError", "message": "503"}
    history = (
        Attempt(
            number=1,
            started_at=T0 + 10,
            ended_at=T0 + 20,
            status=StepStatus.FAILED,
            error=boom,
            retry_at=T0 + 1000,
        ),
        Attempt(number=2, started_at=T0 + 1000, ended_at=T0 + 1010, status=StepStatus.COMPLETED),
    )
    refused = {"name": "ConnectionRefused", "message": "connection refused"}
    run = _run(
        RunStatus.COMPLETED,
        _step(
            "call",
            "StepRun",
            StepStatus.COMPLETED,
            T0 + 1000,
            T0 + 1010,
            attempts=2,
            history=history,
        ),
        ended_at=T0 + 1100,
        call_failures=(
            Attempt(
                number=1,
                started_at=T0 + 1,
                ended_at=T0 + 5,
                status=StepStatus.FAILED,
                error=refused,
                retry_at=T0 + 9,
            ),
        ),
    )
    root = build_trace(run)
    call_failure, step = root.children  # in time order
    assert (call_failure.kind, call_failure.retry_ms, call_failure.error) == (
        "call",
        T0 + 9,
        refused,
    )
    assert (step.start_ms, step.attempt) == (T0 + 10, 2)  # from the first attempt
    first, second = step.children
    assert (first.kind, first.attempt, first.status, first.retry_ms) == (
        "attempt",
        1,
        "Failed",
        T0 + 1000,
    )
    assert (second.attempt, second.status, second.error) == (2, "Completed", None)
    rows = waterfall(root, now=T0 + 2000).rows
    assert [row.depth for row in rows] == [0, 1, 1, 2, 2]
    assert rows[3].label == "10 ms · retry at " + short_time(T0 + 1000)


def test_a_failed_step_re_raised_by_the_function_is_not_a_second_failure() -> None:
    error = {"name": "CardDeclined", "message": "no", "stack": "s1"}
    run = _run(
        RunStatus.FAILED,
        _step("charge", "StepRun", StepStatus.FAILED, T0 + 1, T0 + 2, error=error),
        ended_at=T0 + 9,
        output=error,
        call_failures=(
            Attempt(
                number=1,
                started_at=T0 + 3,
                ended_at=T0 + 8,
                status=StepStatus.FAILED,
                error={**error, "stack": "s2"},
            ),
        ),
    )
    assert [span.kind for span in build_trace(run).children] == ["run"]
