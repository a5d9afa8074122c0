"""template.yaml, validated offline: cfn-lint, the SAM translation, and least-privilege IAM.

The IAM checks run on the *translated* template (what CloudFormation really deploys), so
the roles SAM generates, and the AWS managed policies it attaches, are checked too.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]
from handlers._shared import FAILED_RECORDS
from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

from wayline.aws.observability import RUN_METRICS
from wayline.store.dynamodb_schema import cloudformation_properties

from . import cfn_stack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
DASHBOARD = ROOT / "infra" / "dashboard.json"

AWS_MANAGED = cfn_stack.AWS_MANAGED
"""The only AWS managed policies a function may carry (SAM adds them for logs and tracing)."""

AWS_MANAGED_ACTIONS = {
    AWS_MANAGED["AWSLambdaBasicExecutionRole"]: {
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    },
    AWS_MANAGED["AWSXrayWriteOnlyAccess"]: {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:GetSamplingStatisticSummaries",
    },
}
"""Their documents (both grant on ``Resource: *``: these actions support no resource scoping)."""

STAR_RESOURCE_EXCEPTIONS = set().union(*AWS_MANAGED_ACTIONS.values())
"""The documented exceptions to "no action on Resource: *": CloudWatch Logs and X-Ray."""

FUNCTION_SERVICES = {
    "IngestFunction": {"dynamodb", "s3", "sqs", "scheduler", "iam", "logs", "xray"},
    "DispatchFunction": {"dynamodb", "s3", "sqs", "scheduler", "iam", "ssm", "logs", "xray"},
    "TimersFunction": {"dynamodb", "s3", "sqs", "scheduler", "iam", "logs", "xray"},
    "ApiFunction": {"dynamodb", "s3", "sqs", "scheduler", "iam", "events", "ssm", "logs", "xray"},
}
"""What each function talks to: ingest and timers never see a key or the bus."""

SCOPE_RESOURCES = {
    "StateTable",
    "PayloadBucket",
    "IngestQueue",
    "WorkQueue",
    "WorkDeadLetterQueue",
    "EventBus",
    "ScheduleGroup",
    "SchedulerRole",
    "TimersFunction",
    "SigningKeyParameter",
    "SigningKeyFallbackParameter",
    "EventKeyParameter",
}
"""Every scoped grant names one of these stack resources (or key parameters)."""


def load_template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse(TEMPLATE.read_text())
    return parsed


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """template.yaml through SAM's translator, offline: s3:// code URIs (as after
    ``sam package``) and a fixed managed-policy map instead of an IAM lookup. The same
    translation the other AWS tests deploy into moto (``cfn_stack``), so what is checked
    here is what they run against."""
    return cfn_stack.translated()


# ---------------------------------------------------------------------- lint, translate


def test_cfn_lint_is_clean() -> None:
    matches = lint_file(TEMPLATE, config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_sam_translation_succeeds_offline(translated: Mapping[str, Any]) -> None:
    types = {r["Type"] for r in translated["Resources"].values()}
    assert "AWS::Serverless::Function" not in types
    functions = [
        k for k, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
    ]
    assert sorted(functions) == sorted(FUNCTION_SERVICES)
    assert any(r["Type"] == "AWS::Lambda::Url" for r in translated["Resources"].values())


def test_the_four_functions_share_one_dependency_layer(translated: Mapping[str, Any]) -> None:
    """The dependencies are built and uploaded once (infra/lambda.mk), not per function."""
    resources = translated["Resources"]
    layers = [k for k, r in resources.items() if r["Type"] == "AWS::Lambda::LayerVersion"]
    assert len(layers) == 1
    for function in FUNCTION_SERVICES:
        assert resources[function]["Properties"]["Layers"] == [{"Ref": layers[0]}]
    source = load_template()["Resources"]["DependenciesLayer"]
    assert source["Metadata"]["BuildMethod"] == "makefile"


def test_the_layer_installs_every_runtime_dependency_of_wayline() -> None:
    """infra/lambda-requirements.txt = pyproject's dependencies (but uvicorn and its
    httptools and uvloop, which only `wayline dev` uses) + the [aws] extra: a dependency added
    to one and not the other would be an ImportError in Lambda only."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev_server_only = ("uvicorn", "httptools", "uvloop")
    wanted = {r for r in project["dependencies"] if not r.startswith(dev_server_only)}
    wanted |= set(project["optional-dependencies"]["aws"])
    lines = (ROOT / "infra" / "lambda-requirements.txt").read_text().splitlines()
    listed = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert listed == wanted


