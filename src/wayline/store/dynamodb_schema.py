"""The DynamoDB table Wayline uses, defined once: ``create_table`` and template.yaml's
``AWS::DynamoDB::Table`` are both generated from (or checked against) ``INDEXES`` here.

One table, ``pk``/``sk`` strings, on-demand billing, TTL on ``expires_at`` (epoch
seconds), and one sparse GSI per access pattern that a key lookup cannot serve. An item
is in an index only if it has that index's key attributes, so each index holds one kind
of item. Indexes over items that change often (runs, queue items) project keys only: a
write that changes no projected attribute costs the index nothing, so a ``save_run``
pays for the run item alone; the bodies are then fetched by key.

Item layouts are in ``wayline.store.keys``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from wayline.aws.clients import translate_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        CreateTableInputTypeDef,
        GlobalSecondaryIndexTypeDef,
        ProjectionTypeDef,
    )

PK = "pk"
SK = "sk"
TTL_ATTRIBUTE = "expires_at"
"""Epoch seconds. Set on idempotency keys, leases and counters; with a retention
(``DynamoStore(retention_days=...)``, template.yaml's ``PayloadRetentionDays``) also on
events, memos and event links when they are written and on a run item in the save that
finishes it (``Retention``). DynamoDB deletes expired items within days, not on time, so
readers still check expiry themselves."""

TTL_MARGIN_MS = 2 * 24 * 3600 * 1000
"""Items expire this much before their retention ends: DynamoDB deletes an expired item
within about 48 hours, and the S3 payload an item points to expires (lifecycle rule, same
number of days) no earlier than the retention after the item was written. So an item is
always gone before its payload: nothing is ever left pointing at a deleted payload."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long events and runs are kept: each item's TTL, from the time it belongs to.

    Retention counts from an event's arrival and from a run's creation (its memos, event
    links and, once it finishes, the run item itself), so a whole run disappears at once
    and never before a run longer than the retention has finished (a run item without
    ``expires_at`` - a live one - never expires; its memos may, so the retention must be
    longer than the longest run, as the S3 lifecycle already requires).
    """

    days: int

    def __post_init__(self) -> None:
        if self.days < 3:
            raise ValueError(f"retention_days must be at least 3 (got {self.days})")

    def expires_at(self, start_ms: int) -> dict[str, Any]:
        """The TTL attribute (low-level format) of an item whose retention starts then."""
        deadline_ms = start_ms + self.days * 24 * 3600 * 1000 - TTL_MARGIN_MS
        return {TTL_ATTRIBUTE: {"N": str(deadline_ms // 1000)}}


Projection = Literal["KEYS_ONLY", "INCLUDE", "ALL"]


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    pk: str
    sk: str
    projection: Projection
    purpose: str
    include: tuple[str, ...] = ()


INDEXES: tuple[Index, ...] = (
    Index("events_by_name", "ev_name", "ev_id", "INCLUDE", "list_events(name=...)", ("rcv",)),
    Index("events_by_time", "ev_shard", "ev_id", "INCLUDE", "list_events()", ("rcv",)),
    Index("run_search_all", "run_shard", "run_ord", "KEYS_ONLY", "search_runs(), list_runs()"),
    Index("run_search_fn", "run_fns", "run_ord", "KEYS_ONLY", "search_runs(function_id=...)"),
    Index("run_search_status", "run_st", "run_ord", "KEYS_ONLY", "search_runs(statuses=...)"),
    Index(
        "run_search_fn_status",
        "run_fst",
        "run_ord",
        "KEYS_ONLY",
        "search_runs(function_id=..., statuses=...)",
    ),
    Index("live_runs", "run_live", "run_id", "KEYS_ONLY", "list_live_runs()"),
    Index("functions_by_app", "fn_app", "fn_id", "ALL", "list_functions(app_id)"),
    Index("waits_by_event", "wait_event", "wait_order", "ALL", "waits_for(event_name)"),
    Index("queue_due", "q_part", "q_due", "KEYS_ONLY", "WorkQueue.claim / next_due"),
)
"""``rcv`` (received_at) is projected so that the event listings filter on it in the index."""

INDEX = {index.name: index for index in INDEXES}


def _gsi(index: Index) -> GlobalSecondaryIndexTypeDef:
    projection: ProjectionTypeDef = {"ProjectionType": index.projection}
    if index.include:
        projection["NonKeyAttributes"] = list(index.include)
    return {
        "IndexName": index.name,
        "KeySchema": [
            {"AttributeName": index.pk, "KeyType": "HASH"},
            {"AttributeName": index.sk, "KeyType": "RANGE"},
        ],
        "Projection": projection,
    }


def _attributes() -> list[str]:
    names = [PK, SK]
    for index in INDEXES:
        names += [name for name in (index.pk, index.sk) if name not in names]
    return names


def create_table_input(name: str) -> CreateTableInputTypeDef:
    """The ``CreateTable`` request for a Wayline table named ``name``."""
    return {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in _attributes()],
        "KeySchema": [
            {"AttributeName": PK, "KeyType": "HASH"},
            {"AttributeName": SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [_gsi(index) for index in INDEXES],
        "BillingMode": "PAY_PER_REQUEST",
    }


def cloudformation_properties() -> dict[str, Any]:
    """The same table as ``AWS::DynamoDB::Table`` properties (what template.yaml holds)."""
    props: dict[str, Any] = dict(create_table_input("unused"))
    del props["TableName"]  # template.yaml lets CloudFormation name the table
    props["TimeToLiveSpecification"] = {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    return props


def create_table(client: DynamoDBClient, name: str, *, wait: bool = True) -> None:
    """Create the table (on-demand, with every index), then turn on TTL.

    TTL can only be enabled once the table is ACTIVE, so ``wait=False`` skips it: use it
    only where TTL does not matter (tests).
    """
    with translate_errors("DynamoDB", "CreateTable"):
        client.create_table(**create_table_input(name))
    if not wait:
        return
    with translate_errors("DynamoDB", "DescribeTable"):
        client.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
    with translate_errors("DynamoDB", "UpdateTimeToLive"):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": TTL_ATTRIBUTE, "Enabled": True},
        )
