"""Checkpointing end to end: the Wayline SDK (FastAPI app) against a real ``wayline dev``.

``wayline dev`` offers checkpointing (``ctx.fn_id`` / ``ctx.qi_id``); the SDK then runs
consecutive ``step.run``s in one call and reports each to ``/v1/checkpoint/{run}/async``
before the next starts. Two recording proxies sit on the wire: server -> app (SDK calls and
the bytes the server sends) and app -> server (checkpoints; it can refuse them as a
struggling server would). Each test counts, per run, calls, checkpoints and step bodies.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import fastapi
import pytest

import wayline
import wayline.fastapi
from compat.harness import CANCELLED, COMPLETED, Compat, Tally, wait_until

from .fault_proxy import FaultProxy

pytestmark = pytest.mark.timeout(120)

tally = Tally()
PAD = "x" * 100
"""Each step's output carries 100 bytes: in classic mode call k would resend k of them."""


def _key(ctx: wayline.Context | wayline.SyncContext) -> str:
    return str(ctx.event.data["key"])


def _body(key: str, name: str) -> dict[str, str]:
    tally.incr(f"{key}:{name}")
    return {"name": name, "pad": PAD}


def build(client: wayline.Wayline) -> list[wayline.Function[Any, Any]]:
    @client.function(
        id="many",
        trigger=wayline.TriggerEvent(event="ckpt/many"),
        retries=0,
        # 200 steps on a loaded machine may outlast the default 10 s; this test is not
        # about max_runtime (tests/unit/sdk/test_sdk_checkpoint.py is).
        checkpointing=wayline.Checkpointing(max_runtime=timedelta(minutes=2)),
    )
    async def many(ctx: wayline.Context) -> int:
        key, n = _key(ctx), int(ctx.event.data["n"])
        done = [await ctx.step.run(f"s{i}", _body, key, f"s{i}") for i in range(n)]
        return len(done)

    @client.function(id="sleepy", trigger=wayline.TriggerEvent(event="ckpt/sleepy"))
    def sleepy(ctx: wayline.SyncContext) -> str:
        key = _key(ctx)
        a = ctx.step.run("a", _body, key, "a")
        ctx.step.sleep("nap", "1s")
        b = ctx.step.run("b", _body, key, "b")
        c = ctx.step.run("c", _body, key, "c")
        return a["name"] + b["name"] + c["name"]

    @client.function(id="fan", trigger=wayline.TriggerEvent(event="ckpt/fan"))
    async def fan(ctx: wayline.Context) -> list[str]:
        key = _key(ctx)
        a = await ctx.step.run("a", _body, key, "a")
        p = await ctx.group.parallel(
            [
                lambda: ctx.step.run("p1", _body, key, "p1"),
                lambda: ctx.step.run("p2", _body, key, "p2"),
            ]
        )
        t1 = await ctx.step.run("t1", _body, key, "t1")
        t2 = await ctx.step.run("t2", _body, key, "t2")
        return [a["name"], *(x["name"] for x in p), t1["name"], t2["name"]]

    def flaky(key: str) -> str:
        if tally.incr(f"{key}:c") == 1:
            raise RuntimeError("first try fails")
        return "c"

    @client.function(id="flaky", trigger=wayline.TriggerEvent(event="ckpt/flaky"), retries=2)
    def retried(ctx: wayline.SyncContext) -> str:
        key = _key(ctx)
        a = ctx.step.run("a", _body, key, "a")
        b = ctx.step.run("b", _body, key, "b")
        c = ctx.step.run("c", flaky, key)
        d = ctx.step.run("d", _body, key, "d")
        return a["name"] + b["name"] + c + d["name"]

    def held(key: str) -> str:
        tally.incr(f"{key}:b")
        wait_until(lambda: tally.count(f"{key}:cancelled") > 0, timeout=30)
        return "b"

    @client.function(id="held", trigger=wayline.TriggerEvent(event="ckpt/held"))
    async def cancelled(ctx: wayline.Context) -> str:
        key = _key(ctx)
        await ctx.step.run("a", _body, key, "a")
        await ctx.step.run("b", held, key)  # the run is cancelled while this body runs
        await ctx.step.run("c", _body, key, "c")
        return "not reached"

    return [many, sleepy, fan, retried, cancelled]


@dataclass
class Dev:
    compat: Compat
    calls: FaultProxy
    """server -> app"""
    api: FaultProxy
    """app -> server (checkpoints)"""

    def run(self, name: str, **data: Any) -> tuple[str, dict[str, Any]]:
        key = uuid.uuid4().hex
        event_id = self.compat.send(name, {"key": key, **data})
        return key, self.compat.wait_run(event_id, status=COMPLETED)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    compat = Compat(tmp_path_factory.mktemp("sdk-ckpt"))
    api = FaultProxy(compat.server_url)
    client = wayline.Wayline(app_id="ckpt", is_dev=True, base_url=api.url)
    app = fastapi.FastAPI()
    handler = wayline.fastapi.serve(app, client, build(client))
    proxies: list[FaultProxy] = []

    def front(port: int) -> FaultProxy:
        proxies.append(FaultProxy(f"http://127.0.0.1:{port}"))
        return proxies[0]

    try:
        compat.serve_app(
            app, app_id="ckpt", function_ids=handler.function_ids, retry_interval=0.2, front=front
        )
        yield Dev(compat, proxies[0], api)
    finally:
        compat.close()
        api.stop()
        client.close()


