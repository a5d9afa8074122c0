"""State over 4 MB: the server sends `use_api: true` and the SDK fetches it from the API.

Mirrors inngest-py's `steps_that_needs_api` case: memoized step output too large
to inline in the request, so the SDK calls `GET /v0/runs/{id}/batch` and
`GET /v0/runs/{id}/actions` instead.
"""

from __future__ import annotations

import fastapi
import inngest
import inngest.fast_api
import pytest

from .harness import (
    COMPLETED,
    Compat,
    Counter,
    RecordedRequest,
    Recorder,
    RecordingMiddleware,
    function_ids,
    step_named,
)

pytestmark = pytest.mark.compat

STEPS = 5
STEP_BYTES = 1024 * 1024
# What the server may inline in a request before it switches to use_api.
USE_API_THRESHOLD = 4 * 1024 * 1024


def test_large_state_is_fetched_from_the_api(compat: Compat) -> None:
    client = compat.client()
    requests = Recorder()
    step_calls = {f"big-{i}": Counter() for i in range(STEPS)}
    total_calls = Counter()
    trigger = inngest.TriggerEvent(event="compat/use-api")

    @client.create_function(fn_id="use-api", retries=0, trigger=trigger)
    async def fn(ctx: inngest.Context) -> dict[str, object]:
        outputs: list[str] = []
        for i in range(STEPS):
            step_id = f"big-{i}"

            async def big(step_id: str = step_id, i: int = i) -> str:
                step_calls[step_id].incr()
                return chr(ord("a") + i) * STEP_BYTES

            outputs.append(await ctx.step.run(step_id, big))

        async def total() -> int:
            total_calls.incr()
            return sum(len(o) for o in outputs)

        return {
            "total": await ctx.step.run("total", total),
            "heads": [o[:2] for o in outputs],
            "event": dict(ctx.event.data),
        }

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [fn])
    app.add_middleware(RecordingMiddleware, requests=requests)
    compat.serve_app(app, app_id=client.app_id, function_ids=function_ids([fn]))

    event_id = compat.send("compat/use-api", {"k": "v"})
    run = compat.wait_run(event_id, "use-api", status=COMPLETED, timeout=30.0)

    assert run["output"] == {
        "total": STEPS * STEP_BYTES,
        "heads": ["aa", "bb", "cc", "dd", "ee"],
        "event": {"k": "v"},
    }
    assert step_named(run, "total")["output"] == STEPS * STEP_BYTES
    assert {name: c.value for name, c in step_calls.items()} == dict.fromkeys(step_calls, 1)
    assert total_calls.value == 1

    calls: list[RecordedRequest] = [r for r in requests.items if r.method == "POST"]
    bodies = [c.json() for c in calls]
    # Small state is inlined: the first call carries the event and no use_api.
    assert bodies[0]["use_api"] is False
    assert bodies[0]["event"]["data"] == {"k": "v"}
    assert all(len(c.body) <= USE_API_THRESHOLD + 64 * 1024 for c in calls)
    # Once the memoized output passed the threshold, the state was left out.
    via_api = [b for b in bodies if b["use_api"]]
    assert via_api, "the server never sent use_api: true"
    for body in via_api:
        assert body["ctx"]["use_api"] is True
        assert body["steps"] == {}
        assert body["events"] == []
