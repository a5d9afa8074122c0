"""The AWS tests run on template.yaml deployed into moto's CloudFormation (``cfn_stack``):
these tests pin that the deployed resources are the template's, and that the parts the
tests play themselves (Lambda's SQS mappings, the functions' environment) agree with it.
Before, the tests built their resources by hand and had drifted from the template (work
queue ``maxReceiveCount`` 5 against the template's 10; issue 11)."""

from __future__ import annotations

import json
from typing import Any

import boto3

from wayline.aws.clients import cloudformation_client, dynamodb_client
from wayline.store.dynamodb import create_table
from wayline.store.dynamodb_schema import cloudformation_properties

from .cfn_stack import CREATED_BESIDE_MOTO, DROPPED_FOR_MOTO, for_moto, physical_ids, translated
from .conftest import REGION, Stack

STACK = "wl"


def resources() -> dict[str, Any]:
    found: dict[str, Any] = translated()["Resources"]
    return found


def attributes(stack: Stack, url: str) -> dict[str, str]:
    got = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return {str(k): v for k, v in got["Attributes"].items()}


def test_the_queues_are_the_templates(stack: Stack) -> None:
    template = resources()
    for name, url in (("WorkQueue", stack.work_queue_url), ("IngestQueue", stack.ingest_queue_url)):
        declared = template[name]["Properties"]
        deployed = attributes(stack, url)
        assert int(deployed["VisibilityTimeout"]) == declared["VisibilityTimeout"]
        assert int(deployed["MessageRetentionPeriod"]) == declared["MessageRetentionPeriod"]
        redrive = json.loads(deployed["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == declared["RedrivePolicy"]["maxReceiveCount"]
    work = json.loads(attributes(stack, stack.work_queue_url)["RedrivePolicy"])
    assert work == {"deadLetterTargetArn": stack.work_dlq_arn, "maxReceiveCount": 10}


def test_the_table_has_the_keys_and_indexes_the_store_creates(stack: Stack) -> None:
    """The contract tests' tables come from ``create_table``; the stack's from the template:
    both must be ``cloudformation_properties()``."""
    ddb = dynamodb_client(region_name=REGION)
    create_table(ddb, "probe")

    def shape(table: str) -> dict[str, Any]:
        described = ddb.describe_table(TableName=table)["Table"]
        indexes = {
            i["IndexName"]: (i["KeySchema"], i["Projection"])
            for i in described.get("GlobalSecondaryIndexes", [])
        }
        return {
            "keys": described["KeySchema"],
            "attributes": sorted(a["AttributeName"] for a in described["AttributeDefinitions"]),
            "indexes": indexes,
        }

    deployed = shape(stack.table)
    assert deployed == shape("probe")
    declared = cloudformation_properties()
    assert set(deployed["indexes"]) == {i["IndexName"] for i in declared["GlobalSecondaryIndexes"]}
    # moto's CloudFormation ignores TimeToLiveSpecification: compare the template's.
    ttl = ddb.describe_time_to_live(TableName="probe")["TimeToLiveDescription"]
    assert resources()["StateTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": ttl["AttributeName"],
        "Enabled": True,
    }


def test_the_drivers_mappings_are_the_templates(stack: Stack) -> None:
    """The Driver plays Lambda's event source mappings: the same batch size, partial batch
    responses, and queue -> function wiring as the deployed mappings."""
    ids = physical_ids(cloudformation_client(region_name=REGION), STACK)
    lam = boto3.client("lambda", region_name=REGION)
    wiring = {}
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        assert mapping["BatchSize"] == 10  # Driver.receive: MaxNumberOfMessages=10
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["State"] == "Disabled"  # the Driver polls instead (cfn_stack)
        wiring[mapping["EventSourceArn"].rsplit(":", 1)[1]] = mapping["FunctionArn"].rsplit(":", 1)[
            1
        ]
    assert wiring == {
        stack.work_queue_arn.rsplit(":", 1)[1]: ids["DispatchFunction"],
        stack.ingest_queue_url.rsplit("/", 1)[1]: ids["IngestFunction"],
    }


def test_the_runtimes_environment_is_what_the_template_gives_the_functions(
    stack: Stack,
) -> None:
    """``Stack.env()`` (what the tests' runtimes read) against each deployed function's
    environment: every name the tests set is set by the template, to the same value."""
    ids = physical_ids(cloudformation_client(region_name=REGION), STACK)
    lam = boto3.client("lambda", region_name=REGION)
    ours = {k: v for k, v in stack.env().items() if k.startswith("WAYLINE_")}
    seen: set[str] = set()
    for function in ("IngestFunction", "DispatchFunction", "TimersFunction", "ApiFunction"):
        config = lam.get_function_configuration(FunctionName=ids[function])
        deployed = config["Environment"]["Variables"]
        declared = resources()[function]["Properties"]["Environment"]["Variables"]
        for name, value in ours.items():
            if name not in declared:
                continue
            seen.add(name)
            if declared[name] == {"Ref": "ScheduleGroup"}:  # CREATED_BESIDE_MOTO: no Ref
                assert value == f"{STACK}-wakeups"
            else:
                assert deployed[name] == value, (function, name)
    assert seen == set(ours)


def test_the_iam_the_tests_check_is_the_iam_the_stack_deploys(stack: Stack) -> None:
    """The IAM tests read the translated template (``test_template``, ``test_claim_check``);
    the shim leaves every role and policy in it as it is, and each deployed function runs
    under its own role from it."""
    template = translated()
    shimmed = for_moto(template, STACK)
    iam_types = {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
    for name, resource in template["Resources"].items():
        if resource["Type"] in iam_types:
            assert shimmed["Resources"][name] == resource, name
        if resource["Type"] == "AWS::Lambda::Function":
            assert (
                shimmed["Resources"][name]["Properties"]["Role"] == resource["Properties"]["Role"]
            )
    ids = physical_ids(cloudformation_client(region_name=REGION), STACK)
    lam = boto3.client("lambda", region_name=REGION)
    for function in ("IngestFunction", "DispatchFunction", "TimersFunction", "ApiFunction"):
        role = lam.get_function_configuration(FunctionName=ids[function])["Role"]
        assert role.endswith(f":role/{ids[function + 'Role']}")
    assert len({ids[f + "FunctionRole"] for f in ("Ingest", "Dispatch", "Timers", "Api")}) == 4


def test_only_the_named_types_are_changed_for_moto() -> None:
    template = translated()
    shimmed = for_moto(template, STACK)
    removed = set(template["Resources"]) - set(shimmed["Resources"])
    assert {template["Resources"][n]["Type"] for n in removed} == DROPPED_FOR_MOTO
    changed = {
        n for n in shimmed["Resources"] if shimmed["Resources"][n] != template["Resources"][n]
    }
    assert changed == {"EventRule", "ApiFunction"}  # !Ref EventBus -> its name
    assert {"AWS::Scheduler::ScheduleGroup"} == CREATED_BESIDE_MOTO


def test_the_stack_fixture_is_the_deployed_stack(stack: Stack) -> None:
    ids = physical_ids(cloudformation_client(region_name=REGION), STACK)
    assert stack.table == ids["StateTable"]  # CloudFormation's physical names
    assert stack.work_queue_url == ids["WorkQueue"]
    assert stack.ingest_queue_url == ids["IngestQueue"]
    assert stack.bucket == ids["PayloadBucket"]
