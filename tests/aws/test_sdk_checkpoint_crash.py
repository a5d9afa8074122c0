"""Wayline SDK checkpoints on the AWS topology (moto) through the api function's HANDLER,
one runtime per handler, and an app that dies mid-call.

Dispatch calls the app once; the app runs the steps in that one call and reports each to
the api function (``POST /v1/checkpoint/{run}/async`` through a Function URL on
loopback: one handler invocation per checkpoint), which saves it in DynamoDB before it
answers. A step body is executed again only if its checkpoint was never acknowledged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import fastapi
import pytest

import wayline
import wayline.fastapi
from compat.harness import UvicornAppServer
from wayline import signing
from wayline.engine.model import Run, RunStatus

from .conftest import Stack, VirtualClock
from .driver import EVENT_KEY, SIGNING_KEY, Driver, make_runtime
from .function_url_server import FunctionUrl

pytestmark = pytest.mark.timeout(300)

STEPS = 5
FUNCTION = "ckpt-seq"


class AppDied(BaseException):
    """Not an ``Exception``: nothing in the SDK answers for it, the call just fails (a
    500), as when the app's process dies in the middle of the call."""


@dataclass
class Topology:
    driver: Driver
    api: FunctionUrl
    calls: Counter[str]
    """Calls dispatch made to the app (POSTs)."""
    bodies: Counter[str]
    """Step bodies executed, by "<run key>:<step index>"."""
    crash_at: dict[str, int]
    """Run key -> the step whose body kills the call (once)."""

    def run(self, key: str) -> Run:
        status, body = self.driver.api(
            "POST", f"/e/{EVENT_KEY}", {"name": "ckpt/seq", "data": {"key": key}}
        )
        assert status == 200, body
        run = None
        for _ in range(6):
            self.driver.settle()
            (run,) = [
                r
                for r in self.driver.runtime.store.runs.list_runs(function_id=FUNCTION)
                if r.events[0]["data"]["key"] == key
            ]
            if run.status.is_terminal:
                return run
            self.driver.clock.advance(2 * 60_000)  # past the retry's backoff
        raise AssertionError(f"run {run} did not finish")


def _app(topology_state: tuple[Counter[str], dict[str, int]], api_url: str) -> fastapi.FastAPI:
    bodies, crash_at = topology_state
    client = wayline.Wayline(app_id="ckpt", signing_key=SIGNING_KEY, base_url=api_url, is_dev=False)

    @client.function(
        id="seq",
        trigger=wayline.TriggerEvent(event="ckpt/seq"),
        retries=2,
        checkpointing=wayline.Checkpointing(max_runtime=timedelta(minutes=2)),
    )
    def seq(ctx: wayline.SyncContext) -> list[int]:
        key = str(ctx.event.data["key"])

        def body(i: int) -> dict[str, Any]:
            bodies[f"{key}:{i}"] += 1
            if crash_at.get(key) == i:
                del crash_at[key]
                raise AppDied
            return {"i": i, "pad": "x" * 100}

        return [int(ctx.step.run(f"s{i}", body, i)["i"]) for i in range(STEPS)]

    web = fastapi.FastAPI()
    wayline.fastapi.serve(web, client, [seq])
    return web


class _Counted:
    def __init__(self, app: Any, calls: Counter[str]) -> None:
        self._app, self._calls = app, calls

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self._calls["app"] += 1
        await self._app(scope, receive, send)


@pytest.fixture
def topology(stack: Stack, clock: VirtualClock) -> Iterator[Topology]:
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    api = FunctionUrl(lambda event, context: driver.api_handler(event, context))
    api_server = UvicornAppServer(api)  # type: ignore[arg-type]
    bodies: Counter[str] = Counter()
    crash_at: dict[str, int] = {}
    calls: Counter[str] = Counter()
    web = _app((bodies, crash_at), f"http://127.0.0.1:{api_server.port}")
    app_server = UvicornAppServer(_Counted(web, calls))  # type: ignore[arg-type]
    try:
        status, body = driver.api(
            "PUT",
            "/v1/apps/sync",
            {"url": f"http://127.0.0.1:{app_server.port}/api/inngest"},
            {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
        )
        assert status == 200, body
        yield Topology(driver, api, calls, bodies, crash_at)
    finally:
        app_server.stop()
        api_server.stop()


def test_a_run_is_one_call_and_a_checkpoint_per_step(topology: Topology) -> None:
    run = topology.run("plain")
    assert run.status is RunStatus.COMPLETED
    assert run.output == list(range(STEPS))
    assert topology.calls["app"] == 1
    assert topology.api.calls == STEPS  # each step saved by the api function mid-call
    assert all(topology.bodies[f"plain:{i}"] == 1 for i in range(STEPS))
    assert [s.name for s in run.steps] == [f"s{i}" for i in range(STEPS)]


@pytest.mark.parametrize("acknowledged", [1, 3])
def test_an_app_dying_after_k_checkpoints_reruns_no_acknowledged_step(
    topology: Topology, acknowledged: int
) -> None:
    key = f"dies-after-{acknowledged}"
    topology.crash_at[key] = acknowledged  # step k runs after k acknowledged checkpoints
    run = topology.run(key)
    assert run.status is RunStatus.COMPLETED
    assert run.output == list(range(STEPS))
    executed = [topology.bodies[f"{key}:{i}"] for i in range(STEPS)]
    # Acknowledged steps never again; the one that was running when the app died, twice.
    assert executed == [1] * acknowledged + [2] + [1] * (STEPS - acknowledged - 1)
    # The dead call; its retry (attempt 1 runs one step and answers classically: the
    # SDK checkpoints only at attempt 0); then one call that checkpoints the rest.
    assert topology.calls["app"] == 3
    assert list(run.stack) == list(run.memos) and len(run.memos) == STEPS
