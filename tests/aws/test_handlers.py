"""The Lambda handlers with real Lambda event shapes: partial batch failures, poison
messages, time budgets, cron ticks from Scheduler, and the runtime built from env/SSM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import handlers._shared
import pytest
from aws_lambda_powertools.utilities import parameters
from handlers import api as api_handler

from wayline import signing
from wayline.aws.eventbridge import EventBus
from wayline.aws.processing import BLOCKED_RETRY_S, Dispatcher, Outcome
from wayline.aws.runtime import Deps, Settings
from wayline.aws.sqs import WorkSender, decode_item, encode_item
from wayline.calls.cycle import Reply
from wayline.engine.events import validate_event
from wayline.engine.model import RunStatus, WorkItem, WorkKind
from wayline.engine.ports import Store
from wayline.engine.service import Blocked
from wayline.errors import ConfigError

from .conftest import REGION, Stack, VirtualClock
from .driver import EVENT_KEY, SIGNING_KEY, Driver, FakeLambdaContext, make_runtime, sqs_event

BEARER = {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"}


@pytest.fixture
def driver(stack: Stack, clock: VirtualClock) -> Driver:
    return Driver(stack, clock, lambda: make_runtime(stack, clock))


def register(driver: Driver, *functions: dict[str, Any]) -> None:
    body = {
        "url": "https://app.example.com/api/inngest",
        "appname": "shop",
        "sdk": "py:v0.5.19",
        "framework": "fast_api",
        "v": "0.1",
        "deployType": "ping",
        "functions": list(functions),
    }
    headers = {**BEARER, "x-inngest-expected-server-kind": "cloud"}
    status, reply = driver.api("POST", "/fn/register", body, headers)
    assert status == 200 and reply["ok"], reply


def function(fn_id: str, *triggers: dict[str, str]) -> dict[str, Any]:
    url = f"https://app.example.com/api/inngest?fnId=shop-{fn_id}&step=step"
    return {
        "id": f"shop-{fn_id}",
        "name": fn_id,
        "triggers": list(triggers),
        "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": url}}},
    }


# ---------------------------------------------------------------------------- ingest


def test_ingest_reports_only_the_failed_record(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = driver.runtimes["ingest"].service
    real = service.send_events

    def flaky(inputs: Any, **kw: Any) -> list[str]:
        if inputs[0].name == "boom":
            raise RuntimeError("DynamoDB is having a bad day")
        return real(inputs, **kw)

    monkeypatch.setattr(service, "send_events", flaky)
    EventBus(bus_name=driver.stack.bus, client=driver.stack.events).publish(
        [{"name": "fine"}, {"name": "boom"}]
    )
    messages = driver.receive(driver.stack.ingest_queue_url)
    result = driver.ingest(sqs_event(messages, driver.ingest_arn), FakeLambdaContext())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    boom = [m["MessageId"] for m in messages if json.loads(m["Body"])["detail"]["name"] == "boom"]
    assert failed == set(boom)
    assert [e.name for e in driver.runtime.store.events.list_events()] == ["fine"]


def test_ingest_drops_poison_messages(driver: Driver) -> None:
    messages = [
        {"MessageId": "1", "ReceiptHandle": "r1", "Body": "not json"},
        {"MessageId": "2", "ReceiptHandle": "r2", "Body": json.dumps({"detail": {"data": 1}})},
    ]
    result = driver.ingest(sqs_event(messages, driver.ingest_arn), FakeLambdaContext())
    assert result == {"batchItemFailures": []}
    assert driver.runtime.store.events.list_events() == []


# ---------------------------------------------------------------------------- dispatch


def test_dispatch_leaves_records_it_has_no_time_for(driver: Driver) -> None:
    item = WorkItem(id="r:1", run_id="r", kind=WorkKind.CALL, at=0)
    message = {"MessageId": "m", "ReceiptHandle": "h", "Body": encode_item(item)}
    context = FakeLambdaContext(remaining_ms=5_000)
    result = driver.dispatch(sqs_event([message], driver.stack.work_queue_arn), context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m"}]}


def test_dispatch_drops_a_body_that_is_not_a_work_item(driver: Driver) -> None:
    message = {"MessageId": "m", "ReceiptHandle": "h", "Body": "{}"}
    result = driver.dispatch(sqs_event([message], driver.stack.work_queue_arn), FakeLambdaContext())
    assert result == {"batchItemFailures": []}


class BlockedService:
    def __init__(self, store: Store) -> None:
        self.store = store  # the dispatcher claims the item here first

    def prepare_call(self, item: WorkItem) -> Blocked:
        return Blocked()


class NeverCalled:
    def send(self, *request: object) -> Reply:
        pytest.fail("a blocked item must not be called")

    def fetch(self, request: object) -> Reply:
        pytest.fail("a blocked item must not be called")


def test_a_blocked_item_is_resent_with_a_delay(driver: Driver) -> None:
    delays: list[int] = []
    driver.stack.sqs.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: delays.extend(e["DelaySeconds"] for e in params["Entries"]),
    )
    item = WorkItem(id="r:1", run_id="r", kind=WorkKind.CALL, at=0)
    dispatcher = Dispatcher(
        service=BlockedService(driver.runtime.store),  # type: ignore[arg-type]
        queue=driver.runtime.queue,
        sender=WorkSender(queue_url=driver.stack.work_queue_url, client=driver.stack.sqs),
        transport=NeverCalled(),
        clock=driver.clock,
    )
    assert dispatcher.process(item, delivery="m#1").outcome is Outcome.BLOCKED
    assert delays == [BLOCKED_RETRY_S]


# ---------------------------------------------------------------------------- timers


def _cron_input(driver: Driver, tick: str) -> dict[str, Any]:
    group = driver.stack.schedule_group
    (listed,) = driver.stack.scheduler.list_schedules(GroupName=group)["Schedules"]
    schedule = driver.stack.scheduler.get_schedule(Name=listed["Name"], GroupName=group)
    assert schedule["Target"]["Arn"] == driver.stack.timers_function_arn
    assert schedule["ScheduleExpression"] == "cron(0 9 ? * MON *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Paris"
    payload: dict[str, Any] = json.loads(
        schedule["Target"]["Input"].replace("<aws.scheduler.scheduled-time>", tick)
    )
    return payload


def test_sync_makes_cron_schedules_and_timers_fire_each_tick_once(driver: Driver) -> None:
    register(driver, function("report", {"cron": "TZ=Europe/Paris 0 9 * * 1"}))
    payload = _cron_input(driver, "2026-11-23T08:00:00Z")
    for _ in range(2):  # Scheduler retries deliver the same tick again
        assert driver.timers(payload, FakeLambdaContext()) == {"done": "cron"}
    (run,) = driver.runtime.store.runs.list_runs(function_id="shop-report")
    assert run.status is RunStatus.QUEUED
    assert run.events[0]["name"] == "inngest/scheduled.timer"
    # The run's first call is queued; the next tick is the cron schedule's, not the queue's.
    got = driver.stack.sqs.receive_message(
        QueueUrl=driver.stack.work_queue_url, MaxNumberOfMessages=10
    )
    assert [decode_item(m["Body"]).kind for m in got["Messages"]] == [WorkKind.CALL]
    assert driver.pending_schedules() == 1
    register(driver, function("report", {"event": "shop/report.requested"}))
    assert driver.pending_schedules() == 0


def test_timers_rejects_other_payloads(driver: Driver) -> None:
    assert driver.timers({"kind": "nope"}, FakeLambdaContext()) == {"done": "rejected"}


def test_the_sweep_re_enqueues_only_long_overdue_items(driver: Driver) -> None:
    register(driver, function("report", {"event": "shop/report.requested"}))
    driver.runtime.service.send_events([validate_event({"name": "shop/report.requested"})])
    # The first call was enqueued; pretend it was lost (a crash after the run was saved).
    lost = driver.receive(driver.stack.work_queue_url)
    for message in lost:
        url = driver.stack.work_queue_url
        driver.stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert driver.timers({"kind": "sweep"}, FakeLambdaContext()) == {"done": "sweep"}
    assert driver.receive(driver.stack.work_queue_url) == []  # not overdue yet
    driver.clock.advance(16 * 60_000)
    driver.timers({"kind": "sweep"}, FakeLambdaContext())
    (again,) = driver.receive(driver.stack.work_queue_url)
    assert decode_item(again["Body"]) == decode_item(lost[0]["Body"])


# ---------------------------------------------------------------------------- runtime


def test_settings_name_the_missing_variable() -> None:
    with pytest.raises(ConfigError, match="WAYLINE_TABLE"):
        empty: dict[str, str] = {}
        Settings.from_env(empty.get)


def test_keys_must_be_configured(stack: Stack, clock: VirtualClock) -> None:
    runtime = make_runtime(
        stack, clock, WAYLINE_SIGNING_KEY_PARAMETER="", WAYLINE_EVENT_KEY_PARAMETER=""
    )
    with pytest.raises(ConfigError, match="signing key"):
        runtime.signing_keys()
    with pytest.raises(ConfigError, match="event key"):
        runtime.event_keys()


@pytest.fixture
def lambda_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment template.yaml gives the api function, and its keys in SSM."""
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/wayline/signing-key", Value=SIGNING_KEY, Type="SecureString")
    ssm.put_parameter(Name="/wayline/event-key", Value=f"old-key, {EVENT_KEY}", Type="SecureString")
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WAYLINE_SIGNING_KEY_PARAMETER", "/wayline/signing-key")
    monkeypatch.setenv("WAYLINE_EVENT_KEY_PARAMETER", "/wayline/event-key")
    monkeypatch.setattr(handlers._shared, "_runtime", [])
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    yield
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def test_the_deployed_handler_builds_its_runtime_from_env_and_ssm(
    lambda_env: None, stack: Stack, clock: VirtualClock
) -> None:
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    driver.api_handler = api_handler.handler  # the module-level one Lambda calls
    status, body = driver.api("POST", f"/e/{EVENT_KEY}", {"name": "shop/x"})
    assert status == 200 and len(body["ids"]) == 1
    assert handlers._shared._runtime[0].event_keys() == ("old-key", EVENT_KEY)
    assert isinstance(handlers._shared._runtime[0].deps, Deps)
