"""``wayline dashboard --stack``: the dashboard on loopback over a deployed stack's table,
found through the stack's CloudFormation outputs (moto), read with the caller's credentials.
Read-only: no action is rendered and no write route is served."""

from __future__ import annotations

import json

import httpx
import pytest

from api.serving import serving
from wayline.aws.clients import cloudformation_client, dynamodb_client, s3_client
from wayline.aws.stack import dashboard_app
from wayline.cli import main
from wayline.engine.model import Run, RunStatus, StepRecord, StepStatus
from wayline.store.dynamodb import DynamoStore, create_table

from .conftest import REGION, Stack, VirtualClock
from .driver import Driver, make_runtime

STACK = "wayline-prod"
TABLE = "wayline-prod-state"
BUCKET = "wayline-prod-payloads"
NOW = 1_800_000_000_000


def _stack_template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }
    )


def _failed_run() -> Run:
    error = {"name": "CardDeclinedError", "message": "card declined", "stack": "Traceback: x"}
    return Run(
        id="01JRUNONAWS0000000000000AB",
        function_id="shop-charge",
        app_id="shop",
        status=RunStatus.FAILED,
        events=({"name": "shop/order.placed", "data": {"order_id": "o-17"}, "id": "e1"},),
        event_ids=("01JEVENT0000000000000000AB",),
        created_at=NOW,
        started_at=NOW + 5,
        ended_at=NOW + 900,
        output=error,
        steps=(
            StepRecord(
                id="a" * 40,
                name="charge-card",
                op="StepRun",
                status=StepStatus.FAILED,
                attempts=3,
                started_at=NOW + 100,
                ended_at=NOW + 850,
                error=error,
            ),
        ),
    )


@pytest.fixture
def deployed(mocked: None) -> Run:
    create_table(dynamodb_client(region_name=REGION), TABLE)
    s3_client(region_name=REGION).create_bucket(Bucket=BUCKET)
    run = _failed_run()
    assert DynamoStore(
        table_name=TABLE, client=dynamodb_client(region_name=REGION)
    ).runs.create_run(run)
    cloudformation_client(region_name=REGION).create_stack(
        StackName=STACK,
        TemplateBody=_stack_template({"TableName": TABLE, "PayloadBucketName": BUCKET}),
    )
    return run


def test_the_stack_dashboard_reads_the_table_its_outputs_name(deployed: Run) -> None:
    stack = deployed
    app, found = dashboard_app(STACK, region=REGION)
    assert (found.table, found.bucket) == (TABLE, BUCKET)
    with serving(app) as url, httpx.Client(base_url=url) as http:
        runs = http.get("/runs")
        assert runs.status_code == 200
        assert stack.id in runs.text
        assert f"aws · stack {STACK} · {REGION}" in runs.text

        page = http.get(f"/runs/{stack.id}")
        assert page.status_code == 200
        assert "CardDeclinedError" in page.text
        assert "Traceback: x" in page.text
        assert "Cancel run" not in page.text  # read-only: no action rendered

        api = http.get(f"/v1/runs/{stack.id}")
        assert api.json()["data"]["status"] == "Failed"
        # Only the read half of the API: no sends, no cancels, no sync from this process.
        assert http.post("/e/any-key", json={"name": "x/y"}).status_code == 404
        assert http.delete(f"/v1/runs/{stack.id}").status_code == 405
        assert http.post(f"/runs/{stack.id}/cancel").status_code in (404, 405)
        assert http.get("/events").status_code == 200
        assert "Send test event" not in http.get("/events").text


def test_a_stack_without_the_outputs_is_refused_by_name(
    mocked: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cloudformation_client(region_name=REGION).create_stack(
        StackName="not-wayline", TemplateBody=_stack_template({"Other": "x"})
    )
    assert main(["dashboard", "--stack", "not-wayline", "--region", REGION]) == 1
    assert "has no TableName output" in capsys.readouterr().err
    assert main(["dashboard", "--stack", "missing", "--region", REGION]) == 1
    assert "stack 'missing' not found" in capsys.readouterr().err


def test_the_public_aws_api_serves_no_dashboard(stack: Stack, clock: VirtualClock) -> None:
    driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
    for path in ("/", "/runs", "/events", "/apps", "/static/app.js"):
        assert driver.api("GET", path)[0] == 404, path


def test_an_unreadable_table_is_a_page_that_says_so(mocked: None) -> None:
    cloudformation_client(region_name=REGION).create_stack(
        StackName=STACK, TemplateBody=_stack_template({"TableName": "deleted-table"})
    )
    app, _ = dashboard_app(STACK, region=REGION)
    with serving(app) as url, httpx.Client(base_url=url) as http:
        res = http.get("/runs")
    assert res.status_code == 503
    assert f"Cannot read from aws · stack {STACK}" in res.text
    assert "ResourceNotFoundException" in res.text
