"""``POST /fn/register``: the payloads both official SDKs send, and clear 400s otherwise."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from wayline import signing

URL = "http://127.0.0.1:9/api/inngest"


def payload(**overrides: Any) -> dict[str, Any]:
    fn = {
        "id": "shop-send-email",
        "name": "send-email",
        "triggers": [{"event": "user/signed-up", "expression": "event.data.plan == 'pro'"}],
        "steps": {
            "step": {
                "id": "step",
                "name": "step",
                "runtime": {"type": "http", "url": f"{URL}?fnId=shop-send-email&stepId=step"},
                "retries": {"attempts": 3},
            }
        },
    }
    body: dict[str, Any] = {
        "url": URL,
        "deployType": "ping",
        "appname": "shop",
        "sdk": "py:v0.5.19",
        "v": "0.1",
        "framework": "fast_api",
        "functions": [fn],
    }
    body.update(overrides)
    return body


def with_fn(**fn_overrides: Any) -> dict[str, Any]:
    body = payload()
    body["functions"][0].update(fn_overrides)
    return body


def test_python_sdk_shape_registers(client: httpx.Client) -> None:
    resp = client.post("/fn/register", json=payload())
    assert resp.status_code == 200, resp.text
    assert resp.json()["ok"] is True and resp.json()["modified"] is True
    (fn,) = client.get("/v1/apps/shop/functions").json()["data"]
    assert fn["id"] == "shop-send-email"
    assert fn["retries"] == 3
    assert fn["triggers"] == [{"event": "user/signed-up", "expression": "event.data.plan == 'pro'"}]
    again = client.post("/fn/register", json=payload())
    assert again.json()["modified"] is False


def test_js_sdk_app_name_key_and_default_retries(client: httpx.Client) -> None:
    body = payload()
    del body["appname"]
    body["appName"] = "shop"
    del body["functions"][0]["steps"]["step"]["retries"]
    assert client.post("/fn/register", json=body).status_code == 200
    (fn,) = client.get("/v1/apps/shop/functions").json()["data"]
    assert fn["retries"] == 4


def broken(mutate: Any) -> dict[str, Any]:
    body = copy.deepcopy(payload())
    mutate(body)
    return body


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (broken(lambda b: b.pop("appname")), "appName is required"),
        (broken(lambda b: b.pop("url")), "url is required"),
        (broken(lambda b: b.update(url="ftp://x/y")), "absolute http(s) URL"),
        (broken(lambda b: b.update(functions=[])), "functions must be a non-empty array"),
        (broken(lambda b: b["functions"][0].pop("id")), "functions[0].id is required"),
        (broken(lambda b: b["functions"][0].update(triggers=[])), "triggers must be a non-empty"),
        (
            broken(lambda b: b["functions"][0].update(triggers=[{}])),
            "needs an event name or a cron expression",
        ),
        (
            broken(lambda b: b["functions"][0].update(triggers=[{"cron": "61 * * * *"}])),
            "triggers[0].cron",
        ),
        (
            broken(
                lambda b: b["functions"][0].update(triggers=[{"cron": "TZ=Mars/Base 0 9 * * *"}])
            ),
            "Mars/Base",
        ),
        (
            broken(
                lambda b: b["functions"][0].update(
                    triggers=[{"event": "a", "expression": "event.data.x ==="}]
                )
            ),
            "triggers[0].expression",
        ),
        (
            broken(
                lambda b: b["functions"][0].update(triggers=[{"event": f"e{i}"} for i in range(11)])
            ),
            "the limit is 10",
        ),
        (
            broken(lambda b: b["functions"][0]["steps"]["step"].update(retries={"attempts": 21})),
            "retries must be an integer from 0 to 20",
        ),
        (
            broken(lambda b: b["functions"][0].update(throttle={"limit": 1})),
            "throttle.period is required",
        ),
        (
            broken(lambda b: b["functions"][0].update(concurrency=[{"limit": 0}])),
            "concurrency[0].limit must be an integer from 1 to 100000",
        ),
        (
            broken(lambda b: b["functions"].append(copy.deepcopy(b["functions"][0]))),
            "duplicate function ids",
        ),
    ],
)
def test_bad_register_payloads_are_rejected(
    client: httpx.Client, body: dict[str, Any], message: str
) -> None:
    resp = client.post("/fn/register", json=body)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]
    assert client.get("/v1/apps/shop/functions").status_code == 404


def test_malformed_json_is_rejected(client: httpx.Client) -> None:
    resp = client.post("/fn/register", content=b"{", headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert "not valid JSON" in resp.json()["error"]


def test_sdk_expecting_a_cloud_server_is_refused(client: httpx.Client) -> None:
    resp = client.post(
        "/fn/register", json=payload(), headers={"x-inngest-expected-server-kind": "cloud"}
    )
    assert resp.status_code == 400
    assert "dev server" in resp.json()["error"]


def test_every_response_says_it_is_a_dev_server(client: httpx.Client) -> None:
    assert client.get("/health").headers["x-inngest-server-kind"] == "dev"


def test_signing_key_protects_the_api(secured: httpx.Client) -> None:
    assert secured.post("/fn/register", json=payload()).status_code == 401
    assert secured.get("/v1/events").status_code == 401
    token = signing.hash_signing_key("signkey-test-12345678")
    auth = {"authorization": f"Bearer {token}"}
    assert secured.post("/fn/register", json=payload(), headers=auth).status_code == 200
    assert secured.get("/v1/events", headers=auth).status_code == 200
    wrong = {"authorization": "Bearer " + signing.hash_signing_key("signkey-test-87654321")}
    assert secured.get("/v1/events", headers=wrong).status_code == 401


def test_metadata_endpoint_is_refused_even_in_dev(client: httpx.Client) -> None:
    body = payload(url="http://169.254.169.254/latest/meta-data")
    resp = client.post("/fn/register", json=body)
    assert resp.status_code == 400
    assert "metadata" in resp.json()["error"]
    body = payload()
    body["functions"][0]["steps"]["step"]["runtime"]["url"] = "http://[fd00:ec2::254]/x"
    assert client.post("/fn/register", json=body).status_code == 400
    assert client.get("/v1/apps/shop/functions").status_code == 404


def test_unscoped_cancel_is_accepted_with_a_warning(client: httpx.Client) -> None:
    body = payload()
    body["functions"][0]["cancel"] = [{"event": "user/deleted"}]
    resp = client.post("/fn/register", json=body)
    assert resp.status_code == 200
    (warning,) = resp.json()["warnings"]
    assert "shop-send-email" in warning and "user/deleted" in warning
