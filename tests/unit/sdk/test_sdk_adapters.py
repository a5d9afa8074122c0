"""Framework adapters turn their requests into the same ``CommRequest`` and back.

AWS Lambda gets the closest look (API Gateway v1, v2 / Function URL, base64 bodies,
signatures over the decoded body); Starlette and Flask are driven in-process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import fastapi
import flask
import httpx
import pytest
from starlette.applications import Starlette

import wayline
import wayline.aws_lambda
import wayline.fastapi
import wayline.flask
import wayline.starlette
from wayline import signing

KEY = "signkey-prod-" + "ab" * 32
NOW_BODY = {
    "event": {"name": "x", "data": {"who": "ada"}},
    "events": [{"name": "x", "data": {"who": "ada"}}],
    "steps": {},
    "use_api": False,
    "ctx": {"run_id": "r1", "attempt": 0, "disable_immediate_execution": False},
}


def _functions(client: wayline.Wayline) -> list[wayline.Function[Any, Any]]:
    @client.function(id="hello", trigger=wayline.TriggerEvent(event="x"))
    def hello(ctx: wayline.SyncContext) -> str:
        return f"hello {ctx.event.data['who']}"

    return [hello]


def _v2_event(method: str, body: bytes, *, query: str = "", **headers: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": "/api/inngest",
        "rawQueryString": query,
        "headers": {"host": "abc.lambda-url.eu-west-1.on.aws", **headers},
        "requestContext": {"http": {"method": method, "path": "/api/inngest"}},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def _v1_event(method: str, body: bytes, *, query: dict[str, str], **headers: str) -> dict[str, Any]:
    return {
        "httpMethod": method,
        "path": "/prod/api/inngest",
        "headers": {"Host": "api.example.com", **headers},
        "multiValueHeaders": {"X-Forwarded-Proto": ["https"]},
        "queryStringParameters": query,
        "requestContext": {"domainName": "api.example.com"},
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def test_function_url_v2_request() -> None:
    request = wayline.aws_lambda.to_request(
        _v2_event("POST", b'{"a":1}', query="fnId=app-fn&stepId=step", **{"X-Custom": "1"})
    )
    assert request.method == "POST"
    assert (
        request.url == "https://abc.lambda-url.eu-west-1.on.aws/api/inngest?fnId=app-fn&stepId=step"
    )
    assert request.query == {"fnId": "app-fn", "stepId": "step"}
    assert request.headers["x-custom"] == "1"
    assert request.body == b'{"a":1}'


def test_api_gateway_v1_request() -> None:
    request = wayline.aws_lambda.to_request(_v1_event("PUT", b"{}", query={"deployId": "d"}))
    assert request.method == "PUT"
    assert request.url == "https://api.example.com/prod/api/inngest?deployId=d"
    assert request.headers["x-forwarded-proto"] == "https"
    assert request.body == b"{}"


def test_a_signed_base64_call_through_the_lambda_handler() -> None:
    client = wayline.Wayline(app_id="app", signing_key=KEY, environ={})
    handler = wayline.aws_lambda.serve(client, _functions(client))
    body = signing.canonical_json(NOW_BODY)
    signature = signing.sign(body, KEY, unix_s=int(time.time()))
    event = _v2_event(
        "POST", body, query="fnId=app-hello&stepId=step", **{"x-inngest-signature": signature}
    )
    response = handler(event, None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == "hello ada"
    assert response["headers"]["x-inngest-framework"] == "aws_lambda"
    assert "x-inngest-signature" in response["headers"]
    unsigned = handler(_v2_event("POST", body, query="fnId=app-hello&stepId=step"), None)
    assert unsigned["statusCode"] == 401


def test_lambda_v1_get_in_dev_mode() -> None:
    client = wayline.Wayline(app_id="app", is_dev=True, environ={})
    handler = wayline.aws_lambda.serve(client, _functions(client))
    response = handler(_v1_event("GET", b"", query={}), None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["function_count"] == 1


def test_starlette_adapter() -> None:
    client = wayline.Wayline(app_id="app", is_dev=True, environ={})
    app = Starlette()
    wayline.starlette.serve(app, client, _functions(client), serve_path="/wayline")

    async def go() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            inspected = await http.get("/wayline")
            called = await http.post("/wayline?fnId=app-hello&stepId=step", json=NOW_BODY)
            return inspected, called

    inspected, called = asyncio.run(go())
    assert inspected.status_code == 200 and inspected.json()["mode"] == "dev"
    assert called.status_code == 200 and called.json() == "hello ada"
    assert called.headers["x-inngest-framework"] == "starlette"


def test_fastapi_adapter_serves_outside_the_openapi_schema() -> None:
    client = wayline.Wayline(app_id="app", is_dev=True, environ={})
    app = fastapi.FastAPI()
    wayline.fastapi.serve(app, client, _functions(client))

    async def go() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            inspected = await http.get("/api/inngest")
            called = await http.post("/api/inngest?fnId=app-hello&stepId=step", json=NOW_BODY)
            return inspected, called, await http.get("/openapi.json")

    inspected, called, schema = asyncio.run(go())
    assert inspected.status_code == 200 and inspected.json()["mode"] == "dev"
    assert called.status_code == 200 and called.json() == "hello ada"
    assert called.headers["x-inngest-framework"] == "fast_api"
    assert "/api/inngest" not in schema.json()["paths"]


def test_flask_adapter_serves_async_functions_without_flask_async() -> None:
    client = wayline.Wayline(app_id="app", is_dev=True, environ={})

    @client.function(id="hello", trigger=wayline.TriggerEvent(event="x"))
    async def hello(ctx: wayline.Context) -> str:
        return await ctx.step.run("greet", lambda: f"hello {ctx.event.data['who']}")

    app = flask.Flask("test")
    wayline.flask.serve(app, client, [hello])
    http = app.test_client()
    first = http.post("/api/inngest?fnId=app-hello&stepId=step", json=NOW_BODY)
    assert first.status_code == 206
    assert first.headers["x-inngest-framework"] == "flask"
    memo = {first.get_json()[0]["id"]: {"data": first.get_json()[0]["data"]}}
    second = http.post("/api/inngest?fnId=app-hello&stepId=step", json={**NOW_BODY, "steps": memo})
    assert second.status_code == 200 and second.get_json() == "hello ada"
    assert http.delete("/api/inngest").status_code == 405


def test_adapters_are_reachable_from_the_package() -> None:
    import importlib

    package = importlib.import_module("wayline")
    assert package.fastapi.serve is not None
    assert package.testing.run is not None
    with pytest.raises(AttributeError):
        _ = package.not_a_module