# ---------------------------------------------------------------------- table, bucket, queues


def test_table_matches_the_schema_module() -> None:
    table = load_template()["Resources"]["StateTable"]["Properties"]
    schema = cloudformation_properties()
    for key in (
        "KeySchema",
        "AttributeDefinitions",
        "GlobalSecondaryIndexes",
        "BillingMode",
        "TimeToLiveSpecification",
    ):
        assert table[key] == schema[key], key


def test_bucket_is_encrypted_private_tls_only_and_expires_objects() -> None:
    resources = load_template()["Resources"]
    bucket = resources["PayloadBucket"]["Properties"]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["LifecycleConfiguration"]["Rules"][0]["Status"] == "Enabled"
    (deny,) = resources["PayloadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_queue_has_a_dead_letter_queue_and_every_dlq_an_alarm() -> None:
    resources = load_template()["Resources"]
    for queue in ("IngestQueue", "WorkQueue"):
        redrive = resources[queue]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0].endswith("DeadLetterQueue")
    target = resources["EventRule"]["Properties"]["Targets"][0]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["IngestDeadLetterQueue", "Arn"]}
    alarmed = {
        (
            r["Properties"]["MetricName"],
            r["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0],
        )
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == "AWS/SQS"
    }
    assert alarmed == {
        ("ApproximateNumberOfMessagesVisible", "IngestDeadLetterQueue"),
        ("ApproximateNumberOfMessagesVisible", "WorkDeadLetterQueue"),
        ("ApproximateAgeOfOldestMessage", "WorkQueue"),
    }


def test_failed_records_of_each_sqs_function_are_alarmed_on_the_metric_they_emit() -> None:
    resources = load_template()["Resources"]
    alarmed = {
        tuple((d["Name"], d["Value"]) for d in r["Properties"]["Dimensions"])
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and (r["Properties"]["Namespace"], r["Properties"]["MetricName"])
        == ("Wayline", FAILED_RECORDS)
    }
    # the dimensions RecordProcessor puts on the metric (tests/aws/test_failure_handling.py)
    assert alarmed == {
        (("service", "wayline"), ("handler", "ingest")),
        (("service", "wayline"), ("handler", "dispatch")),
    }


def test_dashboard_is_infra_dashboard_json() -> None:
    body = load_template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert json.loads(body) == json.loads(DASHBOARD.read_text())


def test_every_function_has_reserved_concurrency_and_a_throttle_alarm() -> None:
    template = load_template()
    resources = template["Resources"]
    for function in FUNCTION_SERVICES:
        name = function.removesuffix("Function")
        reserved = resources[function]["Properties"]["ReservedConcurrentExecutions"]
        parameter = f"{name}ReservedConcurrency"
        assert reserved == {
            "Fn::If": [f"Reserve{name}", {"Ref": parameter}, {"Ref": "AWS::NoValue"}]
        }
        assert template["Parameters"][parameter]["Default"] > 0
        alarm = resources[f"{name}ThrottlesAlarm"]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Throttles")
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    parameters = template["Parameters"]
    assert (
        parameters["DispatchReservedConcurrency"]["Default"]
        > parameters["DispatchMaxConcurrency"]["Default"]
    )


def test_one_retention_parameter_drives_the_bucket_and_the_table_ttl() -> None:
    template = load_template()
    bucket = template["Resources"]["PayloadBucket"]["Properties"]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "PayloadRetentionDays"}
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["WAYLINE_RETENTION_DAYS"] == {"Ref": "PayloadRetentionDays"}
    # A claim-checked event must outlive its message in the 14-day dead-letter queue.
    assert template["Parameters"]["PayloadRetentionDays"]["MinValue"] == 14


def test_saved_queries_search_the_functions_log_groups() -> None:
    resources = load_template()["Resources"]
    queries = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Logs::QueryDefinition"
    }
    assert set(queries) == {"RunLinesQuery", "FailuresQuery", "UnfinishedRunsQuery"}
    groups = [{"Ref": f"{fn.removesuffix('Function')}LogGroup"} for fn in FUNCTION_SERVICES]
    assert queries["RunLinesQuery"]["LogGroupNames"] == groups
    assert 'filter run_id = "RUN_ID"' in queries["RunLinesQuery"]["QueryString"]
    assert 'level = "ERROR"' in queries["FailuresQuery"]["QueryString"]


