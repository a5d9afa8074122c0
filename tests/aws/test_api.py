"""The api function over Function URL events: the dev server's validation, AWS's auth,
event ids fixed before publishing, sync safety, and the ASGI adapter itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from wayline import signing
from wayline.aws.function_url import FunctionUrlAdapter
from wayline.engine.ids import seeded_event_id

from .conftest import Stack, VirtualClock
from .driver import EVENT_KEY, SIGNING_KEY, Driver, make_runtime

BEARER = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}
SEED = "1795341600000,AQIDBAUGBwgJCg=="


@pytest.fixture
def driver(stack: Stack, clock: VirtualClock) -> Driver:
    return Driver(stack, clock, lambda: make_runtime(stack, clock))


def test_event_api_checks_the_key_and_validates_like_the_dev_server(driver: Driver) -> None:
    status, body = driver.api("POST", "/e/wrong-key", {"name": "a"})
    assert (status, body["error"]) == (401, "event key not found")
    status, body = driver.api("POST", f"/e/{EVENT_KEY}", {"name": "inngest/fake"})
    assert status == 400 and "reserved prefix" in body["error"] and body["ids"] == []
    status, body = driver.api("POST", f"/e/{EVENT_KEY}", [{"name": "ok"}, {"data": {}}])
    assert status == 400 and "events[1].name" in body["error"]
    assert driver.receive(driver.stack.ingest_queue_url) == []  # nothing published


def test_event_ids_follow_the_seed_and_a_retry_stores_nothing_twice(driver: Driver) -> None:
    events = [{"name": "shop/a", "data": {"i": 1}}, {"name": "shop/b"}]
    headers = {"x-inngest-event-id-seed": SEED}
    _, first = driver.api("POST", f"/e/{EVENT_KEY}", events, headers)
    _, again = driver.api("POST", f"/e/{EVENT_KEY}", events, headers)  # a client retry
    assert first["ids"] == again["ids"] == [seeded_event_id(SEED, 1), seeded_event_id(SEED, 2)]
    driver.settle()
    stored = driver.runtime.store.events.list_events()
    assert sorted(e.internal_id for e in stored) == sorted(first["ids"])


def test_rest_api_needs_the_signing_key_and_dev_only_routes_are_gone(driver: Driver) -> None:
    assert driver.api("GET", "/v1/runs/01ABC")[0] == 401
    status, body = driver.api("GET", "/v1/runs/01ABC", headers=BEARER)
    assert status == 404 and "not found" in body["error"]
    assert driver.api("GET", "/dev")[0] == 404
    assert driver.api("POST", "/test/clock", {"advance_ms": 1})[0] == 404


def test_responses_say_cloud(driver: Driver) -> None:
    app = driver.api_handler
    event = {
        "rawPath": "/health",
        "requestContext": {"http": {"method": "GET"}},
        "headers": {},
    }
    from .driver import FakeLambdaContext

    response = app(event, FakeLambdaContext())
    assert response["statusCode"] == 200
    assert response["headers"]["x-inngest-server-kind"] == "cloud"


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("http://169.254.169.254/latest/meta-data", 400, "metadata"),
        ("ftp://example.com/x", 400, "http(s)"),
        ("http://127.0.0.1:9/api/inngest", 502, "could not reach"),
    ],
)
def test_sync_refuses_unsafe_urls_and_reports_unreachable_apps(
    driver: Driver, url: str, status: int, message: str
) -> None:
    got, body = driver.api("PUT", "/v1/apps/sync", {"url": url}, BEARER)
    assert got == status and message in body["error"]


def test_sync_needs_the_signing_key(driver: Driver) -> None:
    assert driver.api("PUT", "/v1/apps/sync", {"url": "https://example.com"})[0] == 401


def test_private_app_urls_are_refused_unless_allowed(stack: Stack, clock: VirtualClock) -> None:
    strict = Driver(
        stack, clock, lambda: make_runtime(stack, clock, WAYLINE_ALLOW_PRIVATE_APP_URLS="false")
    )
    status, body = strict.api("PUT", "/v1/apps/sync", {"url": "http://10.0.0.8/api"}, BEARER)
    assert status == 400 and "private" in body["error"]


# ---------------------------------------------------------------------------- the adapter


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    reply = {
        "method": scope["method"],
        "path": scope["path"],
        "query": scope["query_string"].decode(),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
        "body": message["body"].decode(),
    }
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"x-a", b"1"), (b"x-a", b"2"), (b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(reply).encode()})


async def binary(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"\xff\x00"})


def test_function_url_events_become_asgi_requests_and_back() -> None:
    event: dict[str, Any] = {
        "version": "2.0",
        "rawPath": "/v1/runs/a%2Fb",
        "rawQueryString": "limit=5&x=%20",
        "cookies": ["a=1", "b=2"],
        "headers": {"Content-Type": "application/json", "x-forwarded-proto": "https"},
        "requestContext": {"http": {"method": "post", "sourceIp": "198.51.100.1"}},
        "body": base64.b64encode(b'{"k": 1}').decode(),
        "isBase64Encoded": True,
    }
    response = FunctionUrlAdapter(echo)(event)
    assert response["statusCode"] == 201
    assert response["headers"]["x-a"] == "1,2"
    seen = json.loads(response["body"])
    assert seen["method"] == "POST" and seen["path"] == "/v1/runs/a/b"
    assert seen["query"] == "limit=5&x=%20"
    assert seen["headers"]["cookie"] == "a=1; b=2"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["body"] == '{"k": 1}'
    plain = FunctionUrlAdapter(echo)({**event, "body": "raw", "isBase64Encoded": False})
    assert json.loads(plain["body"])["body"] == "raw"
    out = FunctionUrlAdapter(binary)({"rawPath": "/"})
    assert out["isBase64Encoded"] and base64.b64decode(out["body"]) == b"\xff\x00"


async def crashing(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("boom")


def test_an_unhandled_error_is_a_500_not_a_failed_invocation() -> None:
    response = FunctionUrlAdapter(crashing)({"rawPath": "/"})
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"error": "internal server error"}


def test_the_api_function_serves_webhooks(driver: Driver) -> None:
    secret = "gh-secret-123456"
    definition = {
        "event": '"github/" + headers["x-github-event"]',
        "event_id": 'headers["x-github-delivery"]',
        "signature": {"scheme": "github", "secret": secret},
    }
    status, created = driver.api("POST", "/v1/webhooks", definition, BEARER)
    assert status == 201 and secret not in json.dumps(created)
    url = created["data"]["url"]
    payload = {"action": "opened", "number": 7}
    signature = hmac.new(secret.encode(), json.dumps(payload).encode(), hashlib.sha256).hexdigest()
    headers = {"x-github-event": "pull_request", "x-github-delivery": "d-1"}
    status, body = driver.api("POST", url, payload, {**headers, "x-hub-signature-256": "bad"})
    assert status == 401 and "signature" in body["error"]
    status, body = driver.api(
        "POST", url, payload, {**headers, "x-hub-signature-256": f"sha256={signature}"}
    )
    assert status == 200, body
    (stored,) = driver.runtime.store.events.list_events(name="github/pull_request")
    assert stored.internal_id == body["ids"][0] and stored.id == "d-1"
    assert stored.data == payload
