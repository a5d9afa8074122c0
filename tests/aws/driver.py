"""A test driver that plays the AWS parts moto cannot run: Lambda's SQS event source
mappings, Function URLs, and EventBridge Scheduler's firing.

* ``poll``: receive up to 10 messages (with the queue's visibility timeout), build the
  exact SQS event Lambda would, call the handler, delete the messages it did not report
  in ``batchItemFailures`` (all of them if it raised): what the event source mapping does.
* ``fire_due_schedules``: deliver every one-time schedule whose ``at()`` time has come on
  the virtual clock to its SQS target, then delete it (``ActionAfterCompletion=DELETE``).
* ``api``: a Function URL request (payload format 2.0) to the api handler.

Each function gets its own runtime (own clients, own caches), as each Lambda function has
its own containers: a sync through the api function must reach a warm ingest container
through the store, never through shared memory. ``runtimes[name]`` is the one warm
container of that function; replacing it is a cold start.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from handlers import api as api_handler
from handlers import dispatch as dispatch_handler
from handlers import ingest as ingest_handler
from handlers import timers as timers_handler

from wayline.aws.runtime import Clients, Deps, Runtime, build_runtime
from wayline.clock import OsEntropy
from wayline.engine.model import Run

from .conftest import REGION, Stack, VirtualClock
from .faults import ContainerDied

Handler = Callable[[dict[str, Any], Any], Any]
SIGNING_KEY = "signkey-prod-" + "ab12" * 16
EVENT_KEY = "test-event-key"
_AT = re.compile(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)")


@dataclass
class FakeLambdaContext:
    function_name: str = "wayline-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:wayline-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def make_runtime(
    stack: Stack,
    clock: VirtualClock,
    *,
    clients: Clients | None = None,
    sleep: Callable[[float], None] | None = None,
    observer: Callable[[Run | None, Run], None] | None = None,
    **env: str,
) -> Runtime:
    """The runtime a function gets on this stack, with the virtual clock and fixed keys
    (``clients``: e.g. with faults attached; ``sleep``: how its retries wait;
    ``observer``: sees every saved run change instead of the default EMF metrics)."""
    secrets = {"/wayline/signing-key": SIGNING_KEY, "/wayline/event-key": EVENT_KEY}
    values = {
        **stack.env(),
        "WAYLINE_SIGNING_KEY_PARAMETER": "/wayline/signing-key",
        "WAYLINE_EVENT_KEY_PARAMETER": "/wayline/event-key",
        "WAYLINE_ALLOW_PRIVATE_APP_URLS": "true",
        "WAYLINE_CALL_TIMEOUT_S": "10",
        "WAYLINE_RETENTION_DAYS": "90",  # template.yaml: PayloadRetentionDays
        **env,
    }
    deps = Deps(
        getenv=values.get,
        clock=clock,
        entropy=OsEntropy(),
        read_secret=secrets.__getitem__,
        clients=clients or Clients(region_name=REGION),
    )
    if observer is not None:
        deps = dataclasses.replace(deps, observer=observer)
    return build_runtime(dataclasses.replace(deps, sleep=sleep) if sleep else deps)


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to a function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get(
                        "ApproximateReceiveCount", "1"
                    ),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


FUNCTIONS = ("ingest", "dispatch", "timers", "api")


class Driver:
    def __init__(
        self, stack: Stack, clock: VirtualClock, runtime: Callable[[], Runtime] | Runtime
    ) -> None:
        """``runtime``: how a container builds its runtime (called once per function); a
        ``Runtime`` itself is shared by all four, for subclasses that bind their own."""
        self.stack = stack
        self.clock = clock
        shared = runtime if isinstance(runtime, Runtime) else None

        def new_runtime() -> Runtime:
            return shared if shared is not None else cast(Callable[[], Runtime], runtime)()

        self.new_runtime: Callable[[], Runtime] = new_runtime
        self.runtimes: dict[str, Runtime] = {name: new_runtime() for name in FUNCTIONS}
        self.runtime = self.runtimes["dispatch"]
        """The dispatch container's runtime (tests read state and patch calls through it)."""
        self.ingest: Handler = ingest_handler.make_handler(lambda: self.runtimes["ingest"])
        self.dispatch: Handler = dispatch_handler.make_handler(lambda: self.runtimes["dispatch"])
        self.timers: Handler = timers_handler.make_handler(lambda: self.runtimes["timers"])
        self.api_handler: Handler = api_handler.make_handler(lambda: self.runtimes["api"])
        self.ingest_arn = stack.sqs.get_queue_attributes(
            QueueUrl=stack.ingest_queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.invocations: dict[str, int] = {"ingest": 0, "dispatch": 0, "timers": 0, "api": 0}
        self.crash_next_dispatch = False
        self.failed_records: list[str] = []
        """Message ids reported in ``batchItemFailures`` (or lost to a crash), in order."""
        self.crashes = 0
        self.remaining_ms = {"ingest": 60_000}
        """Time an invocation starts with, per function (template.yaml's timeouts)."""
        self.crash_before_delete = False
        """The next invocation's result is lost: its container dies before the mapping
        deletes the messages it handled."""

    def cold_start(self, name: str) -> None:
        """The function's warm container is replaced by a new one."""
        self.runtimes[name] = self.new_runtime()
        if name == "dispatch":
            self.runtime = self.runtimes["dispatch"]

    # -- Lambda: SQS event source mappings ---------------------------------------------

    def receive(self, queue_url: str) -> list[dict[str, Any]]:
        got = self.stack.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        )
        return [dict(m) for m in got.get("Messages", [])]

    def deliver(
        self,
        name: str,
        handler: Handler,
        messages: list[dict[str, Any]],
        queue_url: str,
        queue_arn: str,
    ) -> None:
        """One invocation with ``messages``; deletes the ones that succeeded."""
        self.invocations[name] += 1
        try:
            context = FakeLambdaContext(remaining_ms=self.remaining_ms.get(name, 900_000))
            result = handler(sqs_event(messages, queue_arn), context)
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            self.failed_records.extend(m["MessageId"] for m in messages if m["MessageId"] in failed)
        except (Exception, ContainerDied):
            self.crashes += 1
            failed = {m["MessageId"] for m in messages}  # a crash: nothing is deleted
        if self.crash_before_delete:
            self.crash_before_delete = False
            self.crashes += 1
            failed = {m["MessageId"] for m in messages}
        for m in messages:
            if m["MessageId"] not in failed:
                self.stack.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])

    def poll(self, name: str) -> int:
        """One poll of the ingest or work queue; the number of messages handled."""
        if name == "ingest":
            url, arn, handler = self.stack.ingest_queue_url, self.ingest_arn, self.ingest
        else:
            url, arn, handler = self.stack.work_queue_url, self.stack.work_queue_arn, self.dispatch
        messages = self.receive(url)
        if not messages:
            return 0
        if name == "dispatch" and self.crash_next_dispatch:
            self.crash_next_dispatch = False
            self.invocations[name] += 1
            return len(messages)  # the container died: no handler result, nothing deleted
        self.deliver(name, handler, messages, url, arn)
        return len(messages)

    # -- EventBridge Scheduler -------------------------------------------------------

    def fire_due_schedules(self) -> int:
        fired = 0
        group = self.stack.schedule_group
        for listed in self.stack.scheduler.list_schedules(GroupName=group)["Schedules"]:
            schedule = self.stack.scheduler.get_schedule(Name=listed["Name"], GroupName=group)
            match = _AT.fullmatch(schedule["ScheduleExpression"])
            if match is None:
                continue  # cron(): tests fire those through the timers handler
            due = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
            if due.timestamp() * 1000 > self.clock.now_ms():
                continue
            target = schedule["Target"]
            assert target["Arn"] == self.stack.work_queue_arn
            self.stack.sqs.send_message(
                QueueUrl=self.stack.work_queue_url, MessageBody=target["Input"]
            )
            self.stack.scheduler.delete_schedule(Name=listed["Name"], GroupName=group)
            fired += 1
        return fired

    def pending_schedules(self) -> int:
        listed = self.stack.scheduler.list_schedules(GroupName=self.stack.schedule_group)
        return len(listed["Schedules"])

    # -- everything ------------------------------------------------------------------

    def step(self) -> int:
        """One round: fire due schedules, drain ingest, then one dispatch poll."""
        work = self.fire_due_schedules()
        while (n := self.poll("ingest")) > 0:
            work += n
        return work + self.poll("dispatch")

    def settle(self, *, max_rounds: int = 200) -> int:
        """Rounds until nothing is visible or due; the number of messages handled."""
        total = 0
        for _ in range(max_rounds):
            handled = self.step()
            total += handled
            if handled == 0:
                return total
        raise AssertionError(f"still busy after {max_rounds} rounds")

    # -- Function URL ----------------------------------------------------------------

    def api(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        raw = b"" if body is None else json.dumps(body).encode()
        path_only, _, query = path.partition("?")
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path_only,
            "rawQueryString": query,
            "headers": {
                "host": "abc.lambda-url.us-east-1.on.aws",
                "content-type": "application/json",
                **(headers or {}),
            },
            "requestContext": {
                "http": {
                    "method": method,
                    "path": path_only,
                    "sourceIp": "203.0.113.9",
                    "protocol": "HTTP/1.1",
                },
                "domainName": "abc.lambda-url.us-east-1.on.aws",
                "requestId": str(uuid.uuid4()),
            },
            "body": base64.b64encode(raw).decode(),
            "isBase64Encoded": True,
        }
        self.invocations["api"] += 1
        response = self.api_handler(event, FakeLambdaContext())
        text = response["body"]
        if response.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        try:
            return response["statusCode"], json.loads(text) if text else None
        except ValueError:
            return response["statusCode"], text
