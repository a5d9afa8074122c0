"""npm ``inngest`` v4 checkpoints on the AWS topology (moto): dispatch calls the app, the
app reports each step to the api function, which saves it in DynamoDB mid-call.

The Node app of tests/compat_node (cloud mode, signing key) is synced through
``PUT /v1/apps/sync``; its ``INNGEST_BASE_URL`` is the api function's Starlette app served
on loopback from its own runtime (its own container: state meets only in the store).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fastapi
import pytest

from compat.harness import UvicornAppServer
from compat_node.counting_proxy import CountingProxy
from compat_node.node_harness import APP_DIR, NodeApp, ensure_node_modules
from wayline import signing
from wayline.aws.api import create_api
from wayline.engine.model import RunStatus

from .conftest import Stack, VirtualClock
from .driver import EVENT_KEY, SIGNING_KEY, Driver, make_runtime

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def node_on_aws(
    stack: Stack, clock: VirtualClock, tmp_path: Path
) -> Iterator[tuple[Driver, CountingProxy, NodeApp]]:
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
    app = NodeApp(
        app_dir=ensure_node_modules(APP_DIR),
        log_path=tmp_path / "node-app.log",
        inngest_base_url=proxy.url,
        extra_env={"NODE_COMPAT_CLOUD": "1", "INNGEST_SIGNING_KEY": SIGNING_KEY},
    )
    try:
        app.start()
        status, body = driver.api(
            "PUT",
            "/v1/apps/sync",
            {"url": app.serve_url},
            {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
        )
        assert status == 200, body
        yield driver, proxy, app
    finally:
        app.stop()
        proxy.stop()
        api_server.stop()


def test_sequential_steps_checkpoint_through_the_api_function(
    node_on_aws: tuple[Driver, CountingProxy, NodeApp],
) -> None:
    driver, proxy, app = node_on_aws
    status, body = driver.api("POST", f"/e/{EVENT_KEY}", {"name": "node/many", "data": {"n": 5}})
    assert status == 200, body
    driver.settle()

    (run,) = driver.runtime.store.runs.list_runs(function_id="node-compat-many-steps")
    assert run.status is RunStatus.COMPLETED
    assert run.output == {"n": 5, "total": 10}
    assert len(run.memos) == 5
    checkpoints = proxy.exchanges(method="POST", path_part=f"/v1/checkpoint/{run.id}/async")
    assert [c.status for c in checkpoints] == [200] * 5
    assert app.log()["runs"][run.id]["handler"] == 1  # one SDK call for the five steps
