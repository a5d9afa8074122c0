"""The server owns time: Wayline SDK sleeps are durations (issue 12, item 7).

A 14-day trial flow sleeps 7 days twice. The test moves the server's clock (``--test-api``)
by 7 days: the first sleep ends, and the second must then last 7 more days of server time.
When the SDK sent ``app_now + 7 days`` (the app's clock never moved), the second sleep had
already ended on arrival and the flow jumped from day 7 to the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import fastapi
import pytest

import wayline
import wayline.fastapi
from compat.harness import COMPLETED, RUNNING, Compat, Recorder, step_named, wait_until

pytestmark = pytest.mark.timeout(60)
WEEK_MS = 7 * 24 * 3600 * 1000


@pytest.fixture
def trial(compat: Compat) -> Iterator[tuple[Compat, Recorder]]:
    client = wayline.Wayline(app_id="trial", is_dev=True, base_url=compat.server_url)
    reached = Recorder()

    @client.function(id="trial", trigger=wayline.TriggerEvent(event="trial/started"), retries=0)
    async def trial_flow(ctx: wayline.Context) -> str:
        await ctx.step.run("welcome", reached.append, "welcome")
        await ctx.step.sleep("week-1", "7d")
        await ctx.step.run("midway", reached.append, "midway")
        await ctx.step.sleep("week-2", "7d")
        await ctx.step.run("ended", reached.append, "ended")
        return "trial over"

    app = fastapi.FastAPI()
    handler = wayline.fastapi.serve(app, client, [trial_flow])
    try:
        compat.serve_app(app, app_id="trial", function_ids=handler.function_ids)
        yield compat, reached
    finally:
        client.close()


def _sleeping(compat: Compat, event_id: str, step: str) -> dict[str, Any]:
    def found() -> bool:
        run = compat.current_run(event_id, "trial")
        steps = [s for s in (run or {}).get("steps") or [] if s.get("name") == step]
        return bool(steps) and steps[0].get("status") == "Sleeping"

    wait_until(found, message=f"the run never slept in {step!r}")
    run = compat.current_run(event_id, "trial")
    assert run is not None
    return run


def test_moving_the_clock_a_week_ends_one_week_of_sleep(
    trial: tuple[Compat, Recorder],
) -> None:
    compat, reached = trial
    event_id = compat.send("trial/started")
    _sleeping(compat, event_id, "week-1")

    compat.advance_clock(WEEK_MS + 1_000)
    run = _sleeping(compat, event_id, "week-2")
    time.sleep(1.0)  # long enough for a wrongly short sleep to have ended
    run = compat.wait_run(event_id, "trial", status=RUNNING)
    assert reached.items == ["welcome", "midway"]
    assert step_named(run, "week-2")["status"] == "Sleeping"

    compat.advance_clock(WEEK_MS + 1_000)
    run = compat.wait_run(event_id, "trial", status=COMPLETED)
    assert run["output"] == "trial over"
    assert reached.items == ["welcome", "midway", "ended"]
