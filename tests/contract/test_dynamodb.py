"""DynamoDB-only: what the shared contract cannot see (request counts, item layout, S3
offload, error mapping, TTL, the table definition), on moto's in-process mock."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from wayline.aws.clients import dynamodb_client, s3_client
from wayline.aws.s3 import S3Offload
from wayline.engine.model import RunStatus, StepRecord, StepStatus
from wayline.engine.ports import RunQuery
from wayline.errors import StoreError
from wayline.store import keys
from wayline.store.codec import dumps
from wayline.store.dynamodb import DynamoStore, create_table
from wayline.store.dynamodb_runs import MEMO_INDEX
from wayline.store.dynamodb_schema import INDEXES, TTL_ATTRIBUTE, cloudformation_properties
from wayline.store.dynamodb_table import INLINE_LIMIT, key_item

from .conftest import (
    DynamoMotoBackend,
    make_app,
    make_event,
    make_function,
    make_item,
    make_run,
    make_wait,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

TABLE = "wayline-test"
BUCKET = "wayline-payloads"
BIG = "x" * (INLINE_LIMIT + 1)


@dataclass
class Aws:
    client: DynamoDBClient
    calls: list[tuple[str, dict[str, Any]]]
    """Every DynamoDB call made through ``client``: (operation, parameters)."""

    def store(
        self, *, s3: bool = False, client: Any = None, retention_days: int | None = None
    ) -> DynamoStore:
        offload = S3Offload(bucket=BUCKET, client=s3_client()) if s3 else None
        return DynamoStore(
            client=client or self.client,
            table_name=TABLE,
            s3=offload,
            retention_days=retention_days,
        )

    def raw(self, key: keys.Key) -> dict[str, Any]:
        return dict(self.client.get_item(TableName=TABLE, Key=key_item(key))["Item"])

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in DynamoMotoBackend.ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = dynamodb_client()
        create_table(client, TABLE)
        s3_client().create_bucket(Bucket=BUCKET)
        calls: list[tuple[str, dict[str, Any]]] = []

        def record(model: Any, params: dict[str, Any], **_: Any) -> None:
            calls.append((model.name, params))

        client.meta.events.register("before-parameter-build.dynamodb", record)
        yield Aws(client, calls)


# -- cost: what a call sends ---------------------------------------------------------


def test_sequential_step_save_is_one_update_then_the_memo_item_and_no_transaction(
    aws: Aws,
) -> None:
    runs = aws.store().runs
    run = make_run(memos={"s1": {"data": 1}})
    runs.create_run(run)
    loaded = runs.get_run(run.id)  # what the engine does before deciding
    assert loaded is not None
    aws.calls.clear()
    first = replace(loaded, version=1, status=RunStatus.RUNNING)
    assert runs.save_run(first, expected_version=0)
    # Small events stay in the run item (their own item would cost a unit to save none).
    assert aws.ops() == ["UpdateItem"]
    aws.calls.clear()
    step = replace(first, version=2, memos={**first.memos, "s2": {"data": 2}})
    assert runs.save_run(step, expected_version=1)
    # The run item's conditional update commits (carrying the new memo), then the memo's
    # own item is written from it: no transaction, no read.
    assert aws.ops() == ["UpdateItem", "BatchWriteItem"]
    (update, put) = [params for _, params in aws.calls]
    assert update["ConditionExpression"] == "#ver = :expected"
    (written,) = put["RequestItems"][TABLE]
    assert written["PutRequest"]["Item"]["sk"] == {"S": "MEMO#s2"}
    aws.calls.clear()
    assert runs.save_run(replace(step, version=3), expected_version=2)  # no new memo
    assert aws.ops() == ["UpdateItem"]


def test_events_move_to_their_own_item_only_once_they_cost_a_write_unit(aws: Aws) -> None:
    runs = aws.store().runs
    small = make_run()
    large = make_run(
        "01HRUN0000000000000000000B", events=({"name": "big", "data": {"pad": "x" * 900}},)
    )
    for run in (small, large):
        runs.create_run(run)
        aws.calls.clear()
        saved = replace(run, version=1, status=RunStatus.RUNNING)
        assert runs.save_run(saved, expected_version=0)
        written = [p["Item"]["sk"]["S"] for op, p in aws.calls if op == "PutItem"]
        assert written == ([] if run is small else [keys.RUN_EVENTS_SK])
        assert aws.store().runs.get_run(run.id) == saved  # another process reads it whole
        later = replace(saved, version=2)
        assert runs.save_run(later, expected_version=1)
        assert aws.store().runs.get_run(run.id) == later


def test_save_without_a_prior_load_reads_the_partition_once(aws: Aws) -> None:
    run = make_run(memos={"s1": {"data": 1}})
    aws.store().runs.create_run(run)
    aws.calls.clear()
    cold = aws.store().runs  # another process: it has not seen this run
    assert cold.save_run(replace(run, version=1, memos={"s2": None}), expected_version=0)
    assert aws.ops() == ["Query", "UpdateItem", "BatchWriteItem"]
    got = cold.get_run(run.id)
    assert got is not None and dict(got.memos) == {"s1": {"data": 1}, "s2": None}


def test_stale_save_with_a_cold_cache_writes_nothing(aws: Aws) -> None:
    run = make_run()
    aws.store().runs.create_run(run)
    aws.store().runs.save_run(replace(run, version=1), expected_version=0)
    aws.calls.clear()
    stale = aws.store().runs
    assert not stale.save_run(replace(run, version=1, memos={"s": 1}), expected_version=0)
    assert aws.ops() == ["Query"]  # the read already shows it lost: no write is tried


def test_no_scan_anywhere(aws: Aws) -> None:
    store = aws.store().store()
    store.events.put_events([make_event("e1"), make_event("e2", "other")])
    store.events.get_event("e1")
    store.events.list_events()
    store.events.list_events(name="other", before_id="e9", received_after=0, received_before=2)
    store.apps.put_app(make_app(), [make_function("shop-a")])
    store.apps.put_app(make_app(), [make_function("shop-b")])
    store.apps.get_app("shop")
    store.apps.list_apps()
    store.apps.get_function("shop-b")
    store.apps.list_functions()
    store.apps.list_functions("shop")
    run = make_run(memos={"a": 1})
    store.runs.create_run(run)
    store.runs.save_run(replace(run, version=1, status=RunStatus.COMPLETED), expected_version=0)
    store.runs.get_run(run.id)
    store.runs.list_runs()
    store.runs.list_runs(function_id=run.function_id)
    store.runs.list_runs(event_id=run.event_ids[0], function_id=run.function_id)
    store.runs.list_live_runs()
    store.queue.enqueue([make_item("1", at=5)])
    store.queue.claim(now=5, lease_ms=10, limit=5)
    store.queue.defer("1", until=20)
    store.queue.next_due()
    store.queue.ack("1")
    store.waits.add_wait(make_wait("w1"))
    store.waits.waits_for("shop/paid")
    store.waits.take_wait("w1")
    store.idempotency.claim("k", now=0, ttl_ms=10)
    store.leases.acquire("k", "h", limit=1, now=0, ttl_ms=10)
    store.leases.holders("k", now=0)
    store.leases.release("k", "h")
    store.counters.put("c", 1, expected_version=0, now=0, ttl_ms=10)
    store.counters.get("c", now=0)
    store.counters.delete("c", expected_version=1)
    assert "Scan" not in aws.ops()
    assert set(aws.ops()) <= {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }


def test_run_search_never_scans_and_reads_the_planned_index(aws: Aws) -> None:
    runs = aws.store().runs
    for n in range(6):
        status = (RunStatus.RUNNING, RunStatus.COMPLETED)[n % 2]
        runs.create_run(make_run(f"01HRUN{n:020d}", status=status, created_at=1000 + n))
    plans = [
        (RunQuery(), "run_search_all", 4),
        (RunQuery(function_id="shop-charge"), "run_search_fn", 4),
        # Running: the Live partition it shares with Queued, and its own (older runs).
        (RunQuery(statuses=(RunStatus.RUNNING,)), "run_search_status", 8),
        (RunQuery(statuses=(RunStatus.QUEUED, RunStatus.RUNNING)), "run_search_status", 12),
        (
            RunQuery(function_id="shop-charge", statuses=(RunStatus.RUNNING, RunStatus.FAILED)),
            "run_search_fn_status",
            12,
        ),
        (RunQuery(statuses=(RunStatus.COMPLETED,)), "run_search_status", 4),
        (RunQuery(since=1002, until=1005, limit=2), "run_search_all", 4),
    ]
    for query, index, partitions in plans:
        aws.calls.clear()
        page = runs.search_runs(query)
        assert runs.search_runs(replace(query, cursor=page.cursor or None)).runs is not None
        index_queries = [p for op, p in aws.calls if op == "Query" and "IndexName" in p]
        assert {p["IndexName"] for p in index_queries} == {index}, query
        # One Query per shard (and status): no single hot partition serves a filter.
        keys_read = {str(p["ExpressionAttributeValues"][":p"]["S"]) for p in index_queries}
        assert len(keys_read) == partitions, query
        assert "Scan" not in aws.ops()
        assert set(aws.ops()) == {"Query"}
    aws.calls.clear()
    runs.search_runs(RunQuery(event_id="01HEVT0000000000000000000A", limit=2))
    assert set(aws.ops()) == {"Query"}
    assert all("IndexName" not in p for _, p in aws.calls)  # the event's link partition


# -- item layout -------------------------------------------------------------------


def test_step_outputs_are_stored_once_in_their_memo(aws: Aws) -> None:
    runs = aws.store().runs
    run = make_run()
    runs.create_run(run)
    output = {"rows": ["r" * 50] * 20}
    memo = {"data": output}
    record = StepRecord("s1", "load", "StepRun", StepStatus.COMPLETED, 1, 5, 9, output)
    saved = replace(run, version=1, memos={"s1": memo}, steps=(record,))
    assert runs.save_run(saved, expected_version=0)
    head = aws.raw(keys.run(run.id))["body"]["S"]
    assert head.count("r" * 50) == 20  # the memo, once: the record points at it
    item = aws.raw(keys.memo(run.id, "s1"))
    assert "rrrr" not in item["rec"]["S"] and item["body"]["S"].count("r" * 50) == 20
    assert runs.save_run(replace(saved, version=2), expected_version=1)
    assert "rrrr" not in aws.raw(keys.run(run.id))["body"]["S"]  # now only in its item
    fresh = aws.store().runs.get_run(run.id)
    assert fresh is not None
    assert fresh == replace(saved, version=2)
    assert fresh.steps[0].output is fresh.memos["s1"]["data"]


def test_equal_but_distinct_outputs_are_kept_verbatim(aws: Aws) -> None:
    runs = aws.store().runs
    record = StepRecord("s1", "x", "StepRun", StepStatus.COMPLETED, output=True)
    run = make_run(memos={"s1": {"data": 1}}, steps=(record,))  # 1 == True, but not the same
    runs.create_run(run)
    got = aws.store().runs.get_run(run.id)
    assert got is not None and got.steps[0].output is True


def test_finished_run_leaves_the_live_index(aws: Aws) -> None:
    runs = aws.store().runs
    run = make_run()
    runs.create_run(run)
    assert "run_live" in aws.raw(keys.run(run.id))
    runs.save_run(replace(run, version=1, status=RunStatus.FAILED), expected_version=0)
    assert "run_live" not in aws.raw(keys.run(run.id))
    assert runs.list_live_runs() == []


def test_idempotency_keys_carry_a_ttl_in_epoch_seconds(aws: Aws) -> None:
    aws.store().idempotency.claim("k", now=1_700_000_000_001, ttl_ms=86_400_000)
    item = aws.raw(keys.idempotency("k"))
    assert int(item[TTL_ATTRIBUTE]["N"]) == math.ceil((1_700_000_000_001 + 86_400_000) / 1000)


def test_retention_expires_events_and_finished_runs_with_their_memos_and_links(
    aws: Aws,
) -> None:
    """Issue 11: items never expired while their S3 payloads did (90 days), leaving old
    runs pointing at deleted payloads. Now each item expires 2 days before its payload."""
    store = aws.store(retention_days=30)
    deadline = (1_700_000_000_000 + (30 - 2) * 86_400_000) // 1000
    store.events.put_events([make_event("01HEVT0000000000000000000A")])
    assert int(aws.raw(keys.event("01HEVT0000000000000000000A"))[TTL_ATTRIBUTE]["N"]) == deadline

    run = make_run(memos={"s1": {"data": 1}})
    store.runs.create_run(run)
    link = keys.run_of_event("01HEVT0000000000000000000A", run.id)
    assert int(aws.raw(link)[TTL_ATTRIBUTE]["N"]) == deadline
    assert int(aws.raw(keys.memo(run.id, "s1"))[TTL_ATTRIBUTE]["N"]) == deadline
    assert TTL_ATTRIBUTE not in aws.raw(keys.run(run.id))  # a live run never expires
    running = replace(run, version=1, status=RunStatus.RUNNING, memos={**run.memos, "s2": 2})
    assert store.runs.save_run(running, expected_version=0)
    assert int(aws.raw(keys.memo(run.id, "s2"))[TTL_ATTRIBUTE]["N"]) == deadline
    assert TTL_ATTRIBUTE not in aws.raw(keys.run(run.id))
    finished = replace(running, version=2, status=RunStatus.COMPLETED, ended_at=1_800_000_000_000)
    assert store.runs.save_run(finished, expected_version=1)
    assert int(aws.raw(keys.run(run.id))[TTL_ATTRIBUTE]["N"]) == deadline
    assert store.runs.get_run(run.id) == finished


def test_memos_are_the_only_items_with_the_memo_index_attribute(aws: Aws) -> None:
    """MEMO_INDEX tells a memo item apart by its attributes alone (what an IAM
    ``dynamodb:Attributes`` condition sees): no run item, marker or event carries it."""
    store = aws.store(retention_days=30)
    store.events.put_events([make_event("01HEVT0000000000000000000A")])
    store.apps.put_app(make_app(), [make_function("shop-charge")])
    store.runs.create_run(make_run(memos={"s1": {"data": 1}}))
    store.waits.add_wait(make_wait("w1"))
    store.idempotency.claim("k", now=1, ttl_ms=1000)
    store.counters.put("c", 1, expected_version=0, now=1, ttl_ms=1000)
    items = aws.client.scan(TableName=TABLE)["Items"]  # the test's own look at every item
    memos = [i for i in items if i["sk"]["S"].startswith(keys.MEMO_PREFIX)]
    assert len(memos) == 1 and MEMO_INDEX in memos[0]
    assert [i for i in items if MEMO_INDEX in i] == memos


def test_one_event_name_is_spread_over_the_index_shards(aws: Aws) -> None:
    """At 1,000 events/s of one name, one GSI partition would be at its write limit."""
    events = aws.store().events
    ids = [f"01HEVT00000000000000000{i:03d}" for i in range(24)]
    events.put_events([make_event(i, name="shop/paid") for i in ids])
    partitions = {aws.raw(keys.event(i))["ev_name"]["S"] for i in ids}
    assert partitions == {keys.events_by_name("shop/paid", n) for n in range(keys.EVENT_SHARDS)}
    listed = events.list_events(name="shop/paid", limit=10)
    assert [e.internal_id for e in listed] == sorted(ids, reverse=True)[:10]


def test_without_a_retention_nothing_expires(aws: Aws) -> None:
    runs = aws.store().runs
    run = make_run(status=RunStatus.COMPLETED, memos={"s1": {"data": 1}})
    runs.create_run(run)
    assert TTL_ATTRIBUTE not in aws.raw(keys.run(run.id))
    assert TTL_ATTRIBUTE not in aws.raw(keys.memo(run.id, "s1"))


def test_a_retention_shorter_than_the_expiry_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="retention_days must be at least 3"):
        DynamoStore(client=object(), table_name=TABLE, retention_days=2)  # type: ignore[arg-type]


def test_a_read_that_catches_half_a_save_ignores_or_retries(aws: Aws) -> None:
    runs = aws.store().runs
    run = make_run(memos={"a": 1})
    runs.create_run(run)
    # A memo of a save not visible in the run item yet (version 1 > 0): left out.
    later = {**key_item(keys.memo(run.id, "b")), "v": {"N": "1"}, "i": {"N": "0"}}
    aws.client.put_item(TableName=TABLE, Item={**later, "body": {"S": "2"}})
    assert aws.store().runs.get_run(run.id) == run
    # The run item counts a memo that the read cannot see yet: read again, then give up.
    aws.client.update_item(
        TableName=TABLE,
        Key=key_item(keys.run(run.id)),
        UpdateExpression="SET memos = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    with pytest.raises(StoreError, match="half-applied"):
        aws.store().runs.get_run(run.id)


# -- payloads over the item limit ------------------------------------------------------


def test_oversized_memo_without_s3_names_run_step_and_size(aws: Aws) -> None:
    runs = aws.store().runs
    run = make_run()
    runs.create_run(run)
    size = len(dumps({"data": BIG}))
    with pytest.raises(StoreError, match=rf"run {run.id} step big is {size} bytes"):
        runs.save_run(replace(run, version=1, memos={"big": {"data": BIG}}), expected_version=0)
    assert runs.get_run(run.id) == run  # nothing was written


def test_a_save_adds_any_number_of_memos_and_a_create_at_most_a_transaction(aws: Aws) -> None:
    run = make_run()
    aws.store().runs.create_run(run)
    many = replace(run, version=1, memos={f"s{i}": i for i in range(150)})
    assert aws.store().runs.save_run(many, expected_version=0)  # no transaction: no cap
    assert aws.store().runs.get_run(run.id) == many
    other = make_run("01HRUN0000000000000000000B", memos={f"s{i}": i for i in range(100)})
    with pytest.raises(StoreError, match=rf"run {other.id}: created with 100 memos"):
        aws.store().runs.create_run(other)
    assert aws.store().runs.get_run(other.id) is None


def test_oversized_memo_and_run_body_go_through_s3(aws: Aws) -> None:
    runs = aws.store(s3=True).runs
    run = make_run()
    runs.create_run(run)
    big = replace(run, version=1, memos={"big": {"data": BIG}}, output=BIG)
    assert runs.save_run(big, expected_version=0)
    item = aws.raw(keys.memo(run.id, "big"))
    assert "body" not in item and item["body_ref"]["S"].startswith(f"memo/{run.id}/big/")
    assert "body" not in aws.raw(keys.run(run.id))
    assert aws.store(s3=True).runs.get_run(run.id) == big
    small = replace(big, version=2, output=None)  # back under the limit: inline again
    assert runs.save_run(small, expected_version=1)
    assert "body_ref" not in aws.raw(keys.run(run.id))
    assert aws.store(s3=True).runs.get_run(run.id) == small
    with pytest.raises(StoreError, match="no S3 offload"):
        aws.store().runs.get_run(run.id)  # its memo is in S3, and this store cannot reach it


def test_oversized_event_is_offloaded_or_refused(aws: Aws) -> None:
    event = make_event("e1", data={"blob": BIG})
    with pytest.raises(StoreError, match=r"event e1 \(app/thing.happened\) is \d+ bytes"):
        aws.store().events.put_events([event])
    assert aws.store().events.get_event("e1") is None
    aws.store(s3=True).events.put_events([event])
    assert aws.store(s3=True).events.get_event("e1") == event
    assert aws.store(s3=True).events.list_events() == [event]


# -- errors ----------------------------------------------------------------------------


def test_aws_errors_name_the_operation_and_code_but_not_the_item(aws: Aws) -> None:
    aws.client.delete_table(TableName=TABLE)
    store = aws.store().store()
    with pytest.raises(StoreError, match="DynamoDB GetItem failed: ResourceNotFoundException"):
        store.events.get_event("e1")
    with pytest.raises(StoreError) as caught:
        store.events.put_events([make_event("e1", data={"card": "4111-secret"})])
    assert "PutItem" in str(caught.value) and "secret" not in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)


class _Conflicting:
    """A client whose next ``fail`` calls of ``operation`` fail with ``code``, as DynamoDB
    does when a transaction holds the item (moto never does: it runs one call at a time)."""

    def __init__(self, client: Any, operation: str, code: str, fail: int) -> None:
        self._client, self._operation, self._code, self._fail = client, operation, code, fail

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._operation:
            return real

        def maybe_fail(**params: Any) -> Any:
            if self._fail:
                self._fail -= 1
                error: dict[str, Any] = {"Error": {"Code": self._code, "Message": "busy"}}
                if self._code == "TransactionCanceledException":
                    error["CancellationReasons"] = [{"Code": "TransactionConflict"}] * 2
                raise ClientError(error, name)  # type: ignore[arg-type]
            return real(**params)

        return maybe_fail


@pytest.mark.parametrize(
    ("operation", "code", "memos"),
    [
        ("update_item", "TransactionConflictException", {"s": 1}),
        ("update_item", "TransactionConflictException", {}),
    ],
)
def test_transaction_conflicts_are_retried_not_reported_as_lost(
    aws: Aws, operation: str, code: str, memos: dict[str, Any]
) -> None:
    run = make_run()
    aws.store().runs.create_run(run)
    runs = aws.store(client=_Conflicting(aws.client, operation, code, fail=2)).runs
    assert runs.save_run(replace(run, version=1, memos=memos), expected_version=0)
    assert aws.store().runs.get_run(run.id) == replace(run, version=1, memos=memos)
    other = make_run("01HRUN0000000000000000000B")
    aws.store().runs.create_run(other)
    stuck = aws.store(client=_Conflicting(aws.client, operation, code, fail=99)).runs
    with pytest.raises(StoreError, match="TransactionConflict"):
        stuck.save_run(replace(other, version=1, memos=memos), expected_version=0)


def test_a_transaction_conflict_on_a_create_with_memos_is_retried(aws: Aws) -> None:
    run = make_run(memos={"s": 1})
    runs = aws.store(
        client=_Conflicting(aws.client, "transact_write_items", "TransactionCanceledException", 2)
    ).runs
    assert runs.create_run(run)
    assert aws.store().runs.get_run(run.id) == run


def test_a_sync_that_loses_a_race_replans_on_the_winners_app(aws: Aws) -> None:
    loser, winner = aws.store().apps, aws.store().apps
    loser.put_app(make_app(), [make_function("shop-a"), make_function("shop-b")])

    def sync_in_between(**_: Any) -> None:
        aws.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", hook)
        winner.put_app(make_app(sdk="py:v2"), [make_function("shop-a"), make_function("shop-c")])

    hook: Callable[..., None] = sync_in_between
    aws.client.meta.events.register("before-call.dynamodb.TransactWriteItems", hook)
    fns = [make_function("shop-a", retries=9), make_function("shop-d")]
    assert loser.put_app(make_app(), fns) is True
    assert loser.get_app("shop") == make_app()
    assert loser.list_functions() == fns  # c (the winner's) and b are gone, d is there


# -- the table ---------------------------------------------------------------------------


def test_table_is_on_demand_with_ttl_and_every_index(aws: Aws) -> None:
    table = aws.client.describe_table(TableName=TABLE)["Table"]
    assert table.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST"
    names = {gsi["IndexName"] for gsi in table.get("GlobalSecondaryIndexes", [])}
    assert names == {index.name for index in INDEXES}
    ttl = aws.client.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl.get("AttributeName") == TTL_ATTRIBUTE
    assert ttl.get("TimeToLiveStatus") == "ENABLED"
    props = cloudformation_properties()
    assert "TableName" not in props
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_queued_to_running_leaves_the_search_indexes_alone(aws: Aws) -> None:
    # Every run goes Queued -> Running: sharing one status partition, that save writes
    # nothing to the status indexes (4 write units a run); finishing moves it.
    runs = aws.store().runs
    run = make_run("01HRUN00000000000000000001", status=RunStatus.QUEUED)
    assert runs.create_run(run)
    before = aws.raw(keys.run(run.id))
    running = replace(run, status=RunStatus.RUNNING, version=run.version + 1)
    assert runs.save_run(running, expected_version=run.version)
    after = aws.raw(keys.run(run.id))
    assert (after["run_st"], after["run_fst"]) == (before["run_st"], before["run_fst"])
    done = replace(running, status=RunStatus.COMPLETED, version=running.version + 1)
    assert runs.save_run(done, expected_version=running.version)
    assert aws.raw(keys.run(run.id))["run_st"] != after["run_st"]


def test_a_run_indexed_under_its_own_status_by_an_older_layout_is_still_found(
    aws: Aws,
) -> None:
    runs = aws.store().runs
    run = make_run("01HRUN00000000000000000002", status=RunStatus.RUNNING)
    assert runs.create_run(run)
    shard = keys.shard_of(run.id, keys.RUN_SHARDS)
    aws.client.update_item(
        TableName=TABLE,
        Key=key_item(keys.run(run.id)),
        UpdateExpression="SET run_st = :st, run_fst = :fst",
        ExpressionAttributeValues={
            ":st": {"S": keys.runs_in_status("Running", shard)},
            ":fst": {"S": keys.runs_of_function_in_status(run.function_id, "Running", shard)},
        },
    )
    for query in (
        RunQuery(statuses=(RunStatus.RUNNING,)),
        RunQuery(function_id=run.function_id, statuses=(RunStatus.RUNNING,)),
    ):
        assert [r.id for r in runs.search_runs(query).runs] == [run.id]
