"""DynamoDB-only: the ``waits_by_event`` index is sharded (issue 11), on moto in-process.

When every run of a busy function waits for one event name, each run puts and deletes one
wait: at 1,000 runs/s, 2,000 writes/s on one index partition, twice what a partition
takes. Spread over ``WAIT_SHARDS`` partitions by wait id, each takes a quarter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from moto import mock_aws

from wayline.aws.clients import dynamodb_client
from wayline.store import keys
from wayline.store.codec import dumps, wait_to_dict
from wayline.store.dynamodb import DynamoStore, create_table
from wayline.store.dynamodb_table import key_item

from .conftest import DynamoMotoBackend, make_wait

TABLE = "wayline-waits"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoStore]:
    for name, value in DynamoMotoBackend.ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        create_table(dynamodb_client(), TABLE)
        yield DynamoStore(client=dynamodb_client(), table_name=TABLE)


def partition_of(wait_id: str) -> str:
    item = dynamodb_client().get_item(TableName=TABLE, Key=key_item(keys.wait(wait_id)))["Item"]
    return str(item["wait_event"]["S"])


def test_one_event_name_is_spread_evenly_over_the_wait_shards(store: DynamoStore) -> None:
    ids = [f"01HWAIT000000000000000{i:04d}" for i in range(160)]
    for n, wait_id in enumerate(ids):
        store.waits.add_wait(make_wait(wait_id, event="shop/paid", created_at=n))
    load = Counter(partition_of(i) for i in ids)
    assert set(load) == {keys.waits_by_event("shop/paid", n) for n in range(keys.WAIT_SHARDS)}
    share = len(ids) / keys.WAIT_SHARDS
    assert max(load.values()) < 1.25 * share  # no partition takes much more than its share
    found = store.waits.waits_for("shop/paid")
    assert [w.id for w in found] == ids  # merged across shards, oldest first


def test_a_wait_stored_before_the_sharding_is_still_found(store: DynamoStore) -> None:
    """Shard 0 keeps the unsharded key, so open waits survive an upgrade."""
    old = make_wait("01HWAITOLD0000000000000001", event="shop/paid", created_at=5)
    assert keys.shard_of(old.id, keys.WAIT_SHARDS) != 0  # it would be elsewhere today
    key = keys.wait(old.id)
    dynamodb_client().put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": key.pk},
            "sk": {"S": key.sk},
            "wait_event": {"S": "WEV#shop/paid"},  # the key every wait had before
            "wait_order": {"S": keys.wait_order(old.created_at, old.id)},
            "body": {"S": dumps(wait_to_dict(old))},
        },
    )
    store.waits.add_wait(make_wait("01HWAITNEW0000000000000001", created_at=9))
    assert [w.id for w in store.waits.waits_for("shop/paid")] == [
        old.id,
        "01HWAITNEW0000000000000001",
    ]
    assert store.waits.take_wait(old.id) == old


def test_a_name_that_looks_like_a_shard_prefix_keeps_its_own_waits(store: DynamoStore) -> None:
    tricky, plain = "1#shop/paid", "shop/paid"
    assert keys.waits_by_event(tricky, 0) == keys.waits_by_event(plain, 1)  # same partition
    store.waits.add_wait(make_wait("w-tricky", event=tricky))
    ids = [f"w-plain-{i}" for i in range(8)]
    for wait_id in ids:
        store.waits.add_wait(make_wait(wait_id, event=plain))
    assert {w.id for w in store.waits.waits_for(plain)} == set(ids)
    assert [w.id for w in store.waits.waits_for(tricky)] == ["w-tricky"]
