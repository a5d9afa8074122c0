"""The whole AWS topology on moto, driving an app written with the OFFICIAL ``inngest`` SDK.

PutEvents -> bus -> rule -> ingest queue -> ``handlers.ingest`` -> work queue (SQS delays,
Scheduler ``at()`` beyond 15 min) -> ``handlers.dispatch`` -> signed HTTP POST to the app
on loopback -> run state in DynamoDB. ``Driver`` plays Lambda and Scheduler; time is a
virtual clock that moto's SQS follows too, so a two-hour sleep takes no time.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import pytest

import wayline
import wayline.fastapi
from compat.harness import Counter, UvicornAppServer
from wayline import signing
from wayline.aws.eventbridge import EventBus
from wayline.aws.sender import EventBridgeSender
from wayline.engine.model import Run, RunStatus

from .conftest import Stack, VirtualClock
from .driver import EVENT_KEY, SIGNING_KEY, Driver, make_runtime

APP_ID = "aws"
MIN = 60_000


@dataclass
class Topology:
    stack: Stack
    clock: VirtualClock
    driver: Driver
    counts: dict[str, Counter]

    def put_events(self, name: str, data: dict[str, Any] | None = None) -> None:
        """What an app's ``client.send()`` does on AWS: PutEvents to the bus (source wayline)."""
        bus = EventBus(bus_name=self.stack.bus, client=self.stack.events)
        (result,) = bus.publish([{"name": name, "data": data or {}}])
        assert result.ok

    def runs(self, fn: str) -> list[Run]:
        return self.driver.runtime.store.runs.list_runs(function_id=f"{APP_ID}-{fn}")

    def run(self, fn: str) -> Run:
        (run,) = self.runs(fn)
        return run

    def count(self, name: str) -> int:
        return self.counts[name].value

    def delayed_messages(self) -> int:
        attrs = self.stack.sqs.get_queue_attributes(
            QueueUrl=self.stack.work_queue_url,
            AttributeNames=["ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessagesDelayed"])


def build_app(counts: dict[str, Counter]) -> tuple[inngest.Inngest, list[inngest.Function[Any]]]:
    client = inngest.Inngest(
        app_id=APP_ID,
        is_production=True,
        signing_key=SIGNING_KEY,
        # Never called in these tests (sync is in-band; events go to the bus directly).
        api_base_url="http://127.0.0.1:9",
        event_api_base_url="http://127.0.0.1:9",
    )

    def counted(name: str, value: Any) -> Any:
        counts[name].incr()
        return value

    @client.create_function(fn_id="multi", retries=0, trigger=inngest.TriggerEvent(event="t/multi"))
    def multi(ctx: inngest.ContextSync) -> int:
        a = ctx.step.run("a", lambda: counted("a", 1))
        b = ctx.step.run("b", lambda: counted("b", 2))
        c = ctx.step.run("c", lambda: counted("c", a + b))
        return int(c) * 10

    @client.create_function(fn_id="napper", retries=0, trigger=inngest.TriggerEvent(event="t/nap"))
    def napper(ctx: inngest.ContextSync) -> str:
        minutes = int(str(ctx.event.data.get("minutes", 10)))
        ctx.step.run("before", lambda: counted("before", "before"))
        ctx.step.sleep("nap", datetime.timedelta(minutes=minutes))
        return str(ctx.step.run("after", lambda: counted("after", "after")))

    @client.create_function(
        fn_id="waiter", retries=0, trigger=inngest.TriggerEvent(event="t/order")
    )
    def waiter(ctx: inngest.ContextSync) -> Any:
        approved = ctx.step.wait_for_event(
            "approval",
            event="t/approved",
            if_exp="event.data.order == async.data.order",
            timeout=datetime.timedelta(hours=1),
        )
        return None if approved is None else approved.data

    @client.create_function(fn_id="child", retries=0, trigger=inngest.TriggerEvent(event="t/never"))
    def child(ctx: inngest.ContextSync) -> dict[str, int]:
        return {"doubled": int(str(ctx.event.data["n"])) * 2}

    @client.create_function(
        fn_id="parent", retries=0, trigger=inngest.TriggerEvent(event="t/parent")
    )
    def parent(ctx: inngest.ContextSync) -> Any:
        return ctx.step.invoke("call-child", function=child, data={"n": 21})

    @client.create_function(fn_id="flaky", retries=2, trigger=inngest.TriggerEvent(event="t/flaky"))
    def flaky(ctx: inngest.ContextSync) -> str:
        def attempt() -> str:
            if counts["a"].incr() < 2:
                raise ValueError("first attempt fails")
            return "ok"

        return str(ctx.step.run("attempt", attempt))

    return client, [multi, napper, waiter, child, parent, flaky]


