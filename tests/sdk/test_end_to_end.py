"""The Wayline SDK (FastAPI app) against a real ``wayline dev`` subprocess over loopback HTTP.

One app serves every function of this module (a module-scoped server keeps the suite fast);
each test sends its own trigger event, tagged with a unique ``key``, and checks the run as
the server reports it (``GET /v1/runs/{id}``) and what the app recorded for that key.
The SDK-call counts of the parallel tests are the official Python SDK's (research note
§5.2: ``parallel_steps`` 6 calls, ``parallel_mode_default`` 7).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import fastapi
import pydantic
import pytest

import wayline
import wayline.fastapi
from compat.harness import COMPLETED, FAILED, Compat, Tally, step_named, wait_until

pytestmark = pytest.mark.timeout(60)


class SignedUp(pydantic.BaseModel):
    key: str
    email: str
    age: int


class Receipt(pydantic.BaseModel):
    to: str
    words: int


class Doubled(pydantic.BaseModel):
    double: int


NEVER = wayline.TriggerEvent(event="e2e/never")
tally = Tally()


def _key(ctx: wayline.Context | wayline.SyncContext) -> str:
    return str(ctx.event.data["key"])


def build(client: wayline.Wayline) -> list[wayline.Function[Any, Any]]:
    """Every function of the suite, made with ``client`` (which knows the server's URL)."""

    @client.function(id="two-steps", trigger=wayline.TriggerEvent(event="e2e/two-steps"), retries=0)
    async def two_steps(ctx: wayline.Context) -> dict[str, int]:
        key = _key(ctx)
        tally.incr(f"{key}:calls")
        a = await ctx.step.run("a", tally.incr, f"{key}:a")
        b = await ctx.step.run("b", tally.incr, f"{key}:b")
        return {"a": a, "b": b}

    @client.function(id="sleeper", trigger=wayline.TriggerEvent(event="e2e/sleep"), retries=0)
    async def sleeper(ctx: wayline.Context) -> dict[str, float]:
        before = await ctx.step.run("before", time.time)
        await ctx.step.sleep("nap", timedelta(seconds=1))
        after = await ctx.step.run("after", time.time)
        return {"slept": after - before}

    @client.function(id="waiter", trigger=wayline.TriggerEvent(event="e2e/wait.start"), retries=0)
    async def waiter(ctx: wayline.Context) -> dict[str, Any]:
        ev = await ctx.step.wait_for_event(
            "verified",
            event="e2e/wait.verified",
            match="data.key",
            timeout=ctx.event.data["timeout"],
        )
        return {"event": None if ev is None else {"name": ev.name, "data": ev.data}}

    @client.function(id="sender", trigger=wayline.TriggerEvent(event="e2e/send"), retries=0)
    async def sender(ctx: wayline.Context) -> list[str]:
        events = [wayline.Event(name="e2e/fanned", data={"key": _key(ctx), "n": n}) for n in (1, 2)]
        return await ctx.step.send_event("fan-out", events)

    @client.function(id="fanned", trigger=wayline.TriggerEvent(event="e2e/fanned"), retries=0)
    def fanned(ctx: wayline.SyncContext) -> int:
        return int(ctx.event.data["n"]) * 10

    @client.function(id="doubler", trigger=NEVER, retries=0)
    async def doubler(ctx: wayline.Context) -> Doubled:
        return Doubled(double=int(ctx.event.data["n"]) * 2)

    @client.function(id="parent", trigger=wayline.TriggerEvent(event="e2e/invoke"), retries=0)
    async def parent(ctx: wayline.Context) -> dict[str, Any]:
        result = await ctx.step.invoke("call-child", function=doubler, data={"n": 21}, timeout="1m")
        return {"double": result.double, "typed": isinstance(result, Doubled)}

    @client.function(id="slow-child", trigger=NEVER, retries=0)
    async def slow_child(ctx: wayline.Context) -> str:
        await ctx.step.sleep("sleep", "1s")
        return "done"

    @client.function(
        id="parallel-steps", trigger=wayline.TriggerEvent(event="e2e/parallel"), retries=0
    )
    async def parallel_steps(ctx: wayline.Context) -> list[Any]:
        key = _key(ctx)
        tally.incr(f"{key}:calls")

        async def one_a() -> int:
            tally.incr(f"{key}:1a")
            return 1

        async def one_b() -> int:
            tally.incr(f"{key}:1b")
            return 2

        outputs = await ctx.group.parallel(
            [
                lambda: ctx.step.invoke("invoke", function=slow_child),
                lambda: ctx.step.run("1a", one_a),
                lambda: ctx.step.run("1b", one_b),
                lambda: ctx.step.send_event("send", wayline.Event(name="e2e/parallel-noop")),
            ]
        )
        await ctx.step.run("after", tally.incr, f"{key}:after")
        return list(outputs)

    @client.function(id="two-groups", trigger=wayline.TriggerEvent(event="e2e/groups"), retries=0)
    async def two_groups(ctx: wayline.Context) -> None:
        key = _key(ctx)
        tally.incr(f"{key}:calls")

        async def fast(name: str) -> None:
            tally.note(f"{key}:order", name)

        async def slow(name: str) -> None:
            time.sleep(0.5)  # blocks this request only: the fast branch runs in its own request
            tally.note(f"{key}:order", name)

        async def fast_group() -> None:
            await ctx.step.run("a.1", fast, "a.1")
            await ctx.step.run("a.2", fast, "a.2")

        async def slow_group() -> None:
            await ctx.step.run("b.1", slow, "b.1")
            await ctx.step.run("b.2", slow, "b.2")

        await ctx.group.parallel([fast_group, slow_group])

    @client.function(id="non-retriable", trigger=wayline.TriggerEvent(event="e2e/nr"), retries=3)
    async def non_retriable(ctx: wayline.Context) -> None:
        key = _key(ctx)

        def give_up() -> None:
            tally.incr(f"{key}:attempts")
            raise wayline.NonRetriableError("the card was declined for good")

        await ctx.step.run("charge", give_up)

    @client.function(id="retry-after", trigger=wayline.TriggerEvent(event="e2e/ra"), retries=2)
    async def retry_after(ctx: wayline.Context) -> str:
        key = _key(ctx)

        def flaky() -> str:
            tally.note(f"{key}:times", time.monotonic())
            if tally.incr(f"{key}:attempts") == 1:
                raise wayline.RetryAfterError("rate limited", timedelta(seconds=1))
            return "ok"

        return await ctx.step.run("call-api", flaky)

    @client.function(
        id="typed",
        trigger=wayline.TriggerEvent(event="e2e/typed", model=SignedUp),
        retries=2,
    )
    async def typed(ctx: wayline.Context[SignedUp]) -> Receipt:
        def compose(user: SignedUp) -> Receipt:
            return Receipt(to=user.email, words=user.age * 2)

        receipt = await ctx.step.run("compose", compose, ctx.event.data)
        if not isinstance(receipt, Receipt):
            raise TypeError(f"the memo came back as {type(receipt).__name__}")
        return receipt

    @client.function(id="sync-fn", trigger=wayline.TriggerEvent(event="e2e/sync"), retries=0)
    def sync_fn(ctx: wayline.SyncContext) -> dict[str, Any]:
        key = _key(ctx)
        tally.incr(f"{key}:calls")
        first = ctx.step.run("first", tally.incr, f"{key}:first")
        pair = ctx.group.parallel(
            [lambda: ctx.step.run("left", lambda: "L"), lambda: ctx.step.run("right", lambda: "R")]
        )
        return {"first": first, "pair": list(pair)}

    @client.function(id="catches", trigger=wayline.TriggerEvent(event="e2e/catch"), retries=0)
    async def catches(ctx: wayline.Context) -> dict[str, str]:
        def broken() -> None:
            raise ValueError("upstream said no")

        try:
            await ctx.step.run("broken", broken)
        except wayline.StepError as err:
            return {"name": err.name, "message": err.message}
        return {"name": "", "message": "not raised"}

    return [
        two_steps,
        sleeper,
        waiter,
        sender,
        fanned,
        doubler,
        parent,
        slow_child,
        parallel_steps,
        two_groups,
        non_retriable,
        retry_after,
        typed,
        sync_fn,
        catches,
    ]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compat]:
    """One FastAPI app serving every function, and one ``wayline dev`` for the module."""
    compat = Compat(tmp_path_factory.mktemp("sdk-e2e"))
    client = wayline.Wayline(app_id="e2e", is_dev=True, base_url=compat.server_url)
    app = fastapi.FastAPI()
    handler = wayline.fastapi.serve(app, client, build(client))
    try:
        compat.serve_app(app, app_id="e2e", function_ids=handler.function_ids, retry_interval=0.2)
        yield compat
    finally:
        compat.close()
        client.close()