def test_the_dashboard_charts_every_run_metric() -> None:
    expressions = [
        entry["expression"]
        for widget in json.loads(DASHBOARD.read_text())["widgets"]
        for line in widget["properties"]["metrics"]
        for entry in line
        if isinstance(entry, dict) and "expression" in entry
    ]
    for name in RUN_METRICS:
        assert any(f'MetricName="{name}"' in e for e in expressions), name


def test_keys_are_noecho_parameter_names_and_never_outputs() -> None:
    template = load_template()
    keys = ("SigningKeyParameter", "SigningKeyFallbackParameter", "EventKeyParameter")
    for name in keys:
        assert template["Parameters"][name]["NoEcho"] is True
    outputs = json.dumps(template["Outputs"])
    assert not any(name in outputs for name in keys)
    assert set(template["Outputs"]) >= {"ApiUrl", "EventBusName"}


# ---------------------------------------------------------------------- IAM


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allow_statements(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for statement in _as_list(document["Statement"]):
        if statement["Effect"] == "Allow":
            yield statement


def role_grants(template: Mapping[str, Any], role: str) -> list[tuple[set[str], list[Any]]]:
    """(actions, resources) of every Allow statement that reaches ``role``."""
    resources = template["Resources"]
    props = resources[role]["Properties"]
    grants: list[tuple[set[str], list[Any]]] = []
    for policy in props.get("Policies", []):
        for s in _allow_statements(policy["PolicyDocument"]):
            grants.append((set(_as_list(s["Action"])), _as_list(s["Resource"])))
    for arn in props.get("ManagedPolicyArns", []):
        if isinstance(arn, dict):  # a customer managed policy of this stack
            document = resources[arn["Ref"]]["Properties"]["PolicyDocument"]
            for s in _allow_statements(document):
                grants.append((set(_as_list(s["Action"])), _as_list(s["Resource"])))
        else:
            assert arn in AWS_MANAGED_ACTIONS, f"{role} has an unexpected managed policy {arn}"
            grants.append((AWS_MANAGED_ACTIONS[arn], ["*"]))
    return grants


def all_policy_documents(template: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield name, policy["PolicyDocument"]
        elif resource["Type"] in (
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
            "AWS::SQS::QueuePolicy",
            "AWS::S3::BucketPolicy",
        ):
            yield name, props["PolicyDocument"]


def iam_violations(template: Mapping[str, Any]) -> list[str]:
    """Every breach of the IAM rules in ``template`` (a translated template)."""
    found: list[str] = []
    for name, document in all_policy_documents(template):
        for statement in _allow_statements(document):
            actions = set(_as_list(statement["Action"]))
            found += [f"{name}: wildcard action {a}" for a in sorted(actions) if "*" in a]
            if "*" in _as_list(statement["Resource"]) and not actions <= STAR_RESOURCE_EXCEPTIONS:
                found.append(f"{name}: {sorted(actions)} on Resource *")
    for role in FUNCTION_SERVICES:
        for actions, resources in role_grants(template, f"{role}Role"):
            for resource in resources:
                refs = set() if resource == "*" else _references(resource)
                if resource != "*" and not (refs and refs <= SCOPE_RESOURCES):
                    found.append(f"{role}: {sorted(actions)} on unscoped {resource}")
    return found


def test_iam_rules_hold(translated: Mapping[str, Any]) -> None:
    assert iam_violations(translated) == []


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("dynamodb:*", {"Fn::GetAtt": ["StateTable", "Arn"]}),
        ("sqs:SendMessage", "*"),
        ("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/*"),
    ],
)
def test_the_iam_rules_catch_a_bad_grant(
    translated: Mapping[str, Any], action: str, resource: Any
) -> None:
    broken = copy.deepcopy(dict(translated))
    role = broken["Resources"]["IngestFunctionRole"]["Properties"]
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    role["Policies"].append({"PolicyName": "oops", "PolicyDocument": {"Statement": [statement]}})
    assert iam_violations(broken) != []


def test_no_wildcard_actions_anywhere(translated: Mapping[str, Any]) -> None:
    for name, document in all_policy_documents(translated):
        for statement in _allow_statements(document):
            for action in _as_list(statement["Action"]):
                assert action != "*" and not action.endswith(":*"), (name, action)
                assert "*" not in action, (name, action)


