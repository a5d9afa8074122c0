"""Realtime in real headless Chromium: a page subscribes (Server-Sent Events) with a token
scoped to one channel, a run of a Wayline SDK app publishes its progress with
``ctx.publish``, and the page shows the messages in order. Tokens for another channel and
bad input are refused with the right status and the field named."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

import wayline
from compat.harness import COMPLETED, Compat
from functional.support import build_web_app

from .conftest import shot

PAGE = """<!doctype html><html><body>
<p id="state">connecting</p><ol id="messages"></ol>
<script>
  const source = new EventSource(%(url)s);
  source.onopen = () => { document.getElementById("state").textContent = "open"; };
  source.onmessage = (e) => {
    const message = JSON.parse(e.data);
    const item = document.createElement("li");
    item.textContent = message.topic + ":" + message.data.step + "/" + message.data.of;
    document.getElementById("messages").appendChild(item);
  };
</script></body></html>"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Compat, wayline.Wayline]]:
    compat = Compat(tmp_path)
    client = wayline.Wayline(app_id="rt", is_dev=True, base_url=compat.server_url)

    @client.function(id="import", trigger=wayline.TriggerEvent(event="rt/import"))
    async def import_rows(ctx: wayline.Context) -> int:
        channel = f"upload:{ctx.event.data['upload']}"
        for n in range(1, 4):
            await ctx.step.run(f"chunk-{n}", int, n)
            await ctx.publish(channel, "progress", {"step": n, "of": 3})
        await ctx.publish(channel, "secret-topic", {"step": 0, "of": 0})
        return 3

    try:
        web_app, ids = build_web_app("fastapi", client, [import_rows])
        compat.serve_app(web_app, app_id="rt", function_ids=ids, retry_interval=0.2)
        yield compat, client
    finally:
        compat.close()


def test_a_page_shows_a_runs_progress_in_order(
    page: Page, served: tuple[Compat, wayline.Wayline]
) -> None:
    compat, client = served
    upload = uuid.uuid4().hex[:8]
    token = client.get_subscription_token(f"upload:{upload}", ["progress"])
    url = f"{compat.server_url}/v1/realtime/subscribe?channel=upload:{upload}&token={token.key}"
    page.set_content(PAGE % {"url": json.dumps(url)})
    expect(page.locator("#state")).to_have_text("open")

    [event_id] = client.send(wayline.Event(name="rt/import", data={"upload": upload}))
    compat.wait_run(event_id, "rt-import", status=COMPLETED)

    items = page.locator("#messages li")
    expect(items).to_have_text(["progress:1/3", "progress:2/3", "progress:3/3"])
    shot(page, "realtime-progress")
    # Another upload's channel, and the topic the token does not grant, stay invisible.
    assert "secret-topic" not in page.content()
    assert token.key not in compat.log_path.read_text()


def _get(compat: Compat, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{compat.server_url}{path}", params=params, timeout=10)


def test_tokens_are_scoped_and_bad_input_names_the_field(
    served: tuple[Compat, wayline.Wayline],
) -> None:
    compat, client = served
    token = client.get_subscription_token("upload:a", ["progress"]).key

    other = _get(compat, "/v1/realtime/subscribe", channel="upload:b", token=token)
    assert other.status_code == 403 and other.json()["field"] == "channel"
    topic = _get(
        compat, "/v1/realtime/subscribe", channel="upload:a", token=token, topic="secret-topic"
    )
    assert topic.status_code == 403 and topic.json()["field"] == "topic"
    forged = _get(compat, "/v1/realtime/subscribe", channel="upload:a", token=token[:-4] + "AAAA")
    assert forged.status_code == 401 and token not in forged.text
    missing = _get(compat, "/v1/realtime/subscribe", channel="upload:a")
    assert missing.status_code == 401 and missing.json()["field"] == "token"

    api = httpx.Client(base_url=compat.server_url, timeout=10)
    no_topics = api.post("/v1/realtime/token", json={"channel": "upload:a"})
    assert no_topics.status_code == 400 and no_topics.json()["field"] == "topics"
    bad_channel = api.post("/v1/realtime/token", json={"channel": "a b", "topics": ["x"]})
    assert bad_channel.status_code == 400 and "channel" in bad_channel.json()["error"]
    ttl = api.post(
        "/v1/realtime/token", json={"channel": "c", "topics": ["x"], "ttl_seconds": 10**9}
    )
    assert ttl.status_code == 400 and "86400" in ttl.json()["error"]
    no_topic = api.post("/v1/realtime/publish?channel=upload:a", json={"x": 1})
    assert no_topic.status_code == 400 and no_topic.json()["field"] == "topic"
    too_big = api.post(
        "/v1/realtime/publish?channel=upload:a&topic=progress", content=b'"' + b"x" * 600_000 + b'"'
    )
    assert too_big.status_code == 400 and "524288" in too_big.json()["error"]
    api.close()
