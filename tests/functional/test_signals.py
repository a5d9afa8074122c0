"""``ctx.step.wait_for_signal`` with the Wayline SDK on ``wayline dev``, resolved by
``POST /v1/signals``; 404 when no run waits on the signal."""

from __future__ import annotations

from typing import Any

import wayline
from compat.harness import COMPLETED, Compat, step_named

from .support import build_web_app, wait_for_step

EVENT = "fn/signals"


def test_a_signal_resumes_the_one_waiting_run(compat: Compat) -> None:
    client = wayline.Wayline(app_id="signals", is_dev=True, base_url=compat.server_url)

    @client.function(id="approve", trigger=wayline.TriggerEvent(event=EVENT), retries=0)
    async def approve(ctx: wayline.Context) -> Any:
        order = ctx.event.data["order"]
        got = await ctx.step.wait_for_signal("approval", signal=f"approve-{order}", timeout="1h")
        return {"approved": got}

    @client.function(id="approve-sync", trigger=wayline.TriggerEvent(event=EVENT + ".sync"))
    def approve_sync(ctx: wayline.SyncContext) -> Any:
        got = ctx.step.wait_for_signal("approval", signal="sync-signal", timeout="1h")
        return got

    web_app, ids = build_web_app("fastapi", client, [approve, approve_sync])
    compat.serve_app(web_app, app_id="signals", function_ids=ids)
    try:
        none = compat.http.post("/v1/signals", json={"signal": "approve-1", "data": {}})
        assert none.status_code == 404 and "approve-1" in none.json()["error"]

        event = compat.send(EVENT, {"order": 1})
        wait_for_step(compat, event, "approve", "approval")
        sent = compat.http.post("/v1/signals", json={"signal": "approve-1", "data": {"by": "ann"}})
        assert sent.status_code == 200, sent.text
        run = compat.wait_run(event, "approve", status=COMPLETED)
        assert sent.json()["data"] == {"run_id": run["run_id"]}
        assert run["output"] == {"approved": {"signal": "approve-1", "data": {"by": "ann"}}}
        assert step_named(run, "approval")["op"] == "WaitForSignal"

        sync_event = compat.send(EVENT + ".sync")
        wait_for_step(compat, sync_event, "approve-sync", "approval")
        assert compat.http.post("/v1/signals", json={"signal": "sync-signal"}).status_code == 200
        sync_run = compat.wait_run(sync_event, "approve-sync", status=COMPLETED)
        assert sync_run["output"] == {"signal": "sync-signal", "data": None}

        bad = compat.http.post("/v1/signals", json={"data": {}})
        assert bad.status_code == 400 and "signal is required" in bad.json()["error"]
    finally:
        client.close()
