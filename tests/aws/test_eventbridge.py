"""wayline.aws.eventbridge: batching, per-entry retries, ids, and the bus -> SQS wire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from wayline.aws.eventbridge import (
    EventBus,
    PublishResult,
    event_seeds,
    parse_bus_message,
    raise_for_failures,
)
from wayline.engine.ids import seeded_event_id
from wayline.errors import StoreError, ValidationError

from .conftest import Stack, provision


def receive_all(stack: Stack, url: str, *, expect: int) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for _ in range(20):
        got = stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        for message in got.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(bodies) >= expect:
            break
    return bodies


class FakeEvents:
    """An EventBridge client whose per-entry outcomes follow a script."""

    def __init__(self, script: list[list[str | None]]) -> None:
        self.script = script
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        codes = self.script.pop(0) if self.script else [None] * len(Entries)
        return {
            "Entries": [
                {"EventId": f"id-{len(self.calls)}-{i}"} if code is None else {"ErrorCode": code}
                for i, code in enumerate(codes)
            ]
        }


def bus_with(client: Any, sleeps: list[float] | None = None) -> EventBus:
    record = sleeps if sleeps is not None else []
    return EventBus(bus_name="b", client=client, sleep=record.append, jitter=lambda: 1.0)


def test_publish_batches_ten_per_call_and_lands_in_the_ingest_queue(stack: Stack) -> None:
    calls: list[int] = []
    stack.events.meta.events.register(
        "before-parameter-build.events.PutEvents",
        lambda params, **_: calls.append(len(params["Entries"])),
    )
    bus = EventBus(bus_name=stack.bus, client=stack.events)
    events = [{"name": "shop/order.placed", "data": {"n": i}} for i in range(23)]
    results = bus.publish(events)
    assert calls == [10, 10, 3]
    assert all(r.ok for r in results) and len(results) == 23
    bodies = receive_all(stack, stack.ingest_queue_url, expect=23)
    assert sorted(b["detail"]["data"]["n"] for b in bodies) == list(range(23))
    assert {b["source"] for b in bodies} == {"wayline"}


def test_events_from_other_sources_do_not_reach_ingest(stack: Stack) -> None:
    stack.events.put_events(
        Entries=[
            {"Source": "someone.else", "DetailType": "x", "Detail": "{}", "EventBusName": stack.bus}
        ]
    )
    got = stack.sqs.receive_message(QueueUrl=stack.ingest_queue_url, MaxNumberOfMessages=10)
    assert got.get("Messages", []) == []


def test_failed_entries_are_retried_with_backoff_until_they_succeed() -> None:
    fake = FakeEvents([["ThrottlingException", None, "InternalFailure"], [None, "InternalFailure"]])
    sleeps: list[float] = []
    results = bus_with(fake, sleeps).publish([{"name": f"e{i}"} for i in range(3)])
    assert all(r.ok for r in results)
    assert [len(c) for c in fake.calls] == [3, 2, 1]
    # the retried entries are the failed ones, in order
    assert [json.loads(e["Detail"])["name"] for e in fake.calls[1]] == ["e0", "e2"]
    assert sleeps == [0.1, 0.2]


def test_retries_are_bounded_and_permanent_errors_not_retried() -> None:
    script: list[list[str | None]] = [["ThrottlingException", "MalformedDetail"]]
    fake = FakeEvents(script + [["ThrottlingException"]] * 9)
    results = bus_with(fake).publish([{"name": "a"}, {"name": "b"}])
    assert len(fake.calls) == 4  # max_attempts
    assert results == [
        PublishResult(error_code="ThrottlingException"),
        PublishResult(error_code="MalformedDetail"),
    ]
    with pytest.raises(StoreError, match="2 of 2 failed"):
        raise_for_failures(results)


def test_a_failed_call_becomes_a_store_error_with_the_client_error_as_cause() -> None:
    class Failing:
        def put_events(self, **_: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "secret detail"}},
                "PutEvents",
            )

    with pytest.raises(StoreError, match="AccessDeniedException") as raised:
        bus_with(Failing()).publish([{"name": "a"}])
    assert isinstance(raised.value.__cause__, ClientError)
    assert "secret detail" not in str(raised.value)


def test_event_seeds_give_the_ids_inngest_gives_the_ith_event_of_a_request() -> None:
    header = "1700000000000,AQIDBAUGBwgJCg=="
    seeds = event_seeds(header, 3, now_ms=0, entropy=b"\0" * 10)
    assert [seeded_event_id(s, 1) for s in seeds] == [seeded_event_id(header, i) for i in (1, 2, 3)]
    fallback = event_seeds("garbage", 2, now_ms=1_700_000_000_123, entropy=bytes(range(10)))
    ids = [seeded_event_id(s, 1) for s in fallback]
    assert len(set(ids)) == 2 and all(i is not None for i in ids)


def test_parse_bus_message_uses_the_publishers_seed_or_the_envelope() -> None:
    seed = "1700000000000,AQIDBAUGBwgJCg=="
    envelope = {
        "id": "6f0c1a43-0000-4000-8000-000000000000",
        "time": "2026-11-22T10:00:00Z",
        "source": "wayline",
        "detail": {"name": "a/b", "data": {"x": 1}, "_wayline": {"seed": seed}},
    }
    parsed = parse_bus_message(json.dumps(envelope))
    assert parsed.seed == seed and parsed.input.name == "a/b" and parsed.input.data == {"x": 1}
    del envelope["detail"]["_wayline"]  # type: ignore[attr-defined]
    first = parse_bus_message(json.dumps(envelope))
    again = parse_bus_message(json.dumps(envelope))
    assert first.seed == again.seed  # a redelivered message maps to the same event id
    assert first.seed.startswith("1795341600000,")


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"detail": "x"}),
        json.dumps({"id": "1", "time": "2026-11-22T10:00:00Z", "detail": {"data": {}}}),
        json.dumps({"id": "1", "time": "2026-11-22T10:00:00Z", "detail": {"name": "inngest/x"}}),
        json.dumps({"time": "2026-11-22T10:00:00Z", "detail": {"name": "a"}}),
    ],
)
def test_parse_bus_message_rejects_what_is_not_a_wayline_event(body: str) -> None:
    with pytest.raises(ValidationError):
        parse_bus_message(body)


@pytest.fixture
def moto_server(aws_env: None) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_bus_to_queue_over_the_wire_on_moto_server(moto_server: str) -> None:
    """PutEvents -> rule -> SQS through moto's HTTP server (real sockets, real wire)."""
    stack = provision("wire", endpoint_url=moto_server)
    bus = EventBus(bus_name=stack.bus, client=stack.events)
    seeds = event_seeds(None, 2, now_ms=1_700_000_000_000, entropy=bytes(10))
    results = bus.publish([{"name": "wire/a", "data": {"i": 1}}, {"name": "wire/b"}], seeds=seeds)
    assert all(r.ok for r in results)
    bodies = receive_all(stack, stack.ingest_queue_url, expect=2)
    parsed = sorted((parse_bus_message(json.dumps(b)) for b in bodies), key=lambda p: p.input.name)
    assert [p.input.name for p in parsed] == ["wire/a", "wire/b"]
    assert [p.seed for p in parsed] == seeds


def test_calls_stay_under_the_size_limit_and_oversized_entries_are_refused() -> None:
    fake = FakeEvents([])
    big = "x" * 300_000  # four of these exceed 1 MiB together
    events = [{"name": f"e{i}", "data": {"pad": big}} for i in range(5)]
    events.insert(2, {"name": "huge", "data": {"pad": "y" * 1_100_000}})
    results = bus_with(fake).publish(events)
    assert [len(call) for call in fake.calls] == [3, 2]
    assert results[2] == PublishResult(error_code="EntryTooLarge")
    assert [r.ok for r in results] == [True, True, False, True, True, True]
