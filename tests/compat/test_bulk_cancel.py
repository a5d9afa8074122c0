"""POST /v1/cancellations: cancel matching runs; an empty filter is refused."""

from __future__ import annotations

import datetime

import inngest
import pytest

from .harness import CANCELLED, RUNNING, Compat

pytestmark = pytest.mark.compat

FAR_FUTURE = "2100-01-01T00:00:00Z"


def test_bulk_cancel_by_expression(compat: Compat) -> None:
    client = compat.client()

    @client.create_function(
        fn_id="sleeper", retries=0, trigger=inngest.TriggerEvent(event="compat/bulk")
    )
    def fn(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("hold", datetime.timedelta(seconds=30))
        return "done"

    compat.serve("fastapi", client, [fn])
    ids = compat.send_many([{"name": "compat/bulk", "data": {"tenant": t}} for t in "aab"])
    runs = [compat.wait_run(i, status=RUNNING, timeout=10) for i in ids]

    http = compat.http
    empty = http.post("/v1/cancellations", json={})
    assert empty.status_code == 400 and "empty filter" in empty.json()["error"]

    resp = http.post(
        "/v1/cancellations",
        json={
            "app_id": "compat",
            "function_id": "sleeper",
            "started_before": FAR_FUTURE,
            "if": "event.data.tenant == 'a'",
        },
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["cancelled"] == 2
    statuses = [compat.get_run(str(r["run_id"]))["status"] for r in runs]
    assert statuses == [CANCELLED, CANCELLED, RUNNING]

    bad = http.post(
        "/v1/cancellations", json={"function_id": "compat-sleeper", "started_before": "yesterday"}
    )
    assert bad.status_code == 400 and "started_before" in bad.json()["error"]
    missing = http.post(
        "/v1/cancellations", json={"function_id": "nope", "started_before": FAR_FUTURE}
    )
    assert missing.status_code == 404
    compat.cancel_run(str(runs[2]["run_id"]))
