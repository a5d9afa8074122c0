"""``client.send`` against a scripted event API on 127.0.0.1 (started by each test).

The fake API stores events under the id the real server would derive from the
``x-inngest-event-id-seed`` header, even on requests it then answers with a 5xx (a lost
response), so "one stored event" proves that retries reuse the seed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import wayline
from wayline.engine.ids import seeded_event_id
from wayline.errors import ConfigError, SendEventsError
from wayline.sdk import sending


class FakeEventApi:
    """Answers each ``POST /e/{key}`` with the next scripted reply; ``"drop"`` hangs up."""

    def __init__(self, script: Sequence[tuple[int, Any] | str]) -> None:
        self.script = list(script)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.stored: dict[str, dict[str, Any]] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                api.requests.append((self.path, headers, body))
                events = json.loads(body)
                ids = [
                    seeded_event_id(headers["x-inngest-event-id-seed"], i + 1)
                    for i in range(len(events))
                ]
                reply = api.script.pop(0) if api.script else (200, None)
                if reply == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                assert isinstance(reply, tuple)
                status, payload = reply
                if status < 300 or status >= 500:
                    for event_id, event in zip(ids, events, strict=True):
                        api.stored.setdefault(str(event_id), event)
                if payload is None:
                    payload = {"ids": ids, "status": status}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_factory() -> Iterator[Any]:
    started: list[FakeEventApi] = []

    def start(*script: tuple[int, Any] | str) -> FakeEventApi:
        api = FakeEventApi(script)
        started.append(api)
        return api

    yield start
    for api in started:
        api.close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sending, "backoff_s", lambda attempt: 0.0)


def _client(api: FakeEventApi, **overrides: Any) -> wayline.Wayline:
    settings: dict[str, Any] = {"app_id": "shop", "base_url": api.url, "event_key": "key-1"}
    settings.update(overrides)
    return wayline.Wayline(environ={}, **settings)


EVENT = wayline.Event(name="user/signed-up", data={"email": "ada@example.com"})


def test_a_5xx_is_retried_with_the_same_seed_and_stores_one_event(api_factory: Any) -> None:
    api = api_factory((503, {"error": "busy"}), (200, None))
    ids = _client(api).send(EVENT)
    assert len(api.requests) == 2
    (path1, headers1, body1), (path2, headers2, body2) = api.requests
    assert path1 == path2 == "/e/key-1"
    assert headers1["x-inngest-event-id-seed"] == headers2["x-inngest-event-id-seed"]
    assert body1 == body2
    assert list(api.stored) == ids  # stored once, under the id the client was given


def test_a_dropped_connection_is_retried(api_factory: Any) -> None:
    api = api_factory("drop", (200, None))
    ids = _client(api).send([EVENT, EVENT])
    assert len(ids) == 2 and len(api.requests) == 2


def test_a_4xx_is_not_retried_and_names_the_accepted_events(api_factory: Any) -> None:
    api = api_factory((400, {"ids": ["01ACCEPTED"], "status": 400, "error": "event 2: bad name"}))
    bad = wayline.Event(name="inngest/not-yours")
    with pytest.raises(SendEventsError) as raised:
        _client(api).send([EVENT, bad, EVENT])
    assert len(api.requests) == 1
    assert raised.value.ids == ["01ACCEPTED"]
    message = str(raised.value)
    assert "01ACCEPTED" in message and "events 2 to 3 were not" in message
    assert "bad name" in message


def test_giving_up_after_five_attempts(api_factory: Any) -> None:
    api = api_factory(*[(500, {"error": "down"})] * 5)
    with pytest.raises(SendEventsError, match="after 5 attempts") as raised:
        _client(api).send(EVENT)
    assert len(api.requests) == 5
    assert raised.value.ids == []


def test_send_async_shares_the_retry_policy(api_factory: Any) -> None:
    api = api_factory((502, None), (200, None))
    ids = asyncio.run(_client(api).send_async(EVENT))
    assert len(api.requests) == 2 and list(api.stored) == ids


def test_the_request_is_what_the_event_api_expects(api_factory: Any) -> None:
    api = api_factory()
    event = wayline.Event(name="order/placed", data={"id": 7}, id="order-7", v="2")
    _client(api, env="feature-x").send([event, EVENT])
    _, headers, body = api.requests[0]
    assert headers["x-inngest-sdk"].startswith("wayline-py:v")
    assert headers["x-inngest-env"] == "feature-x"
    millis, entropy = headers["x-inngest-event-id-seed"].split(",")
    assert millis.isdigit() and len(entropy) == 16  # 10 bytes of base64
    sent = json.loads(body)
    assert sent[0]["id"] == "order-7" and sent[0]["v"] == "2"
    assert "id" not in sent[1]  # an empty id is left for the server to fill
    assert all(e["ts"] > 1_700_000_000_000 for e in sent)


def test_dev_mode_uses_the_placeholder_key(api_factory: Any) -> None:
    api = api_factory()
    _client(api, event_key=None, is_dev=True).send(EVENT)
    assert api.requests[0][0] == f"/e/{sending.DEV_EVENT_KEY}"


def test_production_needs_an_event_key_and_a_url() -> None:
    with pytest.raises(ConfigError, match="no event key"):
        wayline.Wayline(app_id="shop", base_url="http://127.0.0.1:9", environ={}).send(EVENT)
    with pytest.raises(ConfigError, match="no event API URL"):
        wayline.Wayline(app_id="shop", event_key="k", environ={}).send(EVENT)


def test_a_custom_sender_replaces_http() -> None:
    class Recording:
        def __init__(self) -> None:
            self.sent: list[dict[str, Any]] = []

        def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
            self.sent.extend(events)
            return [f"id-{i}" for i, _ in enumerate(events)]

        async def send_async(self, events: Sequence[dict[str, Any]]) -> list[str]:
            return self.send(events)

    sender = Recording()
    client = wayline.Wayline(app_id="shop", sender=sender, environ={})
    assert client.send([EVENT, EVENT]) == ["id-0", "id-1"]
    assert sender.sent[0]["name"] == "user/signed-up"