@pytest.fixture
def topology(stack: Stack, clock: VirtualClock) -> Iterator[Topology]:
    counts = {name: Counter() for name in ("a", "b", "c", "before", "after")}
    client, functions = build_app(counts)
    web = fastapi.FastAPI()
    inngest.fast_api.serve(web, client, functions)
    server = UvicornAppServer(web)
    try:
        driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
        status, body = driver.api(
            "PUT",
            "/v1/apps/sync",
            {"url": f"http://127.0.0.1:{server.port}/api/inngest"},
            {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
        )
        assert (status, body["sync"], body["app_id"]) == (200, "in_band", APP_ID), body
        yield Topology(stack, clock, driver, counts)
    finally:
        server.stop()


def test_a_multi_step_run_completes(topology: Topology) -> None:
    topology.put_events("t/multi", {"order": 1})
    topology.driver.settle()
    run = topology.run("multi")
    assert run.status is RunStatus.COMPLETED and run.output == 30
    assert [topology.count(s) for s in "abc"] == [1, 1, 1]
    assert [s.name for s in run.steps] == ["a", "b", "c"]
    # ingest once; dispatch once: discovery + one call per step result (the SDK runs steps
    # inline), the dispatcher driving the run on from the first call to the last
    assert topology.driver.invocations["ingest"] == 1
    assert topology.driver.invocations["dispatch"] == 1


def test_a_sleep_under_15_minutes_is_an_sqs_delay(topology: Topology) -> None:
    topology.put_events("t/nap", {"minutes": 10})
    topology.driver.settle()
    assert topology.run("napper").status is RunStatus.RUNNING
    assert topology.delayed_messages() == 1 and topology.driver.pending_schedules() == 0
    topology.clock.advance(10 * MIN - 5_000)
    topology.driver.settle()
    assert topology.count("after") == 0  # not a moment early
    topology.clock.advance(6_000)
    topology.driver.settle()
    run = topology.run("napper")
    assert run.status is RunStatus.COMPLETED and run.output == "after"
    assert (topology.count("before"), topology.count("after")) == (1, 1)


def test_a_sleep_over_15_minutes_is_a_scheduler_wake_up(topology: Topology) -> None:
    topology.put_events("t/nap", {"minutes": 120})
    topology.driver.settle()
    assert topology.driver.pending_schedules() == 1 and topology.delayed_messages() == 0
    # Scheduler fires a minute early (its precision is a minute); the dispatcher re-delays
    # the wake-up by the seconds that remain, over SQS.
    topology.clock.advance(120 * MIN - 30_000)
    topology.driver.settle()
    assert topology.driver.pending_schedules() == 0
    assert topology.delayed_messages() == 1 and topology.count("after") == 0
    topology.clock.advance(31_000)
    topology.driver.settle()
    run = topology.run("napper")
    assert run.status is RunStatus.COMPLETED and topology.count("after") == 1


def test_wait_for_event_resumes_on_the_matching_event(topology: Topology) -> None:
    topology.put_events("t/order", {"order": 7})
    topology.driver.settle()
    assert topology.run("waiter").status is RunStatus.RUNNING
    topology.put_events("t/approved", {"order": 8})  # does not match
    topology.driver.settle()
    assert topology.run("waiter").status is RunStatus.RUNNING
    # The matching one arrives through the api function's event API (POST /e/{key}).
    status, body = topology.driver.api(
        "POST", f"/e/{EVENT_KEY}", {"name": "t/approved", "data": {"order": 7, "by": "ann"}}
    )
    assert status == 200 and len(body["ids"]) == 1
    topology.driver.settle()
    run = topology.run("waiter")
    assert run.status is RunStatus.COMPLETED
    assert run.output == {"order": 7, "by": "ann"}
    status, event = topology.driver.api(
        "GET",
        f"/v1/events/{body['ids'][0]}",
        headers={"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
    )
    assert status == 200 and event["data"]["name"] == "t/approved"


def test_duplicate_deliveries_start_one_run_and_run_each_step_once(topology: Topology) -> None:
    driver = topology.driver
    topology.put_events("t/multi")
    (message,) = driver.receive(topology.stack.ingest_queue_url)
    for _ in range(2):  # SQS is at-least-once: the same message twice
        driver.deliver(
            "ingest", driver.ingest, [message], topology.stack.ingest_queue_url, driver.ingest_arn
        )
    assert len(topology.runs("multi")) == 1
    while messages := driver.receive(topology.stack.work_queue_url):
        for _ in range(2):
            driver.deliver(
                "dispatch",
                driver.dispatch,
                messages,
                topology.stack.work_queue_url,
                topology.stack.work_queue_arn,
            )
    run = topology.run("multi")
    assert run.status is RunStatus.COMPLETED and run.output == 30
    assert [topology.count(s) for s in "abc"] == [1, 1, 1]


def test_a_crashed_dispatch_is_redelivered_and_the_run_completes(topology: Topology) -> None:
    driver = topology.driver
    real = driver.runtime.dispatcher.transport
    calls = Counter()

    class CrashOnThirdCall:
        def send(self, *request: Any) -> Any:
            reply = real.send(*request)  # the app did the work ...
            if calls.incr() == 3:
                raise RuntimeError("container died")  # ... but its result was never saved
            return reply

        def fetch(self, request: Any) -> Any:
            return real.fetch(request)

    driver.runtime.dispatcher.transport = CrashOnThirdCall()
    topology.put_events("t/multi")
    driver.settle()
    assert topology.run("multi").status is RunStatus.RUNNING  # stuck until visible again
    topology.clock.advance(3_100)  # a failed record is back after 2-3 s, not the queue's 90 min
    driver.settle()
    run = topology.run("multi")
    assert run.status is RunStatus.COMPLETED and run.output == 30
    # a and b were saved before the crash and never re-ran; the crashed call (c) re-ran.
    assert [topology.count(s) for s in "abc"] == [1, 1, 2]
    assert json.dumps(run.memos)  # the memo state is plain JSON


def test_client_send_in_aws_mode_puts_events_on_the_bus(topology: Topology) -> None:
    """``wayline.Wayline(sender=EventBridgeSender(...)).send()``: the ids it returns are the
    ids the engine stores, and the run starts through the bus -> queue -> ingest path."""
    sender = EventBridgeSender(bus_name=topology.stack.bus, client=topology.stack.events)
    client = wayline.Wayline(app_id="sender", is_dev=True, sender=sender)
    (event_id,) = client.send(wayline.Event(name="t/multi", data={"order": 2}))
    topology.driver.settle()
    run = topology.run("multi")
    assert run.status is RunStatus.COMPLETED
    assert run.event_ids == (event_id,)
    stored = topology.driver.runtime.store.events.get_event(event_id)
    assert stored is not None and stored.data == {"order": 2}


def test_client_send_reports_refused_events(topology: Topology) -> None:
    sender = EventBridgeSender(bus_name="no-such-bus", client=topology.stack.events)
    with pytest.raises(wayline.SendEventsError) as info:
        sender.send([{"name": "t/multi", "data": {}}])
    assert info.value.ids == []


def test_invoke_runs_the_child_and_returns_its_output(topology: Topology) -> None:
    topology.put_events("t/parent")
    topology.driver.settle()
    parent = topology.run("parent")
    assert parent.status is RunStatus.COMPLETED and parent.output == {"doubled": 42}
    assert topology.run("child").status is RunStatus.COMPLETED


def test_a_failed_step_is_retried_after_its_backoff(topology: Topology) -> None:
    topology.put_events("t/flaky")
    topology.driver.settle()
    run = topology.run("flaky")
    assert run.status is RunStatus.RUNNING and topology.count("a") == 1
    assert topology.delayed_messages() == 1  # the retry waits out its backoff on SQS
    topology.clock.advance(MIN)  # past the first backoff (15 s + up to 30 s of jitter)
    topology.driver.settle()
    run = topology.run("flaky")
    assert run.status is RunStatus.COMPLETED and run.output == "ok"
    assert topology.count("a") == 2


def test_a_wayline_sdk_app_runs_on_the_topology(stack: Stack, clock: VirtualClock) -> None:
    """The same path with an app on Wayline's own SDK, in production mode (signed calls);
    the webhook it declares in code is created by the in-band sync (on DynamoDB)."""
    hook = wayline.Webhook(
        id="kick",
        event='"t/" + body.kind',
        signature=wayline.WebhookSignature(scheme="hmac-sha256", secret="kick-secret-123"),
    )
    client = wayline.Wayline(
        app_id="wl",
        signing_key=SIGNING_KEY,
        base_url="http://127.0.0.1:9",
        webhooks=[hook],
        checkpointing=False,  # no API to reach here; tests/aws/test_sdk_checkpoints.py has one
    )

    @client.function(id="sum", trigger=wayline.TriggerEvent(event="t/wl"), retries=0)
    async def total(ctx: wayline.Context) -> int:
        a = await ctx.step.run("a", lambda: 1)
        await ctx.step.sleep("nap", "1m")
        b = await ctx.step.run("b", lambda: 2)
        return a + b

    web = fastapi.FastAPI()
    wayline.fastapi.serve(web, client, [total])
    server = UvicornAppServer(web)
    try:
        driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
        auth = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}
        url = f"http://127.0.0.1:{server.port}/api/inngest"
        status, body = driver.api("PUT", "/v1/apps/sync", {"url": url}, auth)
        assert (status, body["app_id"]) == (200, "wl"), body
        status, declared = driver.api("GET", "/v1/webhooks/wl-kick", None, auth)
        assert status == 200 and declared["data"]["app_id"] == "wl", declared
        assert "kick-secret-123" not in json.dumps(declared)
        (result,) = EventBus(bus_name=stack.bus, client=stack.events).publish([{"name": "t/wl"}])
        assert result.ok
        driver.settle()
        clock.advance(2 * MIN)
        driver.settle()
        (run,) = driver.runtime.store.runs.list_runs(function_id="wl-sum")
        assert run.status is RunStatus.COMPLETED and run.output == 3
        assert [s.name for s in run.steps] == ["a", "nap", "b"]
    finally:
        server.stop()
        client.close()
