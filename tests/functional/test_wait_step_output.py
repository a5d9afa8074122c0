"""GET /v1/runs/{id} shows a fulfilled waitForEvent step's output as the whole event the
function received (name, data, id, ts), not just its ``data`` (a regression test)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import wayline
from compat.harness import step_named
from functional.support import Dev, Framework, Functions, serve, trigger


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="w-async", trigger=trigger("w", "async"), retries=0)
    async def w(ctx: wayline.Context) -> dict[str, Any]:
        ev = await ctx.step.wait_for_event(
            "verified", event="fn/v", match="data.key", timeout="30s"
        )
        assert ev is not None
        return {"name": ev.name, "id": ev.id, "data": ev.data}

    return [w]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    framework: Framework = "fastapi"
    with serve(framework, build, tmp_path_factory, app_id="bug") as running:
        yield running


def test_wait_step_output_is_the_event(dev: Dev) -> None:
    started = dev.start("w", "async")
    dev.wait_for_step(started, "verified")
    dev.compat.send("fn/v", {"key": started.key, "n": 1})
    run = dev.wait(started)
    output = step_named(run, "verified")["output"]
    assert output["name"] == "fn/v", output
    assert output["data"] == {"key": started.key, "n": 1}
    assert output["id"] == run["output"]["id"]