def _send(dev: Compat, name: str, **data: Any) -> tuple[str, str]:
    key = uuid.uuid4().hex
    return key, dev.send(name, {"key": key, **data})


def test_two_steps_are_memoized(dev: Compat) -> None:
    key, event_id = _send(dev, "e2e/two-steps")
    run = dev.wait_run(event_id, "two-steps", status=COMPLETED)
    assert run["output"] == {"a": 1, "b": 1}
    assert tally.count(f"{key}:a") == tally.count(f"{key}:b") == 1
    assert tally.count(f"{key}:calls") == 1  # checkpointed: a, b and the return in one call
    assert step_named(run, "a")["output"] == 1


def test_sleep(dev: Compat) -> None:
    _, event_id = _send(dev, "e2e/sleep")
    run = dev.wait_run(event_id, "sleeper", status=COMPLETED)
    assert run["output"]["slept"] >= 0.9
    assert step_named(run, "nap")["op"] == "Sleep"


def _wait_for_step(dev: Compat, event_id: str, fn_id: str, step: str) -> None:
    def reached() -> bool:
        run = dev.current_run(event_id, fn_id)
        return run is not None and any(s.get("name") == step for s in run.get("steps") or [])

    wait_until(reached, message=f"step {step!r} never reported")


def test_wait_for_event_fulfilled(dev: Compat) -> None:
    key, event_id = _send(dev, "e2e/wait.start", timeout="30s")
    _wait_for_step(dev, event_id, "waiter", "verified")
    dev.send("e2e/wait.verified", {"key": "someone-else"})
    dev.send("e2e/wait.verified", {"key": key, "ok": True})
    run = dev.wait_run(event_id, "waiter", status=COMPLETED)
    assert run["output"] == {
        "event": {"name": "e2e/wait.verified", "data": {"key": key, "ok": True}}
    }


