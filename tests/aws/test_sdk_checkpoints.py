"""Wayline SDK checkpoints on the AWS topology (moto): dispatch calls the app (production
mode, signed calls), the app reports each step to the api function, which saves it in
DynamoDB while the call is open.

The api function's Starlette app is served on loopback from its own runtime (its own
container: state meets only in the store), behind a counting proxy; it is the app's
``base_url``, as an API Gateway URL would be.
"""

from __future__ import annotations

from collections.abc import Iterator

import fastapi
import pytest

import wayline
import wayline.fastapi
from compat.harness import Tally, UvicornAppServer
from compat_node.counting_proxy import CountingProxy
from wayline import signing
from wayline.aws.api import create_api
from wayline.aws.eventbridge import EventBus
from wayline.engine.model import RunStatus

from .conftest import Stack, VirtualClock
from .driver import EVENT_KEY, SIGNING_KEY, Driver, make_runtime

pytestmark = pytest.mark.timeout(120)
MIN = 60_000
tally = Tally()


@pytest.fixture
def topology(stack: Stack, clock: VirtualClock) -> Iterator[tuple[Driver, CountingProxy]]:
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    api_runtime = driver.runtimes["api"]
    api = create_api(
        api_runtime.service,
        bus=api_runtime.bus,
        clock=api_runtime.clock,
        entropy=api_runtime.deps.entropy,
        signing_keys=(SIGNING_KEY,),
        event_keys=(EVENT_KEY,),
        allow_private_apps=True,
    )
    web = fastapi.FastAPI()
    web.mount("/", api)
    api_server = UvicornAppServer(web)
    proxy = CountingProxy(f"http://127.0.0.1:{api_server.port}")
    client = wayline.Wayline(app_id="wl", signing_key=SIGNING_KEY, base_url=proxy.url)

    @client.function(id="steps", trigger=wayline.TriggerEvent(event="t/steps"), retries=0)
    async def steps(ctx: wayline.Context) -> int:
        a = await ctx.step.run("a", tally.incr, "a")
        b = await ctx.step.run("b", tally.incr, "b")
        await ctx.step.sleep("nap", "1m")
        c = await ctx.step.run("c", tally.incr, "c")
        return a + b + c

    app = fastapi.FastAPI()
    wayline.fastapi.serve(app, client, [steps])
    app_server = UvicornAppServer(app)
    try:
        auth = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}
        url = f"http://127.0.0.1:{app_server.port}/api/inngest"
        status, body = driver.api("PUT", "/v1/apps/sync", {"url": url}, auth)
        assert status == 200, body
        yield driver, proxy
    finally:
        app_server.stop()
        proxy.stop()
        api_server.stop()
        client.close()


def test_the_sdk_checkpoints_through_the_api_function(
    topology: tuple[Driver, CountingProxy], clock: VirtualClock, stack: Stack
) -> None:
    driver, proxy = topology
    (result,) = EventBus(bus_name=stack.bus, client=stack.events).publish([{"name": "t/steps"}])
    assert result.ok
    driver.settle()
    clock.advance(2 * MIN)
    driver.settle()

    (run,) = driver.runtime.store.runs.list_runs(function_id="wl-steps")
    assert run.status is RunStatus.COMPLETED and run.output == 3
    assert [s.name for s in run.steps] == ["a", "b", "nap", "c"]
    checkpoints = proxy.exchanges(method="POST", path_part=f"/v1/checkpoint/{run.id}/async")
    assert [c.status for c in checkpoints] == [200] * 3  # a, b; after the sleep, c
    assert [tally.count(n) for n in "abc"] == [1, 1, 1]
