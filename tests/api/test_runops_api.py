"""Run operations over the REST API: replies, status codes and what gets stored."""

from __future__ import annotations

from typing import Any

import httpx

URL = "http://127.0.0.1:9/api/inngest"


def register(client: httpx.Client, event: str = "shop/order.paid") -> str:
    fn = {
        "id": "shop-ship",
        "name": "ship",
        "triggers": [{"event": event}],
        "steps": {
            "step": {
                "id": "step",
                "name": "step",
                "runtime": {"type": "http", "url": f"{URL}?fnId=shop-ship&stepId=step"},
            }
        },
    }
    body = {"url": URL, "appname": "shop", "sdk": "py:v0.5.19", "functions": [fn]}
    assert client.post("/fn/register", json=body).status_code == 200
    return "shop-ship"


def send(client: httpx.Client, name: str, data: dict[str, Any], **extra: Any) -> str:
    resp = client.post("/e/key", json={"name": name, "data": data, **extra})
    return str(resp.json()["ids"][0])


def runs_of(client: httpx.Client, event_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/v1/events/{event_id}/runs").json()["data"])


def test_event_replay_stores_a_new_linked_event_and_routes_it(client: httpx.Client) -> None:
    register(client)
    original = send(client, "shop/order.paid", {"order": 7}, id="order-7")
    resp = client.post(f"/v1/events/{original}/replay")
    assert resp.status_code == 201, resp.text
    new_id = resp.json()["data"]["id"]
    assert new_id != original
    stored = client.get(f"/v1/events/{new_id}").json()["data"]
    assert stored["name"] == "shop/order.paid" and stored["data"] == {"order": 7}
    assert stored["replay_of"] == original
    # A fresh event id: the function's event-id dedupe does not swallow the replay.
    assert stored["id"] != "order-7"
    assert len(runs_of(client, original)) == 1 and len(runs_of(client, new_id)) == 1


def test_event_replay_of_an_unknown_event_is_404(client: httpx.Client) -> None:
    resp = client.post("/v1/events/01HNOPE/replay")
    assert resp.status_code == 404 and "01HNOPE" in resp.json()["error"]


def test_an_event_wayline_emitted_itself_cannot_be_replayed(client: httpx.Client) -> None:
    register(client)
    event = send(client, "shop/order.paid", {})
    (run,) = runs_of(client, event)
    assert client.delete(f"/v1/runs/{run['run_id']}").status_code in (200, 204)
    names = {e["name"]: e["internal_id"] for e in client.get("/v1/events").json()["data"]}
    cancelled = names["inngest/function.cancelled"]
    before = len(client.get("/v1/events").json()["data"])
    resp = client.post(f"/v1/events/{cancelled}/replay")
    assert resp.status_code == 409 and "cannot be replayed" in resp.json()["error"]
    assert len(client.get("/v1/events").json()["data"]) == before


def test_rerun_errors_name_the_problem(client: httpx.Client) -> None:
    register(client)
    event = send(client, "shop/order.paid", {})
    (run,) = runs_of(client, event)
    live = client.post(f"/v1/runs/{run['run_id']}/rerun", json={"from": "start"})
    assert live.status_code == 409 and "still Queued" in live.json()["error"]
    redrive = client.post(f"/v1/runs/{run['run_id']}/rerun", json={"from": "failed_step"})
    assert redrive.status_code == 409 and "only a Failed run" in redrive.json()["error"]
    bad = client.post(f"/v1/runs/{run['run_id']}/rerun", json={"from": "middle"})
    assert bad.status_code == 400 and "from must be one of" in bad.json()["error"]
    not_json = client.post(f"/v1/runs/{run['run_id']}/rerun", content=b"{")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]
    missing = client.post("/v1/runs/01HNOPE/rerun", json={})
    assert missing.status_code == 404


def test_run_operations_need_the_signing_key(secured: httpx.Client) -> None:
    assert secured.post("/v1/runs/x/rerun", json={}).status_code == 401
    assert secured.post("/v1/events/x/replay").status_code == 401


def test_pause_and_resume_show_in_the_function_list(client: httpx.Client) -> None:
    register(client)
    paused = client.post("/v1/apps/shop/functions/ship/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["data"]["paused"] is True and paused.json()["data"]["changed"] is True
    (listed,) = client.get("/v1/apps/shop/functions").json()["data"]
    assert listed["paused"] is True and listed["paused_at"]
    event = send(client, "shop/order.paid", {})
    (run,) = runs_of(client, event)
    assert run["status"] == "Skipped"
    assert client.get(f"/v1/runs/{run['run_id']}").json()["data"]["cancel_reason"] == (
        "function paused"
    )
    resumed = client.post("/v1/apps/shop/functions/shop-ship/resume")
    assert resumed.json()["data"]["paused"] is False
    (listed,) = client.get("/v1/apps/shop/functions").json()["data"]
    assert listed["paused"] is False and listed["paused_at"] is None
    missing = client.post("/v1/apps/shop/functions/nope/pause")
    assert missing.status_code == 404 and "shop-nope" in missing.json()["error"]


WINDOW = {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}


def test_bulk_rerun_dry_run_then_a_job_to_follow(client: httpx.Client) -> None:
    register(client)
    client.post("/v1/apps/shop/functions/ship/pause")
    skipped = {
        runs_of(client, send(client, "shop/order.paid", {"n": n}))[0]["run_id"] for n in "ab"
    }
    client.post("/v1/apps/shop/functions/ship/resume")
    body = {"function_id": "shop-ship", "status": ["Skipped"], **WINDOW}

    dry = client.post("/v1/reruns", json={**body, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["data"]["count"] == 2 and set(dry.json()["data"]["run_ids"]) == skipped

    job = client.post("/v1/reruns", json=body)
    assert job.status_code == 202, job.text
    job_id = job.json()["data"]["id"]
    progress = client.get(f"/v1/reruns/{job_id}").json()["data"]
    assert progress["total"] == 2 and progress["pending"] == 2 and progress["rate_per_s"] == 10
    assert client.get("/v1/reruns/01HNOPE").status_code == 404


def test_bulk_rerun_refuses_an_unbounded_filter(client: httpx.Client) -> None:
    register(client)
    for body, field in [
        ({}, "function_id"),
        ({"function_id": "shop-ship", **WINDOW}, "status"),
        ({"function_id": "shop-ship", "status": ["Failed"]}, "since"),
        ({"function_id": "shop-ship", "status": ["Failed"], **WINDOW, "dry_run": "yes"}, "dry_run"),
    ]:
        resp = client.post("/v1/reruns", json=body)
        assert resp.status_code == 400 and field in resp.json()["error"], resp.text
    unknown = {"function_id": "shop-nope", "status": ["Failed"], **WINDOW}
    assert client.post("/v1/reruns", json=unknown).status_code == 404
