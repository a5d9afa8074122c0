"""``wayline.testing``: functions run in-process with mocked steps and virtual time; and the
step semantics it exercises (retries, StepError, nested steps, logging once per attempt)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wayline
import wayline.testing

client = wayline.Wayline(app_id="t", is_dev=True, environ={})
SIGNED_UP = wayline.TriggerEvent(event="user/signed-up")


def send_email(email: str, *, subject: str) -> dict[str, str]:
    raise AssertionError("the real email sender must not run in tests")


def fa() -> int:
    return 1


def fb() -> str:
    return "b"


@client.function(id="child", trigger=wayline.TriggerEvent(event="never"))
async def child(ctx: wayline.Context) -> dict[str, Any]:
    await ctx.step.sleep("nap", "1h")
    return {"got": ctx.event.data}


@client.function(id="send-welcome-email", trigger=SIGNED_UP, retries=3)
async def send_welcome(ctx: wayline.Context) -> dict[str, Any]:
    sent = await ctx.step.run("send", send_email, ctx.event.data["email"], subject="Hi")
    await ctx.step.sleep("wait-48h", "48h")
    ev = await ctx.step.wait_for_event(
        "verified", event="user/verified", match="data.userId", timeout="24h"
    )
    await ctx.step.send_event("fan-out", [wayline.Event(name="user/process", data={"n": 1})])
    got = await ctx.step.invoke("child", function=child, data={"q": 1}, timeout="1h")
    a, b = await ctx.group.parallel([lambda: ctx.step.run("a", fa), lambda: ctx.step.run("b", fb)])
    return {"sent": sent, "verified": ev is not None, "child": got, "a": a, "b": b}


EVENT = wayline.Event(name="user/signed-up", data={"email": "ada@example.com", "userId": 1})


def test_the_issue_example_end_to_end_in_process() -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_send(email: str, *, subject: str) -> dict[str, str]:
        calls.append((email, subject))
        return {"id": "msg-1"}

    started = time.monotonic()
    result = wayline.testing.run(
        send_welcome,
        EVENT,
        mocks={"send": fake_send},
        events={"verified": wayline.Event(name="user/verified", data={"userId": 1})},
    )
    assert time.monotonic() - started < 5  # 2 days of sleeps pass in virtual time
    assert result.status == "completed", result.error
    assert result.output == {
        "sent": {"id": "msg-1"},
        "verified": True,
        "child": {"got": {"q": 1}},
        "a": 1,
        "b": "b",
    }
    assert result.steps == ["send", "wait-48h", "verified", "fan-out", "child", "a", "b"]
    assert calls == [("ada@example.com", "Hi")]  # the mock ran once, with the step's arguments
    send_call = result.step_calls[0]
    assert (send_call.step_id, send_call.args, send_call.kwargs, send_call.mocked) == (
        "send",
        ("ada@example.com",),
        {"subject": "Hi"},
        True,
    )
    assert [(e.name, e.data) for e in result.sent_events] == [("user/process", {"n": 1})]
    assert result.elapsed == timedelta(hours=49)  # 48 h sleep + the child's 1 h nap
    assert result.requests == 9  # as the server would call the app


def test_a_wait_without_an_injected_event_times_out() -> None:
    result = wayline.testing.run(send_welcome, EVENT, mocks={"send": lambda e, subject: {}})
    assert result.output["verified"] is False
    assert result.elapsed == timedelta(hours=48 + 24 + 1)


def test_virtual_time_is_the_clock_sleeps_see() -> None:
    @client.function(id="until", trigger=SIGNED_UP)
    def until(ctx: wayline.SyncContext) -> str:
        ctx.step.sleep_until("launch", datetime(2030, 1, 2, tzinfo=UTC))
        return "launched"

    start = datetime(2030, 1, 1, tzinfo=UTC)
    result = wayline.testing.run(until, EVENT, now=start)
    assert result.elapsed == timedelta(days=1)


def test_step_retries_then_success() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    @client.function(id="flaky", trigger=SIGNED_UP, retries=2)
    def fn(ctx: wayline.SyncContext) -> str:
        return ctx.step.run("call", flaky)

    result = wayline.testing.run(fn, EVENT)
    assert result.status == "completed" and result.output == "ok"
    assert len(attempts) == 3
    assert [c.step_id for c in result.step_calls] == ["call"] * 3


def test_exhausted_retries_raise_step_error_in_user_code(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise KeyError("missing")

    @client.function(id="broken", trigger=SIGNED_UP, retries=1)
    async def fn(ctx: wayline.Context) -> None:
        await ctx.step.run("broken", broken)

    with caplog.at_level(logging.ERROR, logger="wayline"):
        result = wayline.testing.run(fn, EVENT)
    assert result.status == "failed" and result.error is not None
    assert result.error["code"] == "step_errored"
    assert result.error["name"] == "KeyError"
    assert "missing" in result.error["message"]
    step_logs = [r for r in caplog.records if r.getMessage().startswith('step "broken"')]
    # logged once per attempt, with the user's stack
    assert [r.getMessage().split(";")[0] for r in step_logs] == [
        'step "broken" of function "t-broken" failed on attempt 1 of 2',
        'step "broken" of function "t-broken" failed on attempt 2 of 2',
    ]
    assert all(r.exc_info and r.exc_info[0] is KeyError for r in step_logs)


def test_non_retriable_error_fails_at_once_whatever_user_code_catches() -> None:
    def declined() -> None:
        raise wayline.NonRetriableError("card declined")

    @client.function(id="declined", trigger=SIGNED_UP, retries=5)
    async def fn(ctx: wayline.Context) -> str:
        try:
            await ctx.step.run("charge", declined)
        except Exception:
            return "swallowed"
        return "unreachable"

    result = wayline.testing.run(fn, EVENT)
    assert result.status == "failed" and result.error is not None
    assert result.error["code"] == "non_retriable_error"
    assert result.requests == 1


def test_nested_steps_fail_the_run_without_retries() -> None:
    @client.function(id="nested", trigger=SIGNED_UP, retries=5)
    def fn(ctx: wayline.SyncContext) -> None:
        ctx.step.run("outer", lambda: ctx.step.run("inner", fa))

    result = wayline.testing.run(fn, EVENT)
    assert result.status == "failed" and result.error is not None
    assert result.error["code"] == "step_errored"
    assert result.error["message"] == "Nested steps are not supported."
    assert result.requests == 2


def test_control_flow_is_not_an_exception() -> None:
    seen: list[str] = []

    @client.function(id="greedy", trigger=SIGNED_UP)
    async def fn(ctx: wayline.Context) -> int:
        try:
            await ctx.step.run("a", fa)
            await ctx.step.run("b", fa)
        except Exception as exc:
            seen.append(type(exc).__name__)
        return 2

    result = wayline.testing.run(fn, EVENT)
    assert result.status == "completed" and result.steps == ["a", "b"]
    assert seen == []


def test_ctx_logger_logs_once_per_real_execution(caplog: pytest.LogCaptureFixture) -> None:
    @client.function(id="logs", trigger=SIGNED_UP)
    async def fn(ctx: wayline.Context) -> None:
        ctx.logger.info("starting")
        await ctx.step.run("a", fa)
        ctx.logger.info("between")
        await ctx.step.run("b", fa)
        ctx.logger.info("done")

    with caplog.at_level(logging.INFO, logger="wayline"):
        result = wayline.testing.run(fn, EVENT)
    assert result.requests == 3
    assert [r.getMessage() for r in caplog.records] == ["starting", "between", "done"]


def test_parallel_wait_mode_makes_the_official_number_of_requests() -> None:
    order: list[str] = []

    @client.function(id="groups", trigger=SIGNED_UP)
    def fn(ctx: wayline.SyncContext) -> None:
        def group(prefix: str) -> None:
            ctx.step.run(f"{prefix}.1", order.append, f"{prefix}.1")
            ctx.step.run(f"{prefix}.2", order.append, f"{prefix}.2")

        ctx.group.parallel([lambda: group("a"), lambda: group("b")])

    result = wayline.testing.run(fn, EVENT)
    assert result.status == "completed"
    assert result.requests == 7  # parallel_mode_default in the official SDK's suite
    assert order == ["a.1", "b.1", "a.2", "b.2"]


def test_invoke_by_id_needs_the_target_or_a_mock() -> None:
    @client.function(id="by-id", trigger=SIGNED_UP)
    async def fn(ctx: wayline.Context) -> Any:
        return await ctx.step.invoke_by_id("call", function_id="other-app-fn", data={"x": 1})

    with pytest.raises(LookupError, match="other-app-fn"):
        wayline.testing.run(fn, EVENT)
    mocked = wayline.testing.run(fn, EVENT, mocks={"call": lambda data: {"echo": data}})
    assert mocked.output == {"echo": {"x": 1}}
    assert mocked.step_calls[0].args == ({"x": 1},)


def test_a_failed_child_raises_step_error_in_the_parent() -> None:
    @client.function(id="failing-child", trigger=wayline.TriggerEvent(event="never"))
    def failing_child(ctx: wayline.SyncContext) -> None:
        raise wayline.NonRetriableError("child gave up")

    @client.function(id="parent", trigger=SIGNED_UP)
    def parent(ctx: wayline.SyncContext) -> str:
        try:
            ctx.step.invoke("child", function=failing_child)
        except wayline.StepError as err:
            return err.message
        return "no error"

    assert wayline.testing.run(parent, EVENT).output == "child gave up"


# ------------------------------------------------------------------ property, full stack


def _program(draw: st.DrawFn) -> list[Any]:
    items: list[Any] = []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            items.append(("step", draw(st.sampled_from("abc"))))
        else:
            # Branches of one group never share a step id (see test_sdk_planner.make_group).
            names = st.lists(st.sampled_from("xy"), min_size=1, max_size=2)
            branches = [[f"{b}{n}" for n in draw(names)] for b in range(draw(st.integers(1, 3)))]
            items.append(("group", branches, draw(st.booleans())))
    return items


@settings(max_examples=60, deadline=None)
@given(st.composite(_program)(), st.booleans())
def test_random_programs_run_each_step_body_once(program: list[Any], is_async: bool) -> None:
    executed: list[str] = []

    def body(name: str) -> str:
        executed.append(name)
        return name

    def expected() -> list[Any]:
        out: list[Any] = []
        for item in program:
            out.append(item[1] if item[0] == "step" else [b[-1] for b in item[1]])
        return out

    if is_async:

        @client.function(id="prog", trigger=SIGNED_UP)
        async def prog(ctx: wayline.Context) -> list[Any]:
            out: list[Any] = []

            def branch(names: list[str]) -> Any:
                async def run() -> str:
                    last = ""
                    for n in names:
                        last = await ctx.step.run(n, body, n)
                    return last

                return run

            for item in program:
                if item[0] == "step":
                    out.append(await ctx.step.run(item[1], body, item[1]))
                else:
                    mode: Literal["wait", "race"] = "race" if item[2] else "wait"
                    outputs = await ctx.group.parallel([branch(b) for b in item[1]], mode=mode)
                    out.append(list(outputs))
            return out

        fn: wayline.Function[Any, Any] = prog
    else:

        @client.function(id="prog", trigger=SIGNED_UP)
        def prog_sync(ctx: wayline.SyncContext) -> list[Any]:
            out: list[Any] = []

            def branch(names: list[str]) -> Any:
                return lambda: [ctx.step.run(n, body, n) for n in names][-1]

            for item in program:
                if item[0] == "step":
                    out.append(ctx.step.run(item[1], body, item[1]))
                else:
                    mode: Literal["wait", "race"] = "race" if item[2] else "wait"
                    out.append(list(ctx.group.parallel([branch(b) for b in item[1]], mode=mode)))
            return out

        fn = prog_sync

    result = wayline.testing.run(fn, EVENT)
    assert result.status == "completed", result.error
    assert result.output == expected()
    total = sum(1 if i[0] == "step" else sum(len(b) for b in i[1]) for i in program)
    assert len(executed) == total


def test_group_parallel_needs_callables_not_awaited_steps() -> None:
    @client.function(id="eager", trigger=SIGNED_UP, retries=0)
    async def fn(ctx: wayline.Context) -> None:
        await ctx.group.parallel([ctx.step.run("a", fa)])  # type: ignore[arg-type]

    result = wayline.testing.run(fn, EVENT)
    assert result.status == "failed" and result.error is not None
    assert "group.parallel takes callables" in result.error["message"]
    assert "coroutine" in result.error["message"]


@client.function(id="approval", trigger=wayline.TriggerEvent(event="order/placed"))
async def approval(ctx: wayline.Context) -> Any:
    return await ctx.step.wait_for_signal("approve", signal="approve-1", timeout="2h")


def test_wait_for_signal_gets_the_signal_or_times_out_in_virtual_time() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    got = wayline.testing.run(approval, signals={"approve": {"by": "ann"}}, now=start)
    assert got.output == {"signal": "approve-1", "data": {"by": "ann"}}
    timed_out = wayline.testing.run(approval, now=start)
    assert timed_out.status == "completed" and timed_out.output is None
    assert timed_out.elapsed == timedelta(hours=2)