def _step_names(run: dict[str, Any]) -> list[str]:
    return [str(s["name"]) for s in run["steps"]]


def _checkpointed(dev: Dev, run_id: str) -> list[str]:
    return [name for c in dev.api.checkpoints(run_id) if c.status == 200 for name in c.steps]


def test_ten_steps_take_one_call_and_ten_checkpoints(dev: Dev) -> None:
    key, run = dev.run("ckpt/many", n=10)
    names = [f"s{i}" for i in range(10)]
    assert run["output"] == 10
    assert _step_names(run) == names
    assert len(dev.calls.calls(run["run_id"])) == 1
    assert _checkpointed(dev, run["run_id"]) == names
    assert [tally.count(f"{key}:{n}") for n in names] == [1] * 10


def test_bytes_the_server_sends_grow_linearly_with_steps(dev: Dev) -> None:
    _, short = dev.run("ckpt/many", n=10)
    _, long = dev.run("ckpt/many", n=200)
    sent_short = sum(c.request_bytes for c in dev.calls.calls(short["run_id"]))
    sent_long = sum(c.request_bytes for c in dev.calls.calls(long["run_id"]))
    assert long["output"] == 200 and len(_checkpointed(dev, long["run_id"])) == 200
    assert len(dev.calls.calls(long["run_id"])) == 1
    # Linear would be 20x; classic mode resends every memo each call (~370x here).
    assert sent_long < 2 * 20 * sent_short


def test_a_sleep_ends_the_call_and_the_wake_up_checkpoints_again(dev: Dev) -> None:
    key, run = dev.run("ckpt/sleepy")
    assert run["output"] == "abc"
    assert _step_names(run) == ["a", "nap", "b", "c"]
    assert len(dev.calls.calls(run["run_id"])) == 2
    assert _checkpointed(dev, run["run_id"]) == ["a", "b", "c"]
    assert [tally.count(f"{key}:{n}") for n in "abc"] == [1, 1, 1]


def test_a_parallel_group_then_trailing_steps(dev: Dev) -> None:
    key, run = dev.run("ckpt/fan")
    assert run["output"] == ["a", "p1", "p2", "t1", "t2"]
    assert sorted(_step_names(run)) == ["a", "p1", "p2", "t1", "t2"]
    # a is checkpointed; the group's steps run one targeted call each (classic); the
    # trailing steps checkpoint again in the call after the group.
    assert _checkpointed(dev, run["run_id"]) == ["a", "t1", "t2"]
    assert [tally.count(f"{key}:{n}") for n in ("a", "p1", "p2", "t1", "t2")] == [1] * 5


def test_a_retried_step_after_checkpoints(dev: Dev) -> None:
    key, run = dev.run("ckpt/flaky")
    assert run["output"] == "abcd"
    assert _step_names(run) == ["a", "b", "c", "d"]
    # The retry (attempt 1) runs c and answers classically; the next call checkpoints d.
    assert _checkpointed(dev, run["run_id"]) == ["a", "b", "d"]
    assert [tally.count(f"{key}:{n}") for n in "abcd"] == [1, 1, 2, 1]


def test_a_failing_checkpoint_endpoint_falls_back_to_classic_answers(dev: Dev) -> None:
    dev.api.refuse_checkpoints["*"] = 503
    try:
        key, run = dev.run("ckpt/many", n=2)
    finally:
        dev.api.refuse_checkpoints.clear()
    assert run["output"] == 2
    assert _step_names(run) == ["s0", "s1"]  # each memo once
    checkpoints = dev.api.checkpoints(run["run_id"])
    assert [c.status for c in checkpoints] == [503] * 10  # 5 tries per step, then the 206
    assert len(dev.calls.calls(run["run_id"])) == 3  # s0, s1, then the return: classic
    assert [tally.count(f"{key}:s{i}") for i in range(2)] == [1, 1]


def test_a_run_cancelled_mid_call_stops_at_the_next_checkpoint(dev: Dev) -> None:
    key = uuid.uuid4().hex
    event_id = dev.compat.send("ckpt/held", {"key": key})
    wait_until(lambda: tally.count(f"{key}:b") == 1, timeout=30, message="b never started")
    run = dev.compat.wait_run(event_id, status="Running")
    dev.compat.cancel_run(run["run_id"])
    tally.incr(f"{key}:cancelled")  # b returns now; its checkpoint gets 409
    wait_until(
        lambda: [c.status for c in dev.api.checkpoints(run["run_id"])] == [200, 409],
        timeout=30,
        message=lambda: f"checkpoints: {dev.api.checkpoints(run['run_id'])}",
    )
    final = dev.compat.wait_run_by_id(run["run_id"], status=CANCELLED)
    assert _step_names(final) == ["a"]
    wait_until(lambda: len(dev.calls.calls(run["run_id"])) == 1, timeout=30)
    (call,) = dev.calls.calls(run["run_id"])
    assert call.status == 400  # halted: the SDK answered 400 + x-inngest-no-retry
    assert tally.count(f"{key}:c") == 0  # nothing ran after the refused step
