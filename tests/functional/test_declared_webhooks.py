"""A webhook declared on the Wayline SDK client (``Wayline(webhooks=[...])``), created by the
app's sync on ``wayline dev``: a signed GitHub-style delivery becomes an event that runs a
function; a tampered one is refused; a retried delivery is deduplicated."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

import wayline
from compat.harness import COMPLETED, Compat

from .support import build_web_app

SECRET = "gh_webhook_secret_42"
BODY = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "acme/shop"}}).encode()


def _signed(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_a_webhook_declared_in_code_turns_deliveries_into_runs(compat: Compat) -> None:
    client = wayline.Wayline(
        app_id="hooks",
        is_dev=True,
        base_url=compat.server_url,
        webhooks=[
            wayline.Webhook(
                id="github",
                event='"github/" + headers["x-github-event"]',
                data="body.repository",
                event_id='headers["x-github-delivery"]',
                signature=wayline.WebhookSignature(scheme="github", secret=SECRET),
            )
        ],
    )

    @client.function(id="on-push", trigger=wayline.TriggerEvent(event="github/push"), retries=0)
    async def on_push(ctx: wayline.Context) -> Any:
        return {"repo": ctx.event.data["full_name"]}

    web_app, ids = build_web_app("fastapi", client, [on_push])
    compat.serve_app(web_app, app_id="hooks", function_ids=ids)
    try:
        listed = compat.http.get("/v1/webhooks/hooks-github")
        assert listed.status_code == 200, listed.text
        assert listed.json()["data"]["app_id"] == "hooks" and SECRET not in listed.text
        assert compat.app_url is not None
        assert SECRET not in httpx.get(compat.app_url).text  # not in the app's introspection

        headers = {"x-github-event": "push", "x-github-delivery": "d-1"}
        tampered = compat.http.post(
            "/webhooks/hooks-github",
            content=BODY.replace(b"main", b"evil"),
            headers={**headers, "x-hub-signature-256": _signed(BODY)},
        )
        assert tampered.status_code == 401 and "does not match" in tampered.json()["error"]

        signed = {**headers, "x-hub-signature-256": _signed(BODY)}
        ok = compat.http.post("/webhooks/hooks-github", content=BODY, headers=signed)
        assert ok.status_code == 200, ok.text
        (event_id,) = ok.json()["ids"]
        run = compat.wait_run(event_id, "on-push", status=COMPLETED)
        assert run["output"] == {"repo": "acme/shop"}

        retried = compat.http.post("/webhooks/hooks-github", content=BODY, headers=signed)
        assert retried.status_code == 200 and retried.json()["duplicate"] is True
        assert len(compat.runs_for_event(event_id)) == 1
    finally:
        client.close()
