"""A server started with a signing key signs every call to the app verifiably.

The app runs the official SDK in dev mode (which does not check signatures
itself), wrapped in an ASGI middleware that records every request to the serve
path. Each recorded call is then checked with the SDK's own production-mode
verifier, which canonicalizes the body (RFC 8785) before checking the HMAC.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import fastapi
import httpx
import inngest
import inngest.fast_api
import jcs
import pytest
from inngest._internal import net, server_lib

from .harness import (
    COMPLETED,
    Compat,
    RecordedRequest,
    Recorder,
    RecordingMiddleware,
    bearer_token,
    function_ids,
    step_named,
)

pytestmark = pytest.mark.compat

SIGNING_KEY = "signkey-test-" + "12ab" * 16
OTHER_KEY = "signkey-test-" + "34cd" * 16


def _verify(request: RecordedRequest, key: str) -> str | Exception | None:
    """The SDK's production-mode check of a request signature, as its serve handler runs it."""
    return net.validate_request_sig(
        body=request.body,
        headers=net.normalize_headers(request.headers),
        mode=server_lib.ServerKind.CLOUD,
        signing_key=key,
        signing_key_fallback=None,
    )


def _serve_recorded(compat: Compat) -> Recorder:
    """Serve a 2-step function with a signing key; returns the recorder of app requests."""
    client = compat.client(signing_key=SIGNING_KEY)
    requests = Recorder()
    trigger = inngest.TriggerEvent(event="compat/signed")

    @client.create_function(fn_id="signed", retries=0, trigger=trigger)
    async def fn(ctx: inngest.Context) -> dict[str, object]:
        async def first() -> dict[str, object]:
            # Non-ASCII, floats and unordered keys exercise the canonical form.
            return {"zeta": 1, "alpha": "héllo ✓", "ratio": 0.5, "big": 1e21}

        async def second() -> list[object]:
            return ["b", {"y": 2, "x": 1}]

        a = await ctx.step.run("first", first)
        b = await ctx.step.run("second", second)
        return {"a": a, "b": b}

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [fn])
    app.add_middleware(RecordingMiddleware, requests=requests)
    compat.serve_app(
        app, app_id=client.app_id, function_ids=function_ids([fn]), signing_key=SIGNING_KEY
    )
    return requests


def test_calls_to_the_app_are_signed(compat: Compat) -> None:
    requests = _serve_recorded(compat)
    event_id = compat.send("compat/signed", {"n": 1})
    run = compat.wait_run(event_id, "signed", status=COMPLETED)

    assert run["output"] == {
        "a": {"zeta": 1, "alpha": "héllo ✓", "ratio": 0.5, "big": 1e21},
        "b": ["b", {"y": 2, "x": 1}],
    }
    assert step_named(run, "first")["output"] == run["output"]["a"]
    assert step_named(run, "second")["output"] == run["output"]["b"]

    calls: list[RecordedRequest] = [r for r in requests.items if r.method == "POST"]
    # first, second, and the final call that returned the output.
    assert len(calls) >= 3, calls
    now = time.time()
    for call in calls:
        header = call.headers.get("x-inngest-signature")
        assert header, f"unsigned call: {call.headers}"
        stamp = urllib.parse.parse_qs(header)["t"][0]
        assert abs(int(stamp) - now) < 300, header
        assert _verify(call, SIGNING_KEY) == SIGNING_KEY
        assert isinstance(_verify(call, OTHER_KEY), Exception)
        assert jcs.canonicalize(json.loads(call.body)) == call.body
        assert call.headers.get("x-inngest-server-kind") == "dev"
        assert json.loads(call.body)["ctx"]["run_id"] == run["run_id"]

    # The server's API wants the key too (the harness's client sends it).
    with httpx.Client(base_url=compat.server_url, timeout=10.0) as http:
        assert http.get(f"/v1/events/{event_id}").status_code == 401
        wrong = {"authorization": f"Bearer {bearer_token(OTHER_KEY)}"}
        assert http.get(f"/v1/events/{event_id}", headers=wrong).status_code == 401
        right = {"authorization": f"Bearer {bearer_token(SIGNING_KEY)}"}
        res = http.get(f"/v1/events/{event_id}", headers=right)
        assert res.status_code == 200
        assert res.json()["data"]["data"] == {"n": 1}


def test_sync_request_signature_verifies(compat: Compat) -> None:
    requests = _serve_recorded(compat)

    syncs: list[RecordedRequest] = [r for r in requests.items if r.method == "PUT"]
    assert syncs, f"no sync PUT recorded: {requests}"
    for sync in syncs:
        assert sync.headers.get("x-inngest-signature"), f"unsigned sync: {sync.headers}"
        assert sync.headers.get("x-inngest-server-kind") == "dev"
        assert _verify(sync, SIGNING_KEY) == SIGNING_KEY, sync.body
        assert isinstance(_verify(sync, OTHER_KEY), Exception)
