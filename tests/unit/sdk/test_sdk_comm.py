"""The framework-agnostic serve endpoint: routing, errors, out-of-band sync and ``use_api``,
with the server's API played by a local HTTP server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from sdk_local_api import LocalApi, Seen

import wayline
from wayline import signing
from wayline.engine.ids import hash_step_id
from wayline.sdk.comm import CommHandler, CommRequest

KEY = "signkey-test-" + "12" * 32
FALLBACK = "signkey-test-" + "34" * 32
APP_URL = "http://app.internal:3000/api/inngest"


def _handler(api_url: str, **client_args: Any) -> CommHandler:
    settings: dict[str, Any] = {"app_id": "shop", "is_dev": True, "base_url": api_url}
    settings.update(client_args)
    client = wayline.Wayline(environ={}, **settings)

    @client.function(id="hello", trigger=wayline.TriggerEvent(event="x"))
    async def hello(ctx: wayline.Context) -> dict[str, Any]:
        a = await ctx.step.run("a", lambda: 1)
        return {"a": a, "events": len(ctx.events), "who": ctx.event.data.get("who")}

    serve_args = {k: client_args.pop(k) for k in ("serve_origin", "serve_path") if k in client_args}
    return CommHandler(client, [hello], framework="test", **serve_args)


def _call(body: Any, query: dict[str, str] | None = None) -> CommRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    query = {"fnId": "shop-hello", "stepId": "step"} if query is None else query
    return CommRequest("POST", APP_URL, {}, query, raw)


CALL = {
    "event": {"name": "x", "data": {"who": "ada"}},
    "events": [{"name": "x", "data": {"who": "ada"}}],
    "steps": {},
    "ctx": {"run_id": "r1", "attempt": 0, "disable_immediate_execution": False},
}


def test_use_api_fetches_the_batch_and_the_memos(local_api: LocalApi) -> None:
    batch = [{"name": "x", "data": {"who": "bob"}}, {"name": "x", "data": {"who": "cy"}}]
    local_api.routes[("GET", "/v0/runs/r1/batch")] = (200, batch)
    local_api.routes[("GET", "/v0/runs/r1/actions")] = (200, {hash_step_id("a"): {"data": 5}})
    handler = _handler(local_api.url, signing_key=KEY)
    trimmed = {**CALL, "events": [], "steps": {}, "use_api": True}
    response = asyncio.run(handler.handle(_call(trimmed)))
    assert response.status == 200
    assert json.loads(response.body) == {"a": 5, "events": 2, "who": "bob"}
    assert {s.headers["authorization"] for s in local_api.seen} == {
        f"Bearer {signing.hash_signing_key(KEY)}"
    }


def test_use_api_failures_are_a_500(local_api: LocalApi) -> None:
    local_api.routes[("GET", "/v0/runs/r1/batch")] = (500, {"error": "down"})
    response = _handler(local_api.url).handle_sync(_call({**CALL, "use_api": True}))
    assert response.status == 500
    assert "fetching run batch: HTTP 500" in json.loads(response.body)["message"]


@pytest.mark.parametrize(
    ("body", "query", "status", "code"),
    [
        (CALL, {"stepId": "step"}, 500, "query_param_missing"),
        (CALL, {"fnId": "shop-nope"}, 500, "function_not_found"),
        (b"{not json", None, 500, "body_invalid"),
        ({"steps": {}}, None, 500, "body_invalid"),
        (CALL, {"fnId": "hello", "stepId": "step"}, 206, None),  # pre-0.3 unprefixed ids
        (CALL, {"probe": "trust"}, 200, None),
    ],
)
def test_call_routing(body: Any, query: dict[str, str], status: int, code: str | None) -> None:
    response = _handler("http://127.0.0.1:9").handle_sync(_call(body, query))
    assert response.status == status
    if code is not None:
        assert json.loads(response.body)["code"] == code


def _put(server_kind: str | None = None) -> CommRequest:
    headers = {} if server_kind is None else {"X-Inngest-Server-Kind": server_kind}
    return CommRequest("PUT", APP_URL + "?deployId=d1", headers, {"deployId": "d1"}, b"")


def test_out_of_band_sync_posts_the_config_and_relays_the_reply(local_api: LocalApi) -> None:
    local_api.routes[("POST", "/fn/register")] = (200, {"ok": True, "modified": True})
    response = _handler(local_api.url).handle_sync(_put("dev"))
    assert response.status == 200
    assert json.loads(response.body) == {"ok": True, "modified": True}
    assert response.headers["x-inngest-sync-kind"] == "out_of_band"
    (register,) = local_api.seen
    assert register.path == "/fn/register?deployId=d1"
    assert register.body["url"] == APP_URL
    assert register.body["appName"] == "shop"
    assert [f["id"] for f in register.body["functions"]] == ["shop-hello"]
    assert register.headers["x-inngest-expected-server-kind"] == "dev"
    assert "authorization" not in register.headers  # no key, no auth (dev)


def test_a_refused_sync_keeps_the_servers_status(local_api: LocalApi) -> None:
    local_api.routes[("POST", "/fn/register")] = (400, {"error": "function shop-hello: bad cron"})
    response = _handler(local_api.url).handle_sync(_put())
    assert response.status == 400  # the official SDK would answer 200 here
    assert json.loads(response.body) == {"error": "function shop-hello: bad cron"}


def test_sync_retries_with_the_fallback_key(local_api: LocalApi) -> None:
    primary = f"Bearer {signing.hash_signing_key(KEY)}"

    def register(request: Seen) -> tuple[int, Any]:
        if request.headers.get("authorization") == primary:
            return 401, {"error": "unknown key"}
        return 200, {"ok": True}

    local_api.routes[("POST", "/fn/register")] = register
    handler = _handler(local_api.url, signing_key=KEY, signing_key_fallback=FALLBACK)
    assert handler.handle_sync(_put()).status == 200
    assert [s.headers["authorization"] for s in local_api.seen] == [
        primary,
        f"Bearer {signing.hash_signing_key(FALLBACK)}",
    ]


def test_a_sync_from_the_other_kind_of_server_is_refused(local_api: LocalApi) -> None:
    response = _handler(local_api.url).handle_sync(_put("cloud"))
    assert response.status == 400
    assert json.loads(response.body)["code"] == "server_kind_mismatch"
    assert local_api.seen == []


def test_serve_origin_and_path_override_the_request_url(local_api: LocalApi) -> None:
    local_api.routes[("POST", "/fn/register")] = (200, {"ok": True})
    handler = _handler(
        local_api.url, serve_origin="https://public.example.com", serve_path="/hooks/wayline"
    )
    handler.handle_sync(_put())
    body = local_api.seen[0].body
    assert body["url"] == "https://public.example.com/hooks/wayline"
    runtime = body["functions"][0]["steps"]["step"]["runtime"]["url"]
    assert runtime.startswith("https://public.example.com/hooks/wayline?fnId=shop-hello")


def test_an_unreachable_server_is_a_registration_failure() -> None:
    response = _handler("http://127.0.0.1:9").handle_sync(_put())
    assert response.status == 500
    body = json.loads(response.body)
    assert body["code"] == "registration_failed"
    assert "127.0.0.1:9/fn/register" in body["message"]


def test_production_out_of_band_sync_needs_a_server_url() -> None:
    client = wayline.Wayline(app_id="shop", signing_key=KEY, environ={})

    @client.function(id="hello", trigger=wayline.TriggerEvent(event="x"))
    def hello(ctx: wayline.SyncContext) -> None: ...

    handler = CommHandler(client, [hello], framework="test")
    body = signing.canonical_json({"url": APP_URL})

    signature = signing.sign(body, KEY, unix_s=int(time.time()))
    request = CommRequest("PUT", APP_URL, {"x-inngest-signature": signature}, {}, body)
    response = handler.handle_sync(request)
    assert response.status == 500
    assert "no API URL to sync with" in json.loads(response.body)["message"]
