"""``GET /v1/runs``: filters, paging, the ``if`` filter's scan report, and 400s that name
the parameter. Runs are made the real way: a registered app and events sent to it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

URL = "http://127.0.0.1:9/api/inngest"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _function(fn_id: str, event: str) -> dict[str, Any]:
    return {
        "id": fn_id,
        "name": fn_id,
        "triggers": [{"event": event}],
        "steps": {
            "step": {
                "id": "step",
                "name": "step",
                "runtime": {"type": "http", "url": f"{URL}?fnId={fn_id}&stepId=step"},
            }
        },
    }


@pytest.fixture
def seeded(client: httpx.Client) -> dict[str, list[str]]:
    """Two functions; five events: users u0..u4 for "shop-a", and two for "shop-b"."""
    body = {
        "url": URL,
        "deployType": "ping",
        "appname": "shop",
        "sdk": "py:v0.5",
        "v": "0.1",
        "functions": [_function("shop-a", "shop/a"), _function("shop-b", "shop/b")],
    }
    assert client.post("/fn/register", json=body).status_code == 200
    for n in range(5):
        client.post("/e/key", json={"name": "shop/a", "data": {"user": f"u{n}"}})
    client.post("/e/key", json=[{"name": "shop/b", "data": {"user": "u1"}}, {"name": "shop/b"}])
    runs = client.get("/v1/runs").json()["data"]
    ids = {fn: [r["run_id"] for r in runs if r["function_id"] == fn] for fn in ("shop-a", "shop-b")}
    return ids


def _search(client: httpx.Client, **params: Any) -> dict[str, Any]:
    resp = client.get("/v1/runs", params=params)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_lists_every_run_newest_first_with_iso_ms_times(
    client: httpx.Client, seeded: dict[str, list[str]]
) -> None:
    body = _search(client)
    runs = body["data"]
    assert len(runs) == 7
    assert [r["run_id"] for r in runs] == sorted((r["run_id"] for r in runs), reverse=True)
    assert body["metadata"] == {"cursor": None, "scanned": 7}
    assert {r["status"] for r in runs} == {"Queued"}
    for run in runs:
        assert ISO_MS.match(run["created_at"]) and ISO_MS.match(run["run_started_at"])


def test_filters_and_paging(client: httpx.Client, seeded: dict[str, list[str]]) -> None:
    a = seeded["shop-a"]
    client.delete(f"/v1/runs/{a[0]}")
    assert [r["run_id"] for r in _search(client, status="Cancelled")["data"]] == [a[0]]
    statuses = _search(client, function_id="shop-a", status="cancelled,queued")["data"]
    assert [r["run_id"] for r in statuses] == a
    twice = client.get("/v1/runs", params=[("status", "Cancelled"), ("status", "Queued")])
    assert len(twice.json()["data"]) == 7
    first = _search(client, function_id="shop-a", limit=3)
    assert [r["run_id"] for r in first["data"]] == a[:3]
    rest = _search(client, function_id="shop-a", limit=3, cursor=first["metadata"]["cursor"])
    assert [r["run_id"] for r in rest["data"]] == a[3:]
    assert rest["metadata"]["cursor"] is None
    event_id = first["data"][0]["event_id"]
    assert [r["run_id"] for r in _search(client, event_id=event_id)["data"]] == [a[0]]
    created = first["data"][0]["created_at"]
    assert len(_search(client, since=created)["data"]) == 7  # the fixed clock: one instant
    assert _search(client, until=created)["data"] == []
    assert _search(client, until="1800000000001")["data"] != []  # epoch ms works too
    blank = {name: "" for name in ("function_id", "status", "since", "until", "if", "cursor")}
    assert len(_search(client, **blank)["data"]) == 7  # empty form fields filter nothing


def test_if_filters_on_the_trigger_event_and_reports_the_scan(
    client: httpx.Client, seeded: dict[str, list[str]]
) -> None:
    body = _search(client, **{"if": 'event.data.user == "u1"'})
    assert {r["function_id"] for r in body["data"]} == {"shop-a", "shop-b"}
    assert len(body["data"]) == 2
    assert body["metadata"] == {"cursor": None, "scanned": 7}
    only_a = _search(client, function_id="shop-a", limit=1, **{"if": "event.data.user > 'u2'"})
    assert [r["run_id"] for r in only_a["data"]] == [seeded["shop-a"][0]]
    assert only_a["metadata"]["scanned"] == 1 and only_a["metadata"]["cursor"]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"status": "Done"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"cursor": "%%%"}, "cursor"),
        ({"if": "event.data.user =="}, "if"),
        ({"function": "shop-a"}, "function"),
        ([("limit", "1"), ("limit", "2")], "limit"),
    ],
)
def test_bad_parameters_get_a_400_naming_them(
    client: httpx.Client, params: Any, parameter: str
) -> None:
    resp = client.get("/v1/runs", params=params)
    assert resp.status_code == 400
    body = resp.json()
    assert body["parameter"] == parameter
    assert parameter in body["error"]


def test_run_search_needs_the_signing_key(secured: httpx.Client) -> None:
    assert secured.get("/v1/runs").status_code == 401
    auth = {"Authorization": "Bearer signkey-test-12345678"}
    assert secured.get("/v1/runs", headers=auth).json()["data"] == []
