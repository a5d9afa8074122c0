"""Fixtures for the AWS tests: moto (in-process), a virtual clock moto's SQS obeys, and the
stack: template.yaml deployed into moto's CloudFormation (``cfn_stack``). ``provision``
builds the same resources by hand, for the one test that needs them on moto's server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import moto.core.botocore_stubber
import moto.sqs.models
import pytest
from moto import mock_aws

from wayline.aws.clients import (
    cloudformation_client,
    dynamodb_client,
    events_client,
    s3_client,
    scheduler_client,
    sqs_client,
)
from wayline.store.dynamodb import create_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_scheduler.client import EventBridgeSchedulerClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class VirtualClock:
    """Real time plus an offset that tests move forward: the engine's clock, and (through
    ``moto_time``) the clock moto's SQS uses for delays and visibility timeouts."""

    def __init__(self) -> None:
        self._offset_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return time.time_ns() // 1_000_000 + self._offset_ms

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset_ms += ms
        return self.now_ms()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mocked(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    serialize_moto(monkeypatch)
    with mock_aws():
        yield


def serialize_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """One moto request at a time. The dispatch handler runs a batch's records in threads,
    as a Lambda container does; AWS serves them concurrently, but moto's backends are not
    thread-safe (a ``TransactWriteItems`` deep-copies the table while another thread writes
    to it: "dictionary changed size during iteration"). No request here long-polls, so a
    lock held for one request never waits on another."""
    stubber = moto.core.botocore_stubber.BotocoreStubber
    process = stubber.process_request
    lock = threading.RLock()

    def one_at_a_time(self: Any, request: Any) -> Any:
        with lock:
            return process(self, request)

    monkeypatch.setattr(stubber, "process_request", one_at_a_time)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """A virtual clock that moto's SQS follows (delays, visibility timeouts)."""
    virtual = VirtualClock()
    monkeypatch.setattr(moto.sqs.models, "unix_time_millis", lambda *_: float(virtual.now_ms()))
    monkeypatch.setattr(moto.sqs.models, "unix_time", lambda *_: virtual.now_ms() / 1000)
    return virtual


def template_resource(name: str) -> dict[str, Any]:
    from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

    template: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    resource: dict[str, Any] = template["Resources"][name]
    return resource


@dataclass
class Stack:
    """The resources of one deployed stack (on moto), and clients to reach them."""

    ddb: DynamoDBClient
    s3: S3Client
    events: EventBridgeClient
    sqs: SQSClient
    scheduler: EventBridgeSchedulerClient
    table: str
    bucket: str
    bus: str
    ingest_queue_url: str
    ingest_dlq_url: str
    work_queue_url: str
    work_queue_arn: str
    work_dlq_arn: str
    schedule_group: str
    scheduler_role_arn: str
    timers_function_arn: str

    def env(self) -> dict[str, str]:
        """The environment template.yaml gives the functions (minus the key parameters)."""
        return {
            "WAYLINE_TABLE": self.table,
            "WAYLINE_BUCKET": self.bucket,
            "WAYLINE_WORK_QUEUE_URL": self.work_queue_url,
            "WAYLINE_WORK_QUEUE_ARN": self.work_queue_arn,
            "WAYLINE_SCHEDULE_GROUP": self.schedule_group,
            "WAYLINE_SCHEDULER_ROLE_ARN": self.scheduler_role_arn,
            "WAYLINE_SCHEDULER_DLQ_ARN": self.work_dlq_arn,
            "WAYLINE_EVENT_BUS": self.bus,
            "WAYLINE_TIMERS_FUNCTION_ARN": self.timers_function_arn,
            "AWS_DEFAULT_REGION": REGION,
        }


def _queue(sqs: SQSClient, name: str, declared: dict[str, Any], dlq_arn: str) -> str:
    """A queue with the template's visibility timeout and ``maxReceiveCount``."""
    attributes: dict[QueueAttributeNameType, str] = {
        "VisibilityTimeout": str(declared["VisibilityTimeout"]),
        "RedrivePolicy": json.dumps(
            {
                "deadLetterTargetArn": dlq_arn,
                "maxReceiveCount": str(declared["RedrivePolicy"]["maxReceiveCount"]),
            }
        ),
    }
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def _arn(sqs: SQSClient, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def provision(prefix: str = "wl", *, endpoint_url: str | None = None) -> Stack:
    """Create the stack's stateful resources as template.yaml declares them (same rule
    pattern, same visibility timeouts and receive counts, DLQs) on whatever endpoint the
    clients reach: for moto's server (the wire test) and bench/, where the ``stack``
    fixture's CloudFormation deploy is not used."""
    kw: dict[str, Any] = {"region_name": REGION, "endpoint_url": endpoint_url}
    ddb, s3, events = dynamodb_client(**kw), s3_client(**kw), events_client(**kw)
    sqs, scheduler = sqs_client(**kw), scheduler_client(**kw)
    table, bucket, bus = f"{prefix}-state", f"{prefix}-payloads", f"{prefix}-events"
    create_table(ddb, table, wait=False)
    s3.create_bucket(Bucket=bucket)
    events.create_event_bus(Name=bus)
    ingest_dlq = sqs.create_queue(QueueName=f"{prefix}-ingest-dlq")["QueueUrl"]
    work_dlq = sqs.create_queue(QueueName=f"{prefix}-work-dlq")["QueueUrl"]
    queue_props = template_resource("IngestQueue")["Properties"]
    ingest = _queue(sqs, f"{prefix}-ingest", queue_props, _arn(sqs, ingest_dlq))
    work_props = template_resource("WorkQueue")["Properties"]
    work = _queue(sqs, f"{prefix}-work", work_props, _arn(sqs, work_dlq))
    rule = template_resource("EventRule")["Properties"]
    events.put_rule(
        Name=f"{prefix}-ingest", EventBusName=bus, EventPattern=json.dumps(rule["EventPattern"])
    )
    events.put_targets(
        Rule=f"{prefix}-ingest",
        EventBusName=bus,
        Targets=[{"Id": "ingest-queue", "Arn": _arn(sqs, ingest)}],
    )
    group = f"{prefix}-wakeups"
    scheduler.create_schedule_group(Name=group)
    return Stack(
        ddb=ddb,
        s3=s3,
        events=events,
        sqs=sqs,
        scheduler=scheduler,
        table=table,
        bucket=bucket,
        bus=bus,
        ingest_queue_url=ingest,
        ingest_dlq_url=ingest_dlq,
        work_queue_url=work,
        work_queue_arn=_arn(sqs, work),
        work_dlq_arn=_arn(sqs, work_dlq),
        schedule_group=group,
        scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/{prefix}-scheduler",
        timers_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{prefix}-timers",
    )


@pytest.fixture
def stack(mocked: None) -> Stack:
    """template.yaml, SAM-translated and deployed into moto's CloudFormation
    (``tests/aws/cfn_stack.py``): the tests run against the resources the stack created."""
    from .cfn_stack import deploy  # imports this module: not at the top

    return deploy(cloudformation_client(region_name=REGION))
