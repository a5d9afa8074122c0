"""boto3 clients for Wayline, and the one place AWS errors become Wayline errors.

Clients are built here, once per process (a Lambda container reuses them across
invocations), from one shared ``boto3.session.Session`` under a lock: a session is not
safe to create clients from in several threads at once (a client is), and sharing it
means botocore loads each service model once per process, not once per client (about
0.3 s for DynamoDB's: a cold start builds five clients). Every client gets
the same botocore ``Config``: standard retries (exponential backoff with jitter on
throttling and 5xx), short timeouts (a DynamoDB call takes milliseconds; a hung
connection should fail over to a retry, not eat a Lambda's time budget), and a user
agent suffix so that Wayline's calls can be told apart in CloudTrail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from wayline import __version__
from wayline.errors import StoreError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_scheduler.client import EventBridgeSchedulerClient
    from mypy_boto3_sqs.client import SQSClient

__all__ = [
    "add_event_hook",
    "client_config",
    "cloudformation_client",
    "dynamodb_client",
    "error_code",
    "events_client",
    "s3_client",
    "scheduler_client",
    "sqs_client",
    "translate_errors",
]

USER_AGENT_EXTRA = f"wayline/{__version__}"

_SESSION: list[boto3.session.Session] = []
_SESSION_LOCK = threading.Lock()


@contextmanager
def _session() -> Iterator[boto3.session.Session]:
    """The process's session, held under the lock while a client is created from it."""
    with _SESSION_LOCK:
        if not _SESSION:
            _SESSION.append(boto3.session.Session())
        yield _SESSION[0]


def add_event_hook(event_name: str, handler: Callable[..., Any]) -> None:
    """Register a botocore event handler (``before-call``, ``after-call.dynamodb``, ...)
    on every client this module builds *after* the call: instrumentation such as the
    request counting in ``bench/aws_cost.py``."""
    with _session() as session:
        session.events.register(event_name, handler)


def client_config(
    *,
    connect_timeout: float = 2.0,
    read_timeout: float = 10.0,
    max_attempts: int = 5,
    retry_mode: Literal["standard", "adaptive"] = "standard",
) -> Config:
    """The botocore ``Config`` every Wayline client uses.

    ``standard`` retries by default: ``adaptive`` adds a client-side rate limiter that
    helps a long-lived process hammering one table, but in short-lived Lambda containers
    it mostly delays the first calls after a throttle.
    """
    return Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        user_agent_extra=USER_AGENT_EXTRA,
        tcp_keepalive=True,
    )


def dynamodb_client(
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> DynamoDBClient:
    """A DynamoDB client; region and credentials come from the usual AWS sources."""
    with _session() as session:
        return session.client(
            "dynamodb",
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config or client_config(),
        )


def s3_client(
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> S3Client:
    """An S3 client, with the same configuration as every other Wayline client."""
    with _session() as session:
        return session.client(
            "s3",
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config or client_config(),
        )


def events_client(
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> EventBridgeClient:
    """An EventBridge (event bus) client."""
    with _session() as session:
        return session.client(
            "events",
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config or client_config(),
        )


def sqs_client(
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> SQSClient:
    """An SQS client."""
    with _session() as session:
        return session.client(
            "sqs",
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config or client_config(),
        )


def scheduler_client(
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> EventBridgeSchedulerClient:
    """An EventBridge Scheduler client."""
    with _session() as session:
        return session.client(
            "scheduler",
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config or client_config(),
        )


def cloudformation_client(
    *,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> CloudFormationClient:
    """A CloudFormation client (``wayline dashboard --stack`` reads the stack's outputs)."""
    with _session() as session:
        return session.client(
            "cloudformation",
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=config or client_config(),
        )


def error_code(exc: ClientError) -> str:
    """The AWS error code of a failed call (``ConditionalCheckFailedException``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


@contextmanager
def translate_errors(service: str, operation: str) -> Iterator[None]:
    """Turn any boto3/botocore failure inside the block into a ``StoreError``.

    The message names the service, the operation and the AWS error code (plus the
    request id, for AWS support), never AWS's own message: for a rejected write that
    message can quote the item, and items hold user data.
    """
    try:
        yield
    except ClientError as exc:
        request_id = exc.response.get("ResponseMetadata", {}).get("RequestId", "")
        suffix = f" (request id {request_id})" if request_id else ""
        raise StoreError(f"{service} {operation} failed: {error_code(exc)}{suffix}") from exc
    except BotoCoreError as exc:
        # Connection, timeout, credential or parameter errors: the class says which;
        # str(exc) is left out because parameter errors echo the values sent.
        raise StoreError(f"{service} {operation} failed: {type(exc).__name__}") from exc
