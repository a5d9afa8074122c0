"""EventBridge Scheduler: one-time ``at()`` wake-ups and one ``cron()`` schedule per trigger.

Both kinds live in the stack's schedule group and are named idempotently:

* a wake-up is named from its work item id (``w-<sanitized id>-<hash>``), so enqueueing the
  same item twice makes one schedule (the second ``CreateSchedule`` gets
  ``ConflictException``, which is success here); it deletes itself after it fires
  (``ActionAfterCompletion=DELETE``) and its target is the work queue;
* a cron schedule is named from (function id, cron trigger, AWS expression), so an app sync
  that changes nothing creates nothing, a changed trigger is a delete plus a create, and a
  removed one is deleted. Its target is the timers function, with the intended tick time
  (``<aws.scheduler.scheduled-time>``) in the input: Scheduler retries of one tick carry
  the same time, and the engine starts one run per (function, tick).

Scheduler's time zones and DST handling replace the engine's for crons it can express
(``TZ=`` becomes ``ScheduleExpressionTimezone``). Standard cron ORs day-of-month and
day-of-week when both are set; AWS cron cannot, so such a trigger gets two schedules (one
per day field), whose union is the standard meaning; a tick both match starts one run.
Crons AWS cannot express at all (``L``, ``W``, ``#``) return None from ``aws_cron``: those
stay on the engine's own chain of one-time wake-ups.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from croniter import croniter

from wayline.engine.cron import CronSpec, parse_cron
from wayline.engine.model import FunctionDef, WorkItem
from wayline.errors import InvalidCronError, ValidationError

from .clients import error_code, scheduler_client, translate_errors
from .sqs import encode_item

if TYPE_CHECKING:
    from mypy_boto3_scheduler.client import EventBridgeSchedulerClient
    from mypy_boto3_scheduler.type_defs import TargetTypeDef

__all__ = [
    "CronSchedule",
    "Schedules",
    "at_expression",
    "aws_cron",
    "cron_schedules",
    "schedule_name",
]

NAME_MAX = 64
"""Schedule names: 1..64 characters of ``[0-9a-zA-Z-_.]``."""
WAKEUP_PREFIX = "w-"
CRON_PREFIX = "c-"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
"""A Scheduler context attribute: replaced by the tick's intended time when it fires."""
_UNSAFE = re.compile(r"[^0-9A-Za-z_.-]")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_AWS_ONLY = re.compile(r"[LlWw#?]")


def schedule_name(prefix: str, key: str) -> str:
    """A valid, unique, stable schedule name for ``key``: readable part plus a hash."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    room = NAME_MAX - len(prefix) - len(digest) - 1
    return f"{prefix}{_UNSAFE.sub('-', key)[:room]}-{digest}"


def at_expression(ms: int) -> str:
    """``at(yyyy-mm-ddThh:mm:ss)`` in UTC for epoch ms (rounded down to the second)."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"at({moment.strftime('%Y-%m-%dT%H:%M:%S')})"


# ---------------------------------------------------------------------------- cron mapping


