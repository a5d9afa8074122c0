"""Bad input to ``POST /e/{key}`` gets a clear 400 and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from wayline.engine.events import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_REQUEST,
    MAX_NAME_LENGTH,
    MAX_REQUEST_BYTES,
)


def stored_events(client: httpx.Client) -> list[dict[str, object]]:
    resp = client.get("/v1/events")
    assert resp.status_code == 200
    return list(resp.json()["data"])


def test_valid_event_is_stored_and_returns_its_id(client: httpx.Client) -> None:
    resp = client.post("/e/any", json={"name": "user/signed-up", "data": {"email": "a@b.c"}})
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == 200 and len(body["ids"]) == 1
    (event,) = stored_events(client)
    assert event["internal_id"] == body["ids"][0]
    assert event["id"] == body["ids"][0]  # no user id: the internal id stands in
    assert event["data"] == {"email": "a@b.c"}
    assert client.get(f"/v1/events/{body['ids'][0]}").json()["data"]["name"] == "user/signed-up"


def test_array_of_events_returns_ids_in_order(client: httpx.Client) -> None:
    resp = client.post("/e/any", json=[{"name": "a"}, {"name": "b"}, {"name": "c"}])
    ids = resp.json()["ids"]
    assert len(ids) == 3
    names = {e["internal_id"]: e["name"] for e in stored_events(client)}
    assert [names[i] for i in ids] == ["a", "b", "c"]


def test_user_data_inngest_key_is_stripped(client: httpx.Client) -> None:
    client.post("/e/any", json={"name": "a", "data": {"x": 1, "_inngest": {"fn_id": "evil"}}})
    (event,) = stored_events(client)
    assert event["data"] == {"x": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "no events"),
        (b'"just a string"', "must be a JSON object"),
        (json.dumps({"data": {}}).encode(), "events[0].name is required"),
        (json.dumps({"name": ""}).encode(), "events[0].name is required"),
        (json.dumps({"name": 5}).encode(), "events[0].name is required"),
        (json.dumps({"name": "inngest/function.failed"}).encode(), "reserved prefix"),
        (json.dumps({"name": "x" * (MAX_NAME_LENGTH + 1)}).encode(), f"limit is {MAX_NAME_LENGTH}"),
        (
            json.dumps({"name": "a", "data": [1, 2]}).encode(),
            "events[0].data must be a JSON object",
        ),
        (json.dumps({"name": "a", "user": "u"}).encode(), "events[0].user must be a JSON object"),
        (json.dumps({"name": "a", "id": 7}).encode(), "events[0].id must be a string"),
        (json.dumps({"name": "a", "ts": 5}).encode(), "outside 1980-01-01..2100-01-01"),
        (json.dumps({"name": "a", "ts": "yesterday"}).encode(), "events[0].ts must be a number"),
        (json.dumps([{"name": "ok"}, {"name": "inngest/x"}]).encode(), "events[1].name"),
        (
            json.dumps({"name": "big", "data": {"blob": "x" * MAX_EVENT_BYTES}}).encode(),
            f"limit is {MAX_EVENT_BYTES} bytes per event",
        ),
        (json.dumps([{"name": "a"}] * (MAX_EVENTS_PER_REQUEST + 1)).encode(), "the limit is 5000"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_events_are_rejected_whole(client: httpx.Client, body: bytes, message: str) -> None:
    resp = client.post("/e/any", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    payload = resp.json()
    assert message in payload["error"]
    assert payload["ids"] == [] and payload["status"] == 400
    assert stored_events(client) == []


def sized_event(size: int, name: str = "a") -> bytes:
    """An event whose JSON text is exactly ``size`` bytes."""
    shell = json.dumps({"name": name, "data": {"b": ""}}, separators=(",", ":"))
    return shell.replace('""', '"' + "x" * (size - len(shell)) + '"').encode()


def test_an_event_of_exactly_3_mib_is_accepted_and_one_byte_more_is_not(
    client: httpx.Client,
) -> None:
    over = b"[" + sized_event(10) + b"," + sized_event(MAX_EVENT_BYTES + 1) + b"]"
    resp = client.post("/e/any", content=over)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert f"events[1] is {MAX_EVENT_BYTES + 1} bytes; the limit is 3145728 bytes" in error
    assert stored_events(client) == []
    resp = client.post("/e/any", content=sized_event(MAX_EVENT_BYTES))
    assert resp.status_code == 200, resp.text
    [stored] = stored_events(client)
    assert isinstance(stored["data"], dict)
    assert len(stored["data"]["b"]) == MAX_EVENT_BYTES - len('{"name":"a","data":{"b":""}}')


def request_of(size: int) -> bytes:
    """A request body of exactly ``size`` bytes: events under 3 MiB, padded with spaces."""
    part = MAX_EVENT_BYTES - 1024
    count = size // (part + 1)
    events = [sized_event(part, name=f"e{i}") for i in range(count)]
    body = b"[" + b",".join(events) + b"]"
    return body[:-1] + b" " * (size - len(body)) + b"]"


def test_the_request_cap_is_16_mib_exactly(client: httpx.Client) -> None:
    over = request_of(MAX_REQUEST_BYTES + 1)
    resp = client.post("/e/any", content=over)
    assert resp.status_code == 400
    assert (
        f"request body is {MAX_REQUEST_BYTES + 1} bytes; the limit is 16777216 bytes"
        in resp.json()["error"]
    )
    assert stored_events(client) == []
    resp = client.post("/e/any", content=request_of(MAX_REQUEST_BYTES))
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["ids"]) == 5


def test_a_chunked_body_over_the_cap_is_refused_while_it_streams(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        body = request_of(MAX_REQUEST_BYTES + 1)
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    resp = client.post("/e/any", content=chunks())  # no Content-Length: chunked
    assert resp.status_code == 400
    assert "the limit is 16777216 bytes" in resp.json()["error"]
    assert stored_events(client) == []


def test_5000_events_are_accepted_and_5001_are_not(client: httpx.Client) -> None:
    resp = client.post(
        "/e/any", json=[{"name": f"n{i}"} for i in range(MAX_EVENTS_PER_REQUEST + 1)]
    )
    assert resp.status_code == 400
    assert "more than 5000 events in one request; the limit is 5000" in resp.json()["error"]
    assert stored_events(client) == []
    resp = client.post("/e/any", json=[{"name": f"n{i}"} for i in range(MAX_EVENTS_PER_REQUEST)])
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["ids"]) == MAX_EVENTS_PER_REQUEST


def test_seeded_ids_are_deterministic_and_a_retry_stores_nothing_new(client: httpx.Client) -> None:
    headers = {"x-inngest-event-id-seed": "1795355126808,AAECAwQFBgcICQ=="}
    first = client.post("/e/any", json=[{"name": "a"}, {"name": "b"}], headers=headers).json()
    again = client.post("/e/any", json=[{"name": "a"}, {"name": "b"}], headers=headers).json()
    assert first["ids"] == again["ids"]
    assert len(set(first["ids"])) == 2
    assert len(stored_events(client)) == 2


def test_event_keys_are_enforced_when_configured(secured: httpx.Client) -> None:
    bad = secured.post("/e/wrong", json={"name": "a"})
    assert bad.status_code == 401
    assert "event key" in bad.json()["error"]
    good = secured.post("/e/good-key", json={"name": "a"})
    assert good.status_code == 200


def test_unknown_ids_are_404(client: httpx.Client) -> None:
    for path in ("/v1/events/01ZZZ", "/v1/runs/01ZZZ"):
        resp = client.get(path)
        assert resp.status_code == 404
        assert "not found" in resp.json()["error"]
    assert client.delete("/v1/runs/01ZZZ").status_code == 404
    assert client.get("/v1/apps/nope/functions").status_code == 404
