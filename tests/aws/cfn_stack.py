"""The AWS tests' stack, deployed from template.yaml into moto's CloudFormation.

template.yaml is translated by SAM's translator (offline, as ``sam deploy`` would before
CloudFormation sees it), then deployed with ``CreateStack`` on moto; the tests' ``Stack``
is read from the stack's physical resource ids. So the queues, the table, the bus and
rule, the schedule group and the roles the topology tests run against are the ones the
template declares: a setting changed in the template changes the tests' resources, and
a setting the tests need that the template lacks fails them (before, the tests built
their resources by hand and drifted: work queue ``maxReceiveCount`` 5 vs the template's 10).

``for_moto`` is the one place where the deployed template differs from the translated
one, each change for a named moto limit (moto 5.2.5), nothing else:

* ``AWS::Lambda::Url`` is dropped, with the ``ApiUrl`` output that reads it. moto's
  CloudFormation has no such resource ("No Moto CloudFormation support for
  AWS::Lambda::Url"), and the output's ``Fn::GetAtt`` then crashes its validation
  (``AttributeError: 'NoneType' object has no attribute 'has_cfn_attr'``). The tests
  reach the api function the way a Function URL would (``Driver.api``).
* ``!Ref EventBus`` (the rule's ``EventBusName``, the api function's
  ``WAYLINE_EVENT_BUS``) becomes the bus's name as a literal, the value that ``Ref`` has
  on AWS (``<stack>-events``): moto resolves it to its Python bus *object*, so the rule
  fails (``AttributeError: 'EventBus' object has no attribute 'split'``) and reading the
  function's configuration fails (``TypeError: Object of type EventBus is not JSON
  serializable``).

The SQS event source mappings are deployed, then disabled: the tests' ``Driver`` plays
Lambda's mapping (receive, invoke the handler, delete what succeeded), while moto's own
mapping would take each message as it is sent and try to run the function in Docker.
``test_template_stack.py`` checks the mappings' settings are the ones the Driver uses.

moto's CloudFormation also skips, with a warning and no error, the types it cannot
create. The schedule group the wake-ups go to is needed, so ``deploy`` creates it beside
the stack with the template's own ``Name`` (``CREATED_BESIDE_MOTO``); the others
(``SKIPPED_BY_MOTO``: alarms, saved queries, queue and bucket policies, the sweep's
``cron()`` schedule) are not deployed, and the offline checks in ``test_template.py``
cover them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import os
import warnings
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from unittest import mock

import boto3
import yaml  # type: ignore[import-untyped]
from samtranslator.parser.parser import Parser  # type: ignore[import-untyped]
from samtranslator.translator.translator import Translator  # type: ignore[import-untyped]
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

from wayline.aws.clients import (
    dynamodb_client,
    events_client,
    s3_client,
    scheduler_client,
    sqs_client,
)

from .conftest import ACCOUNT, REGION, ROOT, Stack

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient

ARTIFACTS = "wayline-artifacts"
"""Where ``sam package`` would have put the code and layer zips."""
AWS_MANAGED = {
    "AWSLambdaBasicExecutionRole": (
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ),
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
"""SAM's managed-policy lookup, offline: the two policies the template's functions use."""
DROPPED_FOR_MOTO = frozenset({"AWS::Lambda::Url"})
CREATED_BESIDE_MOTO = frozenset({"AWS::Scheduler::ScheduleGroup"})
SKIPPED_BY_MOTO = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::Logs::QueryDefinition",
        "AWS::SQS::QueuePolicy",
        "AWS::S3::BucketPolicy",
        "AWS::Scheduler::Schedule",
    }
)


@functools.cache
def _translated_json() -> str:
    template = yaml_parse((ROOT / "template.yaml").read_text())
    template["Globals"]["Function"]["CodeUri"] = f"s3://{ARTIFACTS}/code.zip"
    layer = template["Resources"]["DependenciesLayer"]["Properties"]
    layer["ContentUri"] = f"s3://{ARTIFACTS}/layer.zip"
    translator = Translator(managed_policy_map=AWS_MANAGED, sam_parser=Parser())
    region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # the translator reads it from there
    try:
        return json.dumps(translator.translate(template, {}))
    finally:
        if region is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = region


def translated() -> dict[str, Any]:
    """template.yaml as SAM translates it (a fresh copy each call; translated once)."""
    result: dict[str, Any] = json.loads(_translated_json())
    return result


def for_moto(template: dict[str, Any], stack_name: str) -> dict[str, Any]:
    """The translated template with the changes moto needs (see the module docstring)."""
    shimmed = copy.deepcopy(template)
    resources = shimmed["Resources"]
    for name in [n for n, r in resources.items() if r["Type"] in DROPPED_FOR_MOTO]:
        del resources[name]
        for output in [k for k, o in shimmed.get("Outputs", {}).items() if _reads(o, name)]:
            del shimmed["Outputs"][output]
    bus = resources["EventBus"]["Properties"]["Name"]
    assert bus == {"Fn::Sub": "${AWS::StackName}-events"}, "update for_moto with the template"
    shimmed["Resources"] = _replace_refs(resources, "EventBus", f"{stack_name}-events")
    return shimmed


def _replace_refs(node: Any, resource: str, value: str) -> Any:
    """``node`` with every ``{"Ref": resource}`` replaced by ``value``."""
    if node == {"Ref": resource}:
        return value
    if isinstance(node, dict):
        return {k: _replace_refs(v, resource, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_refs(v, resource, value) for v in node]
    return node


def _reads(output: dict[str, Any], resource: str) -> bool:
    return f'"{resource}"' in json.dumps(output.get("Value"))


def deploy(cfn: CloudFormationClient, stack_name: str = "wl") -> Stack:
    """Deploy template.yaml into moto; the ``Stack`` of its physical resources."""
    s3 = s3_client(region_name=REGION)
    s3.create_bucket(Bucket=ARTIFACTS)
    for key in ("code.zip", "layer.zip"):
        s3.put_object(Bucket=ARTIFACTS, Key=key, Body=_empty_zip())
    template = for_moto(translated(), stack_name)
    with _quiet_json_templates():
        cfn.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(template),
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        (created,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
        ids = physical_ids(cfn, stack_name)
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    mappings = boto3.client("lambda", region_name=REGION)
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            # The Driver plays the mapping: moto's own would take each message as it is
            # sent and run the function in Docker (MAPPINGS_DISABLED).
            mappings.update_event_source_mapping(UUID=ids[name], Enabled=False)
    scheduler = scheduler_client(region_name=REGION)
    group = _stack_sub(template["Resources"]["ScheduleGroup"]["Properties"]["Name"], stack_name)
    scheduler.create_schedule_group(Name=group)  # CREATED_BESIDE_MOTO
    sqs = sqs_client(region_name=REGION)
    lambda_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
    bus = _stack_sub(template["Resources"]["EventBus"]["Properties"]["Name"], stack_name)
    return Stack(
        ddb=dynamodb_client(region_name=REGION),
        s3=s3,
        events=events_client(region_name=REGION),
        sqs=sqs,
        scheduler=scheduler,
        table=ids["StateTable"],
        bucket=ids["PayloadBucket"],
        bus=bus,  # moto records no physical id for a bus; its name is the template's
        ingest_queue_url=ids["IngestQueue"],
        ingest_dlq_url=ids["IngestDeadLetterQueue"],
        work_queue_url=ids["WorkQueue"],
        work_queue_arn=_queue_arn(sqs, ids["WorkQueue"]),
        work_dlq_arn=_queue_arn(sqs, ids["WorkDeadLetterQueue"]),
        schedule_group=group,
        scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/{ids['SchedulerRole']}",
        timers_function_arn=lambda_arn + ids["TimersFunction"],
    )


@contextlib.contextmanager
def _quiet_json_templates() -> Iterator[None]:
    """moto's CloudFormation, quicker and quieter: it warns about each type it skips
    (``SKIPPED_BY_MOTO``, ``CREATED_BESIDE_MOTO``), and it parses every template with
    PyYAML's pure-Python loader first, ~1 s for this one; a JSON template gives the same
    dict from ``json.loads``."""
    real_load = yaml.load

    def load(stream: Any, Loader: Any = None) -> Any:  # noqa: N803 - yaml.load's name
        if isinstance(stream, str) and stream.startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads(stream)
        return real_load(stream, Loader=Loader)

    with warnings.catch_warnings(), mock.patch.object(yaml, "load", load):
        warnings.filterwarnings("ignore", category=UserWarning, module="moto")
        yield


def _stack_sub(value: Any, stack_name: str) -> str:
    """A ``!Sub "${AWS::StackName}..."`` name, as CloudFormation resolves it."""
    assert isinstance(value, dict) and set(value) == {"Fn::Sub"}, value
    text = value["Fn::Sub"]
    assert isinstance(text, str) and text.count("${") == 1, text
    return text.replace("${AWS::StackName}", stack_name)


def physical_ids(cfn: CloudFormationClient, stack_name: str) -> dict[str, str]:
    """Logical id -> physical id of every resource moto created."""
    with _quiet_json_templates():  # moto parses the template again
        pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        return {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for page in pages
            for r in page["StackResourceSummaries"]
        }


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    return buffer.getvalue()