def _compress(values: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    parts: list[str] = []
    ordered = sorted(set(values))
    start = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if value is not None:
            start = prev = value
    return ",".join(parts)


def _field(expanded: list[int | str]) -> str | None:
    """An expanded croniter field as AWS cron text; None means "every value" (``*``)."""
    if expanded == ["*"]:
        return None
    return _compress([int(v) for v in expanded])


def aws_cron(spec: CronSpec) -> list[str] | None:
    """The ``cron(...)`` expressions (one, or two for a day-of-month OR day-of-week trigger)
    that fire exactly when ``spec`` does; None if AWS cron cannot express it."""
    if not spec.expression.startswith("@") and _AWS_ONLY.search(spec.expression):
        return None
    fields = croniter(spec.expression).expanded
    minute, hour, dom, month, dow = (_field(f) for f in fields)
    head = f"{minute or '*'} {hour or '*'}"
    month_text = month or "*"
    if dow is not None:
        dow = ",".join(_DAY_NAMES[int(v) % 7] for v in fields[4])
    if dom is None and dow is None:
        return [f"cron({head} * {month_text} ? *)"]
    expressions = []
    if dom is not None:
        expressions.append(f"cron({head} {dom} {month_text} ? *)")
    if dow is not None:
        expressions.append(f"cron({head} ? {month_text} {dow} *)")
    return expressions


def is_aws_cron(cron: str) -> bool:
    """True if a trigger's cron runs on Scheduler ``cron()`` schedules on AWS."""
    try:
        return aws_cron(parse_cron(cron)) is not None
    except InvalidCronError:
        return False


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """One ``cron()`` schedule that fires ``function_id``'s trigger ``cron``."""

    name: str
    expression: str
    timezone: str
    function_id: str
    cron: str

    def input(self) -> str:
        return json.dumps(
            {
                "kind": "cron",
                "function_id": self.function_id,
                "cron": self.cron,
                "scheduled_time": SCHEDULED_TIME,
            },
            separators=(",", ":"),
        )


def cron_schedules(functions: Iterable[FunctionDef]) -> list[CronSchedule]:
    """The schedules ``functions``' cron triggers need (pure: what reconcile aims for)."""
    wanted: dict[str, CronSchedule] = {}
    for fn in functions:
        for trigger in fn.triggers:
            if not trigger.cron:
                continue
            spec = parse_cron(trigger.cron)
            for expression in aws_cron(spec) or ():
                name = schedule_name(CRON_PREFIX, f"{fn.id}\n{trigger.cron}\n{expression}")
                wanted[name] = CronSchedule(name, expression, spec.tz, fn.id, trigger.cron)
    return list(wanted.values())


def parse_cron_input(raw: object) -> tuple[str, str, int]:
    """(function id, cron, tick ms) from a cron schedule's input; ``ValidationError`` if
    it is not one."""
    if not isinstance(raw, dict) or raw.get("kind") != "cron":
        raise ValidationError("not a cron tick", field="kind")
    function_id, cron, when = raw.get("function_id"), raw.get("cron"), raw.get("scheduled_time")
    if not isinstance(function_id, str) or not isinstance(cron, str) or not isinstance(when, str):
        raise ValidationError("cron tick needs function_id, cron and scheduled_time", field="input")
    try:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(f"bad scheduled_time {when!r}", field="scheduled_time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return function_id, cron, int(moment.timestamp() * 1000)


# ---------------------------------------------------------------------------- the client


class Schedules:
    """Creates and deletes schedules in one group, all delivered with ``role_arn``."""

    def __init__(
        self,
        *,
        group: str,
        role_arn: str,
        client: EventBridgeSchedulerClient | None = None,
        dead_letter_arn: str | None = None,
    ) -> None:
        self.group = group
        self._role_arn = role_arn
        self._client = client or scheduler_client()
        self._dead_letter_arn = dead_letter_arn

    def _target(self, arn: str, payload: str) -> TargetTypeDef:
        target: TargetTypeDef = {
            "Arn": arn,
            "RoleArn": self._role_arn,
            "Input": payload,
            "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
        }
        if self._dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self._dead_letter_arn}
        return target

    def wake_up(self, item: WorkItem, *, fire_at_ms: int, queue_arn: str) -> bool:
        """A one-time schedule that sends ``item`` to the work queue at ``fire_at_ms``.

        Returns False if the schedule already exists (the item was enqueued before)."""
        return self._create(
            name=schedule_name(WAKEUP_PREFIX, item.id),
            expression=at_expression(fire_at_ms),
            timezone="UTC",
            target=self._target(queue_arn, encode_item(item)),
            one_time=True,
        )

    def put_cron(self, schedule: CronSchedule, *, target_arn: str) -> bool:
        """Create ``schedule`` (a no-op returning False if it exists: names are content)."""
        return self._create(
            name=schedule.name,
            expression=schedule.expression,
            timezone=schedule.timezone,
            target=self._target(target_arn, schedule.input()),
            one_time=False,
        )

    def delete(self, name: str) -> bool:
        """Delete a schedule; False if it was not there."""
        with translate_errors("Scheduler", "DeleteSchedule"):
            try:
                self._client.delete_schedule(Name=name, GroupName=self.group)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return False
                raise
        return True

    def reconcile_crons(
        self, *, old: Iterable[FunctionDef], new: Iterable[FunctionDef], target_arn: str
    ) -> tuple[int, int]:
        """Make the cron schedules of an app's ``old`` function list those of ``new``.

        Every wanted schedule is (re)created, so a sync also repairs one that went missing;
        schedules only ``old`` needed are deleted. Returns (created, deleted).
        """
        wanted = cron_schedules(new)
        names = {s.name for s in wanted}
        created = sum(self.put_cron(s, target_arn=target_arn) for s in wanted)
        stale = {s.name for s in cron_schedules(old)} - names
        deleted = sum(self.delete(name) for name in sorted(stale))
        return created, deleted

    def _create(
        self, *, name: str, expression: str, timezone: str, target: TargetTypeDef, one_time: bool
    ) -> bool:
        with translate_errors("Scheduler", "CreateSchedule"):
            try:
                self._client.create_schedule(
                    Name=name,
                    GroupName=self.group,
                    ScheduleExpression=expression,
                    ScheduleExpressionTimezone=timezone,
                    FlexibleTimeWindow={"Mode": "OFF"},
                    ActionAfterCompletion="DELETE" if one_time else "NONE",
                    Target=target,
                )
            except ClientError as exc:
                if error_code(exc) == "ConflictException":
                    return False
                raise
        return True
