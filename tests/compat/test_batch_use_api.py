"""inngest-py's own ``batch_that_needs_api`` case, unchanged: 8 events of 1 MiB sent in
one ``client.send`` (an 8 MiB request), batched by ``batch_events`` max size 8. The
batch is over the request state limit, so the server sends ``use_api: true`` with no
events and the SDK fetches them from ``GET /v0/runs/{id}/batch``."""

from __future__ import annotations

import datetime

import fastapi
import inngest
import inngest.fast_api
import pytest

from .harness import (
    COMPLETED,
    Compat,
    Recorder,
    RecordingMiddleware,
    function_ids,
)

pytestmark = pytest.mark.compat

EVENTS = 8
EVENT_BYTES = 1024 * 1024


def test_a_batch_of_8_one_mib_events_reaches_the_sdk_through_use_api(compat: Compat) -> None:
    client = compat.client()
    requests = Recorder()
    seen = Recorder()

    @client.create_function(
        fn_id="batch-that-needs-api",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/big-batch"),
        batch_events=inngest.Batch(max_size=EVENTS, timeout=datetime.timedelta(seconds=10)),
    )
    async def fn(ctx: inngest.Context) -> dict[str, object]:
        sizes = [len(str(e.data["blob"])) for e in ctx.events]
        seen.append([(e.data["n"], size) for e, size in zip(ctx.events, sizes, strict=True)])
        return {"events": len(ctx.events), "bytes": sum(sizes)}

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [fn])
    app.add_middleware(RecordingMiddleware, requests=requests)
    compat.serve_app(app, app_id=client.app_id, function_ids=function_ids([fn]))

    ids = client.send_sync(
        [
            inngest.Event(name="compat/big-batch", data={"n": n, "blob": chr(97 + n) * EVENT_BYTES})
            for n in range(EVENTS)
        ]
    )
    assert len(ids) == EVENTS
    run = compat.wait_run(ids[0], status=COMPLETED, timeout=60.0)

    assert run["output"] == {"events": EVENTS, "bytes": EVENTS * EVENT_BYTES}
    assert seen.items[-1] == [(n, EVENT_BYTES) for n in range(EVENTS)]
    bodies = [r.json() for r in requests.items if r.method == "POST"]
    assert bodies and all(b["use_api"] is True and b["events"] == [] for b in bodies)
    assert all(b["ctx"]["use_api"] is True for b in bodies)
