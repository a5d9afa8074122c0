"""The fault injector itself: each kind does to moto what it says, no more."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from wayline.aws.clients import dynamodb_client

from .conftest import REGION, Stack
from .faults import ContainerDied, Fault, Faults, Kind


def put(client: object, stack: Stack, pk: str) -> None:
    client.put_item(  # type: ignore[attr-defined]
        TableName=stack.table, Item={"pk": {"S": pk}, "sk": {"S": "x"}}
    )


def stored(stack: Stack, pk: str) -> bool:
    got = stack.ddb.get_item(TableName=stack.table, Key={"pk": {"S": pk}, "sk": {"S": "x"}})
    return "Item" in got


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def client(stack: Stack, faults: Faults) -> object:
    return faults.attach(dynamodb_client(region_name=REGION))


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (Kind.THROTTLE, "ProvisionedThroughputExceededException"),
        (Kind.SERVER_ERROR, "InternalServerError"),
    ],
)
def test_a_refused_request_never_reaches_moto(
    stack: Stack, faults: Faults, client: object, kind: Kind, code: str
) -> None:
    faults.add(Fault("dynamodb", "PutItem", kind))
    with pytest.raises(ClientError) as info:
        put(client, stack, "a")
    assert info.value.response["Error"]["Code"] == code
    assert not stored(stack, "a")
    put(client, stack, "a")  # one call only: the next goes through
    assert stored(stack, "a")


def test_an_ambiguous_write_is_applied_and_reported_as_failed(
    stack: Stack, faults: Faults, client: object
) -> None:
    faults.add(Fault("dynamodb", "PutItem", Kind.AMBIGUOUS))
    with pytest.raises(ClientError) as info:
        put(client, stack, "a")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert stored(stack, "a")


def test_a_retried_ambiguous_conditional_write_fails_its_condition(
    stack: Stack, faults: Faults, client: object
) -> None:
    """What AWS does to a retried write that had succeeded: the retry finds its own item."""
    faults.add(Fault("dynamodb", "PutItem", Kind.AMBIGUOUS, retried=True))
    with pytest.raises(ClientError) as info:
        client.put_item(  # type: ignore[attr-defined]
            TableName=stack.table,
            Item={"pk": {"S": "a"}, "sk": {"S": "x"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    assert info.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert stored(stack, "a")


def test_crashes_before_and_after_a_request(stack: Stack, faults: Faults, client: object) -> None:
    faults.add(Fault("dynamodb", "PutItem", Kind.CRASH_BEFORE))
    with pytest.raises(ContainerDied):
        put(client, stack, "a")
    assert not stored(stack, "a")
    faults.add(Fault("dynamodb", "PutItem", Kind.CRASH_AFTER))
    with pytest.raises(ContainerDied):
        put(client, stack, "b")
    assert stored(stack, "b")


def test_skip_and_when_pick_the_call(stack: Stack, faults: Faults, client: object) -> None:
    faults.add(
        Fault(
            "dynamodb",
            "PutItem",
            Kind.THROTTLE,
            skip=1,
            when=lambda _op, params: params["Item"]["pk"]["S"].startswith("k"),
        )
    )
    put(client, stack, "other")  # does not match
    put(client, stack, "k1")  # matches, skipped
    with pytest.raises(ClientError):
        put(client, stack, "k2")
    assert [stored(stack, k) for k in ("other", "k1", "k2")] == [True, True, False]
    assert faults.injected == [("dynamodb", "PutItem", Kind.THROTTLE)]
