"""Realtime with the official Python SDK (``inngest.experimental.realtime``): its
``publish`` from a function and its ``get_subscription_token`` reach Wayline's endpoints
as they are, and the token it gets subscribes to Wayline's SSE stream."""

from __future__ import annotations

import json
from typing import Any

import httpx
import inngest
from inngest.experimental import realtime

from .harness import COMPLETED, Compat


def test_the_official_sdks_publish_and_token_work_with_the_sse_stream(compat: Compat) -> None:
    client = compat.client()

    @client.create_function(
        fn_id="progress", retries=0, trigger=inngest.TriggerEvent(event="compat/progress")
    )
    def fn(ctx: inngest.ContextSync) -> str:
        for n in (1, 2):
            ctx.step.run(f"chunk-{n}", lambda n=n: n)  # type: ignore[misc]
            realtime.publish_sync(client, "run:rt", "progress", {"n": n})
        return "done"

    compat.serve("fastapi", client, [fn])
    compat.wait_run(compat.send("compat/progress"), status=COMPLETED)
    token = realtime.get_subscription_token_sync(client, "run:rt", ["progress"])
    assert token["channel"] == "run:rt" and token["topics"] == ["progress"]

    seen: list[dict[str, Any]] = []
    url = f"{compat.server_url}/v1/realtime/subscribe"
    params = {"channel": "run:rt", "token": str(token["key"])}
    with httpx.stream("GET", url, params=params, timeout=10) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[len("data: ") :]))
            if len(seen) == 3:
                break
    # The official publish fires on every request that reaches it: n=1 again when the
    # function replays to report chunk-2's result (Wayline's ctx.publish skips replays).
    assert [m["data"]["n"] for m in seen] == [1, 1, 2]
    assert {m["topic"] for m in seen} == {"progress"}
    wrong = httpx.get(url, params={**params, "channel": "run:other"}, timeout=10)
    assert wrong.status_code == 403
