"""wayline.aws.scheduler: names, at() wake-ups, cron -> AWS cron, and cron reconcile."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from wayline.aws.scheduler import (
    Schedules,
    at_expression,
    aws_cron,
    cron_schedules,
    parse_cron_input,
    schedule_name,
)
from wayline.aws.sqs import decode_item
from wayline.engine import cron
from wayline.engine.model import FunctionDef, Trigger, WorkItem, WorkKind
from wayline.errors import StoreError, ValidationError

from .conftest import Stack

VALID_NAME = re.compile(r"[0-9A-Za-z_.-]{1,64}")


@pytest.mark.parametrize(
    "key",
    ["01HX:3", "a" * 200, "run/with spaces:and#odd|chars", "x", "ünïcödé:1"],
)
def test_schedule_names_are_valid_and_stable(key: str) -> None:
    name = schedule_name("w-", key)
    assert VALID_NAME.fullmatch(name), name
    assert schedule_name("w-", key) == name


def test_keys_that_sanitize_alike_still_get_different_names() -> None:
    assert schedule_name("w-", "a:b") != schedule_name("w-", "a/b")


def test_at_expression_is_utc_to_the_second() -> None:
    assert at_expression(1_795_341_600_999) == "at(2026-11-22T10:00:00)"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/15 9-17 * * 1-5", ["cron(0,15,30,45 9-17 ? * MON,TUE,WED,THU,FRI *)"]),
        ("@daily", ["cron(0 0 * * ? *)"]),
        ("@hourly", ["cron(0 * * * ? *)"]),
        ("0 0 * * 7", ["cron(0 0 ? * SUN *)"]),
        ("30 4 1 JAN-MAR *", ["cron(30 4 1 1-3 ? *)"]),
        ("0 0 1,15 * 1", ["cron(0 0 1,15 * ? *)", "cron(0 0 ? * MON *)"]),
        ("0 0 L * *", None),
        ("0 0 * * 5#2", None),
    ],
)
def test_standard_cron_maps_to_aws_cron(expression: str, expected: list[str] | None) -> None:
    assert aws_cron(cron.parse_cron(expression)) == expected


def _back_to_standard(aws: str) -> str:
    minute, hour, dom, month, dow, _year = aws[len("cron(") : -1].split()
    days = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
    dow = ",".join(str(days.index(d)) for d in dow.split(",")) if dow != "?" else "*"
    return f"{minute} {hour} {'*' if dom == '?' else dom} {month} {dow}"


@pytest.mark.parametrize(
    "expression",
    ["*/7 */5 * * *", "0 12 */3 * 2-4", "15 6 13 * 5", "0 0 29 2 *", "5 4 * 6-8 0,6", "@weekly"],
)
def test_aws_expressions_fire_exactly_when_the_standard_one_does(expression: str) -> None:
    start, end = 1_767_225_600_000, 1_767_225_600_000 + 400 * 86_400_000  # 2026 + 35 days
    wanted = cron.fires_between(expression, after_ms=start, until_ms=end, limit=200_000)
    got: set[int] = set()
    for aws in aws_cron(cron.parse_cron(expression)) or []:
        back = _back_to_standard(aws)
        got |= set(cron.fires_between(back, after_ms=start, until_ms=end, limit=200_000))
    assert sorted(got) == wanted


def fn(fn_id: str, *crons: str) -> FunctionDef:
    return FunctionDef(
        id=fn_id,
        app_id="app",
        name=fn_id,
        url="https://app.example/api/inngest",
        triggers=tuple(Trigger(cron=c) for c in crons),
        retries=0,
    )


def test_cron_schedules_map_tz_and_carry_the_tick_time() -> None:
    (schedule,) = cron_schedules([fn("app-report", "TZ=Europe/Paris 0 9 * * 1")])
    assert schedule.timezone == "Europe/Paris"
    assert schedule.expression == "cron(0 9 ? * MON *)"
    payload = json.loads(schedule.input())
    assert payload["scheduled_time"] == "<aws.scheduler.scheduled-time>"
    payload["scheduled_time"] = "2026-11-23T08:00:00Z"
    tick = int(datetime(2026, 11, 23, 8, tzinfo=UTC).timestamp() * 1000)
    assert parse_cron_input(payload) == ("app-report", "TZ=Europe/Paris 0 9 * * 1", tick)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {"kind": "sleep"},
        {"kind": "cron"},
        {"kind": "cron", "function_id": "f", "cron": "x", "scheduled_time": "soon"},
    ],
)
def test_parse_cron_input_rejects_other_payloads(payload: object) -> None:
    with pytest.raises(ValidationError):
        parse_cron_input(payload)


def schedules(stack: Stack) -> Schedules:
    return Schedules(
        group=stack.schedule_group,
        role_arn=stack.scheduler_role_arn,
        client=stack.scheduler,
        dead_letter_arn=stack.work_dlq_arn,
    )


def test_wake_up_is_a_one_time_self_deleting_schedule_to_the_queue(stack: Stack) -> None:
    work = WorkItem(id="01HXRUN:7", run_id="01HXRUN", kind=WorkKind.SLEEP, at=1_795_341_660_000)
    s = schedules(stack)
    assert s.wake_up(work, fire_at_ms=1_795_341_600_000, queue_arn=stack.work_queue_arn)
    assert not s.wake_up(work, fire_at_ms=1_795_341_600_000, queue_arn=stack.work_queue_arn)
    (listed,) = stack.scheduler.list_schedules(GroupName=stack.schedule_group)["Schedules"]
    got = stack.scheduler.get_schedule(Name=listed["Name"], GroupName=stack.schedule_group)
    assert got["ScheduleExpression"] == "at(2026-11-22T10:00:00)"
    assert got["ScheduleExpressionTimezone"] == "UTC"
    assert got["ActionAfterCompletion"] == "DELETE"
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert got["Target"]["Arn"] == stack.work_queue_arn
    assert got["Target"]["RoleArn"] == stack.scheduler_role_arn
    assert got["Target"]["DeadLetterConfig"] == {"Arn": stack.work_dlq_arn}
    assert decode_item(got["Target"]["Input"]) == work


def _names(stack: Stack) -> set[str]:
    listed = stack.scheduler.list_schedules(GroupName=stack.schedule_group)["Schedules"]
    return {s["Name"] for s in listed}


def test_reconcile_creates_keeps_and_deletes_cron_schedules(stack: Stack) -> None:
    s = schedules(stack)
    target = stack.timers_function_arn
    v1 = [fn("app-a", "0 * * * *"), fn("app-b", "0 0 1,15 * 1", "0 0 L * *")]
    assert s.reconcile_crons(old=[], new=v1, target_arn=target) == (3, 0)
    first = _names(stack)
    assert len(first) == 3  # a: 1, b: two for the OR of day fields; "L" stays on the engine
    assert s.reconcile_crons(old=v1, new=v1, target_arn=target) == (0, 0)
    v2 = [fn("app-a", "30 * * * *")]
    assert s.reconcile_crons(old=v1, new=v2, target_arn=target) == (1, 3)
    (only,) = _names(stack)
    got = stack.scheduler.get_schedule(Name=only, GroupName=stack.schedule_group)
    assert got["ScheduleExpression"] == "cron(30 * * * ? *)"
    assert got["Target"]["Arn"] == target
    assert got.get("ActionAfterCompletion", "NONE") == "NONE"


def test_deleting_a_missing_schedule_is_fine(stack: Stack) -> None:
    assert not schedules(stack).delete("c-nothing-here")


def test_other_scheduler_errors_become_store_errors() -> None:
    class Denied:
        def create_schedule(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "CreateSchedule")

    broken = Schedules(group="g", role_arn="r", client=Denied())  # type: ignore[arg-type]
    work = WorkItem(id="x", run_id="r", kind=WorkKind.SLEEP, at=0)
    with pytest.raises(StoreError, match="Scheduler CreateSchedule failed: AccessDenied") as raised:
        broken.wake_up(work, fire_at_ms=0, queue_arn="q")
    assert isinstance(raised.value.__cause__, ClientError)