def test_wait_for_event_times_out(dev: Compat) -> None:
    _, event_id = _send(dev, "e2e/wait.start", timeout="1s")
    run = dev.wait_run(event_id, "waiter", status=COMPLETED)
    assert run["output"] == {"event": None}


def test_send_event_starts_runs(dev: Compat) -> None:
    _, event_id = _send(dev, "e2e/send")
    run = dev.wait_run(event_id, "sender", status=COMPLETED)
    ids = run["output"]
    assert isinstance(ids, list) and len(ids) == 2
    outputs = sorted(dev.wait_run(i, "fanned", status=COMPLETED)["output"] for i in ids)
    assert outputs == [10, 20]


def test_invoke_returns_the_typed_child_result(dev: Compat) -> None:
    _, event_id = _send(dev, "e2e/invoke")
    run = dev.wait_run(event_id, "parent", status=COMPLETED)
    assert run["output"] == {"double": 42, "typed": True}


def test_parallel_steps_call_count_matches_the_official_sdk(dev: Compat) -> None:
    key, event_id = _send(dev, "e2e/parallel")
    run = dev.wait_run(event_id, "parallel-steps", status=COMPLETED)
    output = run["output"]
    assert output[:3] == ["done", 1, 2]
    assert isinstance(output[3], list) and len(output[3]) == 1
    assert tally.count(f"{key}:1a") == tally.count(f"{key}:1b") == tally.count(f"{key}:after") == 1
    # As the official SDK (6) less one: "after" is checkpointed, the return in its call.
    assert tally.count(f"{key}:calls") == 5


def test_parallel_wait_mode_order_and_call_count(dev: Compat) -> None:
    key, event_id = _send(dev, "e2e/groups")
    dev.wait_run(event_id, "two-groups", status=COMPLETED)
    assert tally.notes(f"{key}:order") == ["a.1", "b.1", "a.2", "b.2"]
    assert tally.count(f"{key}:calls") == 7  # 2 plans, 4 steps, 1 discovery after them


def test_non_retriable_error_fails_at_once(dev: Compat) -> None:
    key, event_id = _send(dev, "e2e/nr")
    run = dev.wait_run(event_id, "non-retriable", status=FAILED)
    assert run["output"]["code"] == "non_retriable_error"
    assert run["output"]["message"] == "the card was declined for good"
    assert tally.count(f"{key}:attempts") == 1


def test_retry_after_error_delays_the_retry(dev: Compat) -> None:
    key, event_id = _send(dev, "e2e/ra")
    run = dev.wait_run(event_id, "retry-after", status=COMPLETED)
    assert run["output"] == "ok"
    first, second = tally.notes(f"{key}:times")
    # The server's retry interval is 0.2 s here: only retry-after explains a 1 s gap.
    assert second - first >= 0.9


def test_pydantic_event_and_step_output(dev: Compat) -> None:
    _, event_id = _send(dev, "e2e/typed", email="ada@example.com", age=21)
    run = dev.wait_run(event_id, "typed", status=COMPLETED)
    assert run["output"] == {"to": "ada@example.com", "words": 42}
    assert step_named(run, "compose")["output"] == {"to": "ada@example.com", "words": 42}


def test_an_event_that_does_not_match_its_model_fails_without_retries(dev: Compat) -> None:
    _, event_id = _send(dev, "e2e/typed", email="ada@example.com", age="old")
    run = dev.wait_run(event_id, "typed", status=FAILED)
    assert run["output"]["code"] == "non_retriable_error"
    assert "SignedUp" in run["output"]["message"] and "age" in run["output"]["message"]


def test_sync_function(dev: Compat) -> None:
    key, event_id = _send(dev, "e2e/sync")
    run = dev.wait_run(event_id, "sync-fn", status=COMPLETED)
    assert run["output"] == {"first": 1, "pair": ["L", "R"]}
    assert tally.count(f"{key}:first") == 1
    assert tally.count(f"{key}:calls") == 4  # first + plan pair (checkpointed), left, right, return


def test_step_error_can_be_caught(dev: Compat) -> None:
    _, event_id = _send(dev, "e2e/catch")
    run = dev.wait_run(event_id, "catches", status=COMPLETED)
    assert run["output"] == {"name": "ValueError", "message": "upstream said no"}
