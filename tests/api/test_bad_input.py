"""Issue 12, defects 3 and 4: input the server used to store (and then fail on) or answer
with a 500 now gets a 400 that names the field and the limit, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from wayline.engine.json_input import MAX_DEPTH

from .test_register_api import payload, with_fn


def post_raw(client: httpx.Client, path: str, body: bytes, **headers: str) -> httpx.Response:
    return client.post(path, content=body, headers={"content-type": "application/json", **headers})


def stored_events(client: httpx.Client) -> list[Any]:
    resp = client.get("/v1/events")
    assert resp.status_code == 200, resp.text  # a stored NaN used to make this a 500
    return list(resp.json()["data"])


def stored_functions(client: httpx.Client) -> int:
    return int(client.get("/dev").json()["functions"])


def nested(depth: int) -> bytes:
    return b'{"name": "deep", "data": {"x": ' + b"[" * depth + b"]" * depth + b"}}"


# ------------------------------------------------------------------ event API


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_non_finite_numbers_are_refused_naming_the_field(client: httpx.Client, number: str) -> None:
    body = f'[{{"name": "ok"}}, {{"name": "a", "data": {{"x": {{"y": {number}}}}}}}]'.encode()
    resp = post_raw(client, "/e/key", body)
    assert resp.status_code == 400, resp.text
    assert "events[1].data.x.y: non-finite number" in resp.json()["error"]
    assert stored_events(client) == []


def test_integers_beyond_a_double_are_refused(client: httpx.Client) -> None:
    resp = post_raw(client, "/e/key", b'{"name": "a", "data": {"n": 1' + b"0" * 400 + b"}}")
    assert resp.status_code == 400
    assert "events[0].data.n: number out of range" in resp.json()["error"]
    assert stored_events(client) == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 100_000])
def test_deep_nesting_is_refused_with_the_limit(client: httpx.Client, depth: int) -> None:
    resp = post_raw(client, "/e/key", nested(depth))
    assert resp.status_code == 400, resp.text
    assert f"nested too deeply; the limit is {MAX_DEPTH} levels" in resp.json()["error"]
    assert stored_events(client) == []


def test_nesting_within_the_limit_is_accepted(client: httpx.Client) -> None:
    resp = post_raw(client, "/e/key", nested(MAX_DEPTH - 3))
    assert resp.status_code == 200, resp.text
    assert len(stored_events(client)) == 1


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"name": "a", "data": {"s": "\\ud800"}}', "events[0].data.s"),
        (b'{"name": "a", "data": {"\\udfff": 1}}', "events[0].data key"),
        (b'{"name": "a\\ud83d"}', "events[0].name"),
        ('{"name": "a", "data": {"s": "\ud800"}}'.encode("utf-8", "surrogatepass"), "data.s"),
    ],
)
def test_lone_surrogates_are_refused(client: httpx.Client, body: bytes, where: str) -> None:
    resp = post_raw(client, "/e/key", body)
    assert resp.status_code == 400, resp.text
    assert where in resp.json()["error"] and "surrogate" in resp.json()["error"]
    assert stored_events(client) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("user/signed\nup", "control character '\\n'"),
        ("a\x00b", "control character '\\x00'"),
        ("a\u2028b", "control character"),
        ("Inngest/function.failed", "reserved prefix 'inngest/'"),
        ("INNGEST/anything", "reserved prefix 'inngest/'"),
    ],
)
def test_bad_event_names_are_refused(client: httpx.Client, name: str, message: str) -> None:
    resp = client.post("/e/key", json={"name": name})
    assert resp.status_code == 400, resp.text
    assert "events[0].name" in resp.json()["error"] and message in resp.json()["error"]
    assert stored_events(client) == []


@pytest.mark.parametrize("seed", ["garbage", "123", "0,AAAAAAAAAAAAAA==", "1700000000000,!!!"])
def test_a_malformed_event_id_seed_is_refused_naming_the_header(
    client: httpx.Client, seed: str
) -> None:
    resp = client.post("/e/key", json={"name": "a"}, headers={"x-inngest-event-id-seed": seed})
    assert resp.status_code == 400, resp.text
    assert "x-inngest-event-id-seed" in resp.json()["error"]
    assert stored_events(client) == []


def test_a_valid_event_id_seed_still_fixes_the_ids(client: httpx.Client) -> None:
    headers = {"x-inngest-event-id-seed": "1700000000000,AAECAwQFBgcICQ=="}
    first = client.post("/e/key", json={"name": "a"}, headers=headers).json()["ids"]
    again = client.post("/e/key", json={"name": "a"}, headers=headers).json()["ids"]
    assert first == again and len(first) == 1


# ------------------------------------------------------------------ register


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (payload(url="http://[::1"), "url is not a valid URL"),
        (payload(url="http://exa mple.com/api"), "url must be an ASCII URL without spaces"),
        (payload(url="http://127.0.0.1:99999/api"), "url is not a valid URL: Port out of range"),
        (payload(url="http://0xA9FEA9FE/api"), "cloud metadata endpoint"),
        (with_fn(triggers=[{"cron": "1-0 * * * *"}]), "minute range '1-0' runs backwards"),
        (with_fn(triggers=[{"cron": "*/99999999999999 * * * *"}]), "must be from 1 to 60"),
        (with_fn(triggers=[{"event": "a", "expression": ""}]), "triggers[0].expression is empty"),
        (with_fn(triggers=[{"event": "a", "expression": "  "}]), "expression is empty"),
        (with_fn(triggers=[{"event": "a\nb"}]), "triggers[0].event contains the control"),
        (with_fn(triggers=[{"cron": 5, "event": "a"}]), "triggers[0].cron must be a string"),
    ],
)
def test_bad_registrations_are_refused(
    client: httpx.Client, body: dict[str, Any], message: str
) -> None:
    resp = client.post("/fn/register", json=body)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]
    assert stored_functions(client) == 0


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(with_fn(retries=3)).replace("3", "NaN", 1).encode(),
        json.dumps(payload()).replace('"shop"', '"sh\\udc00op"').encode(),
        b'{"url": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
    ids=["nan", "surrogate", "deep"],
)
def test_register_bodies_go_through_the_same_checks(client: httpx.Client, raw: bytes) -> None:
    resp = post_raw(client, "/fn/register", raw)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"].startswith("body")
    assert stored_functions(client) == 0


# ------------------------------------------------------------------ REST bodies


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"function_id": "send-email", "app_id": "shop", "started_before": "2030-01-01T00:00:00Z",
          "if": 5}, "if must be a string"),
        ({"function_id": 5, "started_before": "2030-01-01T00:00:00Z"}, "function_id must be"),
        ({"function_id": "x", "started_before": ["now"]}, "started_before must be a string"),
    ],
)  # fmt: skip
def test_cancellation_fields_must_be_strings(
    client: httpx.Client, body: dict[str, Any], message: str
) -> None:
    assert client.post("/fn/register", json=payload()).status_code == 200
    resp = client.post("/v1/cancellations", json=body)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["error"]


def test_cancellation_body_refuses_nan(client: httpx.Client) -> None:
    resp = post_raw(client, "/v1/cancellations", b'{"function_id": NaN}')
    assert resp.status_code == 400
    assert "body.function_id: non-finite number" in resp.json()["error"]