def test_no_data_plane_action_on_star_resource(translated: Mapping[str, Any]) -> None:
    roles = [k for k, r in translated["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == 5  # four functions + the scheduler's delivery role
    for role in roles:
        for actions, resources in role_grants(translated, role):
            if "*" in resources:
                assert actions <= STAR_RESOURCE_EXCEPTIONS, (role, sorted(actions))
    for name, document in all_policy_documents(translated):
        for statement in _allow_statements(document):
            if "*" in _as_list(statement["Resource"]):
                assert set(_as_list(statement["Action"])) <= STAR_RESOURCE_EXCEPTIONS, name


def _references(value: Any) -> set[str]:
    """Logical ids (and parameter names) an intrinsic-function value refers to."""
    if isinstance(value, dict):
        if "Ref" in value:
            return set() if value["Ref"].startswith("AWS::") else {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            names = {part.split("}")[0].split(".")[0] for part in text.split("${")[1:]}
            return {n for n in names if not n.startswith("AWS::")}
        return set().union(*(_references(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value))
    return set()


def test_scoped_grants_name_this_stacks_resources(translated: Mapping[str, Any]) -> None:
    for role in FUNCTION_SERVICES:
        for actions, resources in role_grants(translated, f"{role}Role"):
            for resource in resources:
                if resource == "*":
                    continue
                refs = _references(resource)
                assert refs and refs <= SCOPE_RESOURCES, (role, sorted(actions), resource)


@pytest.mark.parametrize("function", sorted(FUNCTION_SERVICES))
def test_each_function_gets_only_the_services_it_uses(
    translated: Mapping[str, Any], function: str
) -> None:
    grants = role_grants(translated, f"{function}Role")
    services = {action.split(":")[0] for actions, _ in grants for action in actions}
    assert services == FUNCTION_SERVICES[function]


def _statements(template: Mapping[str, Any], role: str) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for policy in template["Resources"][role]["Properties"].get("Policies", []):
        found += _as_list(policy["PolicyDocument"]["Statement"])
    return found


TABLE_WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
}


@pytest.mark.parametrize("function", ["IngestFunction", "DispatchFunction", "TimersFunction"])
def test_engine_workers_write_state_through_the_shared_state_policy(
    translated: Mapping[str, Any], function: str
) -> None:
    arns = translated["Resources"][f"{function}Role"]["Properties"]["ManagedPolicyArns"]
    assert {"Ref": "StateAccessPolicy"} in arns and {"Ref": "StateReadPolicy"} in arns


def test_the_api_function_writes_only_its_own_items_and_checkpointed_step_results(
    translated: Mapping[str, Any],
) -> None:
    """Step results reach the api through ``POST /v1/checkpoint/{run}/async`` (signing key
    required), so it may write memo items and their payloads; never work-item claims."""
    role = translated["Resources"]["ApiFunctionRole"]["Properties"]
    assert {"Ref": "StateAccessPolicy"} not in role["ManagedPolicyArns"]
    statements = _statements(translated, "ApiFunctionRole")
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    (own,) = [s for s in allowed if set(_as_list(s["Action"])) & TABLE_WRITES]  # the only one
    leading = own["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert not any(pattern.startswith("Q") for pattern in leading)  # work-item claims
    assert {"APPS", "FNS", "RUN*"} <= set(leading)
    assert not [s for s in statements if s["Effect"] == "Deny"]
    (payloads,) = [s for s in statements if "s3:PutObject" in _as_list(s["Action"])]
    prefixes = {r["Fn::Sub"].split("/")[1] for r in payloads["Resource"]}
    assert {"memo", "run"} <= prefixes


def test_only_dispatch_and_api_read_the_keys(translated: Mapping[str, Any]) -> None:
    readers = {
        function
        for function in FUNCTION_SERVICES
        for actions, _ in role_grants(translated, f"{function}Role")
        if "ssm:GetParameter" in actions
    }
    assert readers == {"DispatchFunction", "ApiFunction"}


def test_scheduler_role_is_assumable_by_scheduler_of_this_account_only(
    translated: Mapping[str, Any],
) -> None:
    trust = translated["Resources"]["SchedulerRole"]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }


def test_lambda_platform_lines_are_filtered_but_emf_lines_are_not() -> None:
    # START/END/REPORT (INFO system logs, ~350 bytes an invocation: one per checkpoint on
    # the api function) are not shipped; EMF lines carry no "level", Lambda files them at
    # INFO, so application logs must stay at INFO or the metrics would vanish.
    config = load_template()["Globals"]["Function"]["LoggingConfig"]
    assert config == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN"}
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_LOG_LEVEL"] == config["ApplicationLogLevel"]
