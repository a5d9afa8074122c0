"""``wayline dashboard --stack NAME``: the dashboard on the user's machine, reading a deployed
stack's DynamoDB table and S3 bucket with the caller's own AWS credentials.

The stack's outputs name the table and the bucket (``TableName``, ``PayloadBucketName`` in
template.yaml); nothing public is added to the stack. The dashboard is read-only here: its
actions (cancel, send) would need the stack's queues and bus, which the dashboard does not
drive, so they are not rendered, and only the GET half of the REST API is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from wayline.api.dashboard import DashboardConfig
from wayline.api.rest import ApiConfig, create_app
from wayline.clock import OsEntropy, SystemClock
from wayline.engine.service import Service
from wayline.errors import ConfigError
from wayline.store.dynamodb import DynamoStore

from .clients import cloudformation_client, dynamodb_client, s3_client, translate_errors
from .s3 import S3Offload

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient

__all__ = ["StackResources", "dashboard_app", "stack_resources"]

TABLE_OUTPUT = "TableName"
BUCKET_OUTPUT = "PayloadBucketName"


@dataclass(frozen=True, slots=True)
class StackResources:
    stack: str
    table: str
    bucket: str | None


def stack_resources(client: CloudFormationClient, stack: str) -> StackResources:
    """The table and bucket a Wayline stack's outputs name; ``ConfigError`` saying what is
    missing (no such stack, or a stack without the outputs: not Wayline, or too old)."""
    with translate_errors("cloudformation", "DescribeStacks"):
        try:
            stacks = client.describe_stacks(StackName=stack)["Stacks"]
        except client.exceptions.ClientError as exc:
            if "does not exist" in str(exc):
                raise ConfigError(f"stack {stack!r} not found in this account and region") from exc
            raise
    outputs: Mapping[str, str] = {
        o["OutputKey"]: o["OutputValue"]
        for o in (stacks[0].get("Outputs") or [])
        if "OutputKey" in o and "OutputValue" in o
    }
    table = outputs.get(TABLE_OUTPUT)
    if not table:
        raise ConfigError(
            f"stack {stack!r} has no {TABLE_OUTPUT} output: is it a Wayline stack "
            "deployed from this version's template.yaml?"
        )
    return StackResources(stack=stack, table=table, bucket=outputs.get(BUCKET_OUTPUT) or None)


def dashboard_app(
    stack: str, *, region: str | None = None, endpoint_url: str | None = None
) -> tuple[ASGIApp, StackResources]:
    """The read-only dashboard + GET API over the stack's store."""
    found = stack_resources(
        cloudformation_client(region_name=region, endpoint_url=endpoint_url), stack
    )
    offload = (
        S3Offload(
            bucket=found.bucket, client=s3_client(region_name=region, endpoint_url=endpoint_url)
        )
        if found.bucket
        else None
    )
    store = DynamoStore(
        table_name=found.table,
        client=dynamodb_client(region_name=region, endpoint_url=endpoint_url),
        s3=offload,
    )
    service = Service(store.store(), SystemClock(), OsEntropy())
    where = f"aws · stack {stack}" + (f" · {region}" if region else "")
    app = create_app(
        service,
        ApiConfig(),
        dashboard=DashboardConfig(store_label=where, read_only=True),
    )
    return app, found
