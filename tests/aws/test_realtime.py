"""Realtime on AWS (moto): the api function stores published messages in DynamoDB and
answers each subscribe with those after the cursor, ending the stream so the browser polls;
tokens are scoped as on ``wayline dev`` (tests/browser/test_realtime.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wayline import signing
from wayline.store.dynamodb_realtime import GAP_GRACE_MS, DynamoRealtimeLog, _pk, _sk
from wayline.store.dynamodb_table import key_item, n, s
from wayline.store.keys import Key

from .conftest import Stack, VirtualClock
from .driver import SIGNING_KEY, Driver, make_runtime

BEARER = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}


@pytest.fixture
def driver(stack: Stack, clock: VirtualClock) -> Driver:
    return Driver(stack, clock, lambda: make_runtime(stack, clock))


def _events(stream: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for line in stream.splitlines()
        if line.startswith("data: ")
    ]


def test_messages_are_stored_and_each_poll_answers_those_after_the_cursor(
    driver: Driver,
) -> None:
    for step in (1, 2):
        status, _ = driver.api(
            "POST",
            f"/v1/realtime/publish?channel=run:1&topic=progress&run_id=R{step}",
            {"step": step},
            BEARER,
        )
        assert status == 200
    driver.api("POST", "/v1/realtime/publish?channel=run:1&topic=hidden", {"x": 1}, BEARER)
    status, token = driver.api(
        "POST", "/v1/realtime/token", {"channel": "run:1", "topics": ["progress"]}, BEARER
    )
    assert status == 201
    key = token["data"]["key"]

    status, stream = driver.api("GET", f"/v1/realtime/subscribe?channel=run:1&token={key}")
    assert status == 200 and stream.startswith("retry: 2000")
    assert [(e["id"], e["data"], e["run_id"]) for e in _events(stream)] == [
        (1, {"step": 1}, "R1"),
        (2, {"step": 2}, "R2"),
    ]
    driver.api("POST", "/v1/realtime/publish?channel=run:1&topic=progress", {"step": 3}, BEARER)
    _, later = driver.api(
        "GET", f"/v1/realtime/subscribe?channel=run:1&token={key}", headers={"last-event-id": "3"}
    )
    assert [e["data"] for e in _events(later)] == [{"step": 3}]  # the hidden topic is skipped

    status, body = driver.api("GET", f"/v1/realtime/subscribe?channel=run:2&token={key}")
    assert status == 403 and body["field"] == "channel"
    assert driver.api("POST", "/v1/realtime/token", {"channel": "run:1", "topics": []})[0] == 401
    status, body = driver.api("POST", "/v1/realtime/token", {"channel": "run:1"}, BEARER)
    assert status == 400 and body["field"] == "topics"


def test_a_reader_waits_at_a_gap_until_it_is_filled_or_old(
    driver: Driver, clock: VirtualClock
) -> None:
    runtime = driver.runtime
    log = DynamoRealtimeLog(runtime.realtime._t, clock.now_ms)
    log.publish("c", "t", {"n": 1}, None)
    # Number 2 is taken by a publisher that has not written its message yet; 3 is written.
    counter = runtime.realtime._t.update(Key(_pk("c"), "SEQ"), "ADD #n :one", values={":one": n(1)})
    runtime.realtime._t.write(counter)
    log.publish("c", "t", {"n": 3}, None)
    assert [m.id for m in log.after("c", frozenset({"t"}), 0)] == [1]
    assert log.after("c", frozenset({"t"}), 1) == []

    clock.advance(GAP_GRACE_MS)  # number 2 is taken as lost
    assert [m.data for m in log.after("c", frozenset({"t"}), 1)] == [{"n": 3}]
    late = {**key_item(Key(_pk("c"), _sk(2))), "topic": s("t"), "data": s("{}"), "at": n(0)}
    runtime.realtime._t.write(runtime.realtime._t.put(late))
    assert [m.id for m in log.after("c", frozenset({"t"}), 3)] == []  # never out of order
