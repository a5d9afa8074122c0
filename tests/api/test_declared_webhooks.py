"""Webhooks declared in the sync payload (``webhooks``, sent by the Wayline SDK): stored as
the same definitions as ``POST /v1/webhooks`` under ``<app>-<id>``, replaced by the app's
next sync (API-made ones untouched), refused with a 400 naming the field, never echoed
with their secret."""

from __future__ import annotations

from typing import Any

import httpx

from .test_register_api import payload

SECRET = "whsec_declared_0123"
GITHUB = {
    "id": "github",
    "event": '"github/" + headers["x-github-event"]',
    "event_id": 'headers["x-github-delivery"]',
    "signature": {"scheme": "github", "secret": SECRET},
}


def hooks(client: httpx.Client) -> dict[str, dict[str, Any]]:
    return {h["id"]: h for h in client.get("/v1/webhooks").json()["data"]}


def test_a_sync_declares_replaces_and_removes_the_apps_webhooks(client: httpx.Client) -> None:
    made = client.post("/v1/webhooks", json={"name": "by-api", "event": '"x/y"'})
    assert made.status_code == 201
    api_id = made.json()["data"]["id"]

    assert client.post("/fn/register", json=payload(webhooks=[GITHUB])).status_code == 200
    found = hooks(client)
    declared = found["shop-github"]
    assert declared["app_id"] == "shop" and declared["url"] == "/webhooks/shop-github"
    assert declared["signature"] == {
        "scheme": "github",
        "header": "x-hub-signature-256",
        "tolerance_s": 300,
        "secret_set": True,
    }
    assert SECRET not in client.get("/v1/webhooks").text
    assert found[api_id]["app_id"] is None

    # The same declaration again changes nothing; a changed one keeps its id and URL.
    again = client.post("/fn/register", json=payload(webhooks=[GITHUB]))
    assert again.json()["modified"] is False
    changed = {**GITHUB, "data": "body.repository"}
    assert client.post("/fn/register", json=payload(webhooks=[changed])).status_code == 200
    after = hooks(client)["shop-github"]
    assert after["data"] == "body.repository" and after["created_at"] == declared["created_at"]

    # A sync without it (what an official SDK always sends) removes only the app's own.
    assert client.post("/fn/register", json=payload()).status_code == 200
    assert set(hooks(client)) == {api_id}


def test_a_bad_declaration_is_a_400_naming_the_field_and_stores_nothing(
    client: httpx.Client,
) -> None:
    weak = {**GITHUB, "signature": {"scheme": "github", "secret": "short"}}
    resp = client.post("/fn/register", json=payload(webhooks=[weak]))
    assert resp.status_code == 400
    assert (
        "webhooks[0] (github): signature.secret must be a string of at least 8"
        in (resp.json()["error"])
    )
    bad_id = client.post("/fn/register", json=payload(webhooks=[{**GITHUB, "id": "a/b"}]))
    assert bad_id.status_code == 400 and "webhooks[0].id" in bad_id.json()["error"]
    twice = client.post("/fn/register", json=payload(webhooks=[GITHUB, GITHUB]))
    assert twice.status_code == 400 and "duplicate webhook id 'github'" in twice.json()["error"]
    assert hooks(client) == {}
    assert client.get("/v1/apps/shop/functions").status_code == 404  # the app did not sync
