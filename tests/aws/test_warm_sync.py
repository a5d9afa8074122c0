"""Syncs reach warm containers of the OTHER functions, as on a deployed stack.

Each handler has its own runtime (``Driver``), so a sync through the api function can
only reach the warm ingest and dispatch containers through the store's sync generation
(``wayline.engine.functions``). Before it, a warm ingest container started no runs of a
newly synced function and kept starting runs of a removed one (issue 11).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import fastapi
import pytest

import wayline
import wayline.fastapi
from compat.harness import UvicornAppServer
from wayline import signing
from wayline.aws.eventbridge import EventBus
from wayline.engine.functions import DEFAULT_CHECK_EVERY_MS
from wayline.engine.model import RunStatus

from .conftest import Stack, VirtualClock
from .driver import SIGNING_KEY, Driver, make_runtime

BEARER = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}


def serve_version(functions: dict[str, str], stack: ExitStack) -> str:
    """App ``warm`` with ``functions`` (id -> trigger event) on loopback; its serve URL."""
    # No API to reach (127.0.0.1:9): checkpoints would only time out, so the app stays classic.
    client = wayline.Wayline(
        app_id="warm", signing_key=SIGNING_KEY, base_url="http://127.0.0.1:9", checkpointing=False
    )
    stack.callback(client.close)

    def define(fn_id: str, event: str) -> wayline.Function[Any, Any]:
        @client.function(id=fn_id, trigger=wayline.TriggerEvent(event=event), retries=0)
        async def body(ctx: wayline.Context) -> str:
            return str(await ctx.step.run("only", lambda: fn_id))

        return body

    web = fastapi.FastAPI()
    wayline.fastapi.serve(web, client, [define(i, e) for i, e in functions.items()])
    server = UvicornAppServer(web)
    stack.callback(server.stop)
    return f"http://127.0.0.1:{server.port}/api/inngest"


@pytest.fixture
def apps() -> Iterator[tuple[str, str]]:
    """Two deploys of one app: v2 adds ``fresh``, drops ``old`` and moves ``moved``."""
    with ExitStack() as stack:
        v1 = serve_version({"old": "t/go", "kept": "t/go", "moved": "t/go"}, stack)
        v2 = serve_version({"kept": "t/go", "fresh": "t/go", "moved": "t/elsewhere"}, stack)
        yield v1, v2


def send(stack: Stack, name: str) -> None:
    (result,) = EventBus(bus_name=stack.bus, client=stack.events).publish([{"name": name}])
    assert result.ok


def run_counts(driver: Driver) -> dict[str, int]:
    runs = driver.runtime.store.runs.list_runs(limit=100)
    counts: dict[str, int] = {}
    for run in runs:
        assert run.status is RunStatus.COMPLETED, (run.function_id, run.status)
        name = run.function_id.removeprefix("warm-")
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_a_sync_through_the_api_reaches_warm_ingest_and_dispatch_containers(
    stack: Stack, clock: VirtualClock, apps: tuple[str, str]
) -> None:
    v1, v2 = apps
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    assert driver.api("PUT", "/v1/apps/sync", {"url": v1}, BEARER)[0] == 200
    send(stack, "t/go")
    driver.settle()  # ingest and dispatch are warm now, with v1's functions loaded
    assert run_counts(driver) == {"old": 1, "kept": 1, "moved": 1}
    warm = {name: driver.runtimes[name] for name in ("ingest", "dispatch")}

    status, body = driver.api("PUT", "/v1/apps/sync", {"url": v2}, BEARER)
    assert status == 200, body
    clock.advance(DEFAULT_CHECK_EVERY_MS + 1)
    send(stack, "t/go")
    driver.settle()

    assert {name: driver.runtimes[name] for name in warm} == warm  # no cold start
    # the new function starts and finishes; the removed one and the moved trigger do not
    assert run_counts(driver) == {"old": 1, "kept": 2, "moved": 1, "fresh": 1}
    send(stack, "t/elsewhere")
    driver.settle()
    assert run_counts(driver) == {"old": 1, "kept": 2, "moved": 2, "fresh": 1}


def test_a_removed_function_gets_no_runs_from_a_warm_ingest_container(
    stack: Stack, clock: VirtualClock, apps: tuple[str, str]
) -> None:
    v1, v2 = apps
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    assert driver.api("PUT", "/v1/apps/sync", {"url": v1}, BEARER)[0] == 200
    send(stack, "t/nothing")  # warms the ingest container: it loads v1's functions
    driver.settle()
    assert driver.runtime.store.runs.list_runs(limit=100) == []

    assert driver.api("PUT", "/v1/apps/sync", {"url": v2}, BEARER)[0] == 200
    clock.advance(DEFAULT_CHECK_EVERY_MS + 1)
    send(stack, "t/go")
    driver.settle()
    assert "old" not in run_counts(driver)
