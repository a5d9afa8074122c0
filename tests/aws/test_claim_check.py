"""Events over the bus's entry limit travel as a claim check, on the AWS topology (moto).

The official inngest-py ``batch_that_needs_api`` scenario: 8 events of 1 MiB in one
``client.send()`` (the EventBridge sender), a ``batch_events`` function of max size 8.
Each event is stored in the payload bucket by content hash and its bus entry carries the
reference; ingest reads it back; the batch of 8 MiB is over the request state limit, so
the dispatcher sends ``use_api`` and the SDK fetches the events from the api function's
``GET /v0/runs/{id}/batch``, served here on loopback from the same runtime.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import pytest

from compat.harness import Recorder, RecordingMiddleware, UvicornAppServer
from wayline import signing
from wayline.aws.api import create_api
from wayline.aws.eventbridge import CLAIM_CHECK_BYTES, EventBus, parse_bus_message
from wayline.aws.s3 import S3Offload
from wayline.aws.sender import EventBridgeSender
from wayline.engine.model import RunStatus
from wayline.errors import StoreError, ValidationError

from .conftest import Stack, VirtualClock
from .driver import EVENT_KEY, SIGNING_KEY, Driver, make_runtime

APP_ID = "big"
EVENTS = 8
MIB = 1024 * 1024


@dataclass
class BigApp:
    stack: Stack
    driver: Driver
    seen: Recorder
    calls: Recorder

    def payload_keys(self) -> list[str]:
        listed = self.stack.s3.list_objects_v2(Bucket=self.stack.bucket, Prefix="events/")
        return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture
def big_app(stack: Stack, clock: VirtualClock) -> Iterator[BigApp]:
    runtime = make_runtime(stack, clock)
    api = create_api(
        runtime.service,
        bus=runtime.bus,
        clock=runtime.clock,
        entropy=runtime.deps.entropy,
        signing_keys=(SIGNING_KEY,),
        event_keys=(EVENT_KEY,),
        allow_private_apps=True,
    )
    api_web = fastapi.FastAPI()
    api_web.mount("/", api)
    api_server = UvicornAppServer(api_web)  # the api function, for the SDK's use_api fetch
    client = inngest.Inngest(
        app_id=APP_ID,
        is_production=True,
        signing_key=SIGNING_KEY,
        api_base_url=f"http://127.0.0.1:{api_server.port}",
        event_api_base_url="http://127.0.0.1:9",  # events go to the bus, not over HTTP
    )
    seen, calls = Recorder(), Recorder()

    @client.create_function(
        fn_id="batch-that-needs-api",
        retries=0,
        trigger=inngest.TriggerEvent(event="t/big"),
        batch_events=inngest.Batch(max_size=EVENTS, timeout=datetime.timedelta(seconds=10)),
    )
    def fn(ctx: inngest.ContextSync) -> dict[str, int]:
        seen.append([(e.data["n"], len(str(e.data["blob"]))) for e in ctx.events])
        return {"events": len(ctx.events)}

    @client.create_function(fn_id="single", retries=0, trigger=inngest.TriggerEvent(event="t/one"))
    def single(ctx: inngest.ContextSync) -> int:
        return len(str(ctx.event.data["blob"]))

    web = fastapi.FastAPI()
    inngest.fast_api.serve(web, client, [fn, single])
    web.add_middleware(RecordingMiddleware, requests=calls)
    app_server = UvicornAppServer(web)
    try:
        driver = Driver(stack, clock, runtime)
        status, body = driver.api(
            "PUT",
            "/v1/apps/sync",
            {"url": f"http://127.0.0.1:{app_server.port}/api/inngest"},
            {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
        )
        assert (status, body["app_id"]) == (200, APP_ID), body
        yield BigApp(stack, driver, seen, calls)
    finally:
        app_server.stop()
        api_server.stop()


def big_events(name: str, count: int) -> list[dict[str, Any]]:
    return [{"name": name, "data": {"n": n, "blob": chr(97 + n) * MIB}} for n in range(count)]


def test_8_one_mib_events_sent_with_client_send_run_as_one_batch_via_use_api(
    big_app: BigApp,
) -> None:
    stack = big_app.stack
    sender = EventBridgeSender(
        bus_name=stack.bus,
        client=stack.events,
        payloads=S3Offload(bucket=stack.bucket, client=stack.s3),
    )
    ids = sender.send(big_events("t/big", EVENTS))
    assert len(ids) == EVENTS
    # Each event is in the bucket under its content hash; the bus carried references.
    keys = big_app.payload_keys()
    assert len(keys) == EVENTS
    for key in keys:
        data = stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read()
        assert key == "events/" + hashlib.sha256(data).hexdigest()
    big_app.driver.settle()

    (run,) = big_app.driver.runtime.store.runs.list_runs(
        function_id=f"{APP_ID}-batch-that-needs-api"
    )
    assert run.status is RunStatus.COMPLETED, run
    assert run.output == {"events": EVENTS}
    assert big_app.seen.items[-1] == [(n, MIB) for n in range(EVENTS)]
    assert sorted(run.event_ids) == sorted(ids)
    posts = [r.json() for r in big_app.calls.items if r.method == "POST"]
    assert posts and all(p["use_api"] is True and p["events"] == [] for p in posts)
    # The stored events are whole, not truncated (DynamoDB offloads bodies over 400 KB).
    for event_id in ids:
        event = big_app.driver.runtime.store.events.get_event(event_id)
        assert event is not None and len(str(event.data["blob"])) == MIB


def test_a_claim_checked_event_through_the_api_function(big_app: BigApp) -> None:
    auth = {"content-type": "application/json"}
    status, body = big_app.driver.api("POST", f"/e/{EVENT_KEY}", big_events("t/one", 2), auth)
    assert status == 200, body
    assert len(big_app.payload_keys()) == 2
    big_app.driver.settle()
    runs = big_app.driver.runtime.store.runs.list_runs(function_id=f"{APP_ID}-single")
    assert sorted(r.status for r in runs) == [RunStatus.COMPLETED] * 2
    assert [r.output for r in runs] == [MIB, MIB]


def test_small_events_stay_on_the_bus_and_large_ones_need_a_bucket(
    stack: Stack, big_app: BigApp
) -> None:
    bus = EventBus(
        bus_name=stack.bus,
        client=stack.events,
        payloads=S3Offload(bucket=stack.bucket, client=stack.s3),
    )
    small = bus.entry(
        {"name": "t/one", "data": {"blob": "x" * (CLAIM_CHECK_BYTES - 200)}}, seed=None
    )
    assert "blob" in json.loads(small["Detail"])["data"]
    assert big_app.payload_keys() == []
    # Without a bucket nothing is cut: the entry stays whole and the bus refuses it.
    bare = EventBus(bus_name=stack.bus, client=stack.events)
    (result,) = bare.publish(big_events("t/one", 1))
    assert result.error_code == "EntryTooLarge"
    # A claim check read where no bucket is configured fails (retried, then dead-lettered).
    entry = bus.entry(big_events("t/one", 1)[0], seed=None)
    message = json.dumps(
        {"id": "e-1", "time": "2026-11-29T06:00:00Z", "detail": json.loads(entry["Detail"])}
    )
    with pytest.raises(StoreError, match="no payload bucket is configured"):
        parse_bus_message(message)
    assert (
        parse_bus_message(message, S3Offload(bucket=stack.bucket, client=stack.s3)).input.data["n"]
        == 0
    )


def test_a_reference_is_only_followed_to_an_event_payload_with_its_hash(stack: Stack) -> None:
    payloads = S3Offload(bucket=stack.bucket, client=stack.s3)

    def message(ref: str) -> str:
        detail = {"name": "t/one", "_wayline": {"payload": ref, "bytes": 10}}
        return json.dumps({"id": "e-2", "time": "2026-11-29T06:00:00Z", "detail": detail})

    payloads.put("memo/r/s/" + "0" * 64, b'{"secret": 1}')
    with pytest.raises(ValidationError, match="is not a payload key"):
        parse_bus_message(message("memo/r/s/" + "0" * 64), payloads)
    forged = "events/" + "1" * 64
    payloads.put(forged, b'{"name": "t/one"}')
    with pytest.raises(ValidationError, match="does not match its hash"):
        parse_bus_message(message(forged), payloads)


def test_claim_checked_events_expire_with_the_payload_retention() -> None:
    """The bucket's lifecycle rule covers ``events/`` (no prefix filter) and its age is the
    ``PayloadRetentionDays`` parameter, and the api and ingest functions may put and get."""
    from .test_template import load_template

    template = load_template()
    resources = template["Resources"]
    (rule,) = resources["PayloadBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert "Prefix" not in rule and "Filter" not in rule
    assert rule["ExpirationInDays"] == {"Ref": "PayloadRetentionDays"}

    def allowed(function: str, action: str) -> set[str]:
        """Resources ``function``'s role allows ``action`` on, managed policies included."""
        found: set[str] = set()
        for policy in resources[function]["Properties"]["Policies"]:
            if isinstance(policy, dict) and "Ref" in policy:
                policy = resources[policy["Ref"]]["Properties"]["PolicyDocument"]
            for statement in policy["Statement"]:
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                if statement.get("Effect") == "Allow" and action in actions:
                    targets = statement["Resource"]
                    targets = targets if isinstance(targets, list) else [targets]
                    found.update(str(t.get("Fn::Sub", t)) for t in targets)
        return found

    # The api stores claim-checked events; ingest reads them back.
    assert {"${PayloadBucket.Arn}/events/*", "${PayloadBucket.Arn}/*"} & allowed(
        "ApiFunction", "s3:PutObject"
    )
    assert "${PayloadBucket.Arn}/*" in allowed("IngestFunction", "s3:GetObject")
