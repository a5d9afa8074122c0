"""Redrive of a failed run with an app on the Wayline SDK: only the failed step runs again.

The Wayline SDK may run several steps in one call (checkpointing); while a redrive holds
seeds the server asks it to plan each step instead, so steps 1-2 are never re-executed.
"""

from __future__ import annotations

import threading

import wayline
from compat.harness import COMPLETED, FAILED, Compat, Tally, steps_named

from .support import build_web_app

EVENT = "fn/redrive"


def test_redrive_reruns_only_the_failed_step(compat: Compat) -> None:
    tally, fixed = Tally(), threading.Event()
    client = wayline.Wayline(app_id="redrive", is_dev=True, base_url=compat.server_url)

    async def step(name: str, value: int) -> int:
        tally.incr(name)
        if name == "three" and not fixed.is_set():
            raise RuntimeError("step three is broken until the fix is deployed")
        return value

    @client.function(id="flaky", trigger=wayline.TriggerEvent(event=EVENT), retries=0)
    async def flaky(ctx: wayline.Context) -> int:
        one = await ctx.step.run("one", step, "one", 1)
        two = await ctx.step.run("two", step, "two", 2)
        return one + two + await ctx.step.run("three", step, "three", 3)

    web_app, ids = build_web_app("fastapi", client, [flaky])
    compat.serve_app(web_app, app_id="redrive", function_ids=ids)
    try:
        old = compat.wait_run(compat.send(EVENT), "flaky", status=FAILED)
        assert (tally.count("one"), tally.count("two"), tally.count("three")) == (1, 1, 1)

        fixed.set()
        res = compat.http.post(f"/v1/runs/{old['run_id']}/rerun", json={"from": "failed_step"})
        assert res.status_code == 201, res.text
        new = compat.wait_run_by_id(res.json()["data"]["run_id"], status=COMPLETED)

        assert new["output"] == 6
        assert (tally.count("one"), tally.count("two"), tally.count("three")) == (1, 1, 2)
        assert [s["seeded"] for s in new["steps"]] == [True, True, False]
        assert steps_named(new, "three")[0]["output"] == 3
        assert compat.get_run(old["run_id"])["reruns"] == [new["run_id"]]
    finally:
        client.close()
