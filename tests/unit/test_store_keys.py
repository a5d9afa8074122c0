"""The DynamoDB key builders: pure string functions, checked without AWS."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.store import keys

MS = st.integers(min_value=0, max_value=2**48)
IDS = st.text(min_size=0, max_size=40)


@given(MS, MS)
def test_padded_times_sort_like_numbers(a: int, b: int) -> None:
    assert (keys.padded_ms(a) < keys.padded_ms(b)) == (a < b)
    assert len(keys.padded_ms(a)) == len(keys.padded_ms(b))


@pytest.mark.parametrize("ms", [-1, 10**16])
def test_padded_time_out_of_range(ms: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        keys.padded_ms(ms)


@given(MS, IDS, MS, IDS)
def test_queue_due_orders_by_time_then_id(due_a: int, id_a: str, due_b: int, id_b: str) -> None:
    a, b = keys.queue_due(due_a, id_a), keys.queue_due(due_b, id_b)
    if (due_a, id_a) != (due_b, id_b):
        assert (a < b) == ((due_a, id_a) < (due_b, id_b))
    assert keys.due_of(a) == due_a
    assert keys.item_of_due(a) == id_a


@given(MS, IDS)
def test_queue_due_before_bounds_exactly_the_due_items(now: int, item_id: str) -> None:
    upper = keys.queue_due_before(now)
    assert keys.queue_due(now, item_id) < upper
    assert keys.queue_due(now + 1, item_id) >= upper


@given(MS, IDS, MS, IDS)
def test_wait_order_is_created_at_then_id(t_a: int, id_a: str, t_b: int, id_b: str) -> None:
    a, b = keys.wait_order(t_a, id_a), keys.wait_order(t_b, id_b)
    if (t_a, id_a) != (t_b, id_b):
        assert (a < b) == ((t_a, id_a) < (t_b, id_b))


def test_layout() -> None:
    assert keys.event("01HEVT") == keys.Key("EVT#01HEVT", "EVT")
    assert keys.app("shop") == keys.Key("APPS", "APP#shop")
    assert keys.function("shop-a") == keys.Key("FNS", "FN#shop-a")
    assert keys.run("01HRUN") == keys.Key("RUN#01HRUN", "RUN")
    assert keys.memo("01HRUN", "abc") == keys.Key("RUN#01HRUN", "MEMO#abc")
    assert keys.run_of_event("01HEVT", "01HRUN") == keys.Key("EVR#01HEVT", "RUN#01HRUN")
    assert keys.idempotency("k") == keys.Key("IDEM#k", "IDEM")
    assert keys.queue_item("r:1") == keys.Key("Q#r:1", "Q")
    assert keys.wait("w1") == keys.Key("WAIT#w1", "WAIT")
    assert keys.lease("fn:1") == keys.Key("LEASE#fn:1", "LEASE")
    assert keys.counter("fn:1") == keys.Key("CTR#fn:1", "CTR")
    assert keys.events_by_name("shop/paid", 3) == "EVN#3#shop/paid"
    assert keys.waits_by_event("shop/paid") == "WEV#shop/paid"
    assert keys.runs_of_function("shop-a", 2) == "FNS#2#shop-a"
    assert keys.runs_in_status("Running", 1) == "ST#Running#1"
    assert keys.runs_of_function_in_status("shop-a", "Failed", 3) == "FST#Failed#3#shop-a"
    assert keys.run_order(5, "r") == "0000000000000005#r"
    assert keys.run_order_parts(keys.run_order(5, "r#1")) == (5, "r#1")
    assert keys.functions_by_app("shop") == "APP#shop"


def test_a_memo_shares_its_runs_partition() -> None:
    assert keys.memo("r", "s").pk == keys.run("r").pk
    assert keys.step_of_memo(keys.memo("r", "s#1").sk) == "s#1"
    with pytest.raises(ValueError, match="not a memo"):
        keys.step_of_memo(keys.RUN_SK)


def test_empty_parts_still_make_valid_keys() -> None:
    # DynamoDB rejects empty strings in key attributes; every part follows a prefix.
    for key in (keys.event(""), keys.run(""), keys.idempotency(""), keys.queue_item("")):
        assert key.pk and key.sk


def test_kinds_never_collide() -> None:
    ident = "x"
    partitions = [
        keys.event(ident).pk,
        keys.run(ident).pk,
        keys.runs_of_event(ident),
        keys.idempotency(ident).pk,
        keys.queue_item(ident).pk,
        keys.wait(ident).pk,
        keys.lease(ident).pk,
        keys.counter(ident).pk,
        keys.APPS_PARTITION,
        keys.FUNCTIONS_PARTITION,
    ]
    assert len(set(partitions)) == len(partitions)


def test_long_parts_are_hashed_and_cannot_meet_a_verbatim_key() -> None:
    long_key = "k" * 2000
    hashed = keys.idempotency(long_key).pk
    assert hashed.startswith("IDEM~#") and len(hashed) < 100
    assert hashed == keys.idempotency(long_key).pk  # stable
    assert hashed != keys.idempotency("k" * 2001).pk
    assert keys.idempotency(hashed.removeprefix("IDEM#")).pk != hashed
    fits = "ü" * 512  # 1,024 UTF-8 bytes: kept as is
    assert keys.events_by_name(fits, 0) == "EVN#0#" + fits


def test_shards_are_stable_and_in_range() -> None:
    # Pinned: the shard of an id is part of the stored data, it must never change.
    assert [keys.shard_of(i, 4) for i in ("a", "b", "01HRUN0000000000000000000A")] == [3, 1, 2]
    assert {keys.shard_of(f"id{i}", 4) for i in range(100)} == {0, 1, 2, 3}
    assert keys.events_by_time(2) == "EVT#2"
    assert keys.runs_by_time(2) == "RUN#2"
    assert keys.live_runs(2) == "LIVE#2"


def test_blob_keys_are_content_addressed() -> None:
    a = keys.blob("memo", "01HRUN/abc", b"one")
    assert a.startswith("memo/01HRUN/abc/")
    assert a == keys.blob("memo", "01HRUN/abc", b"one")
    assert a != keys.blob("memo", "01HRUN/abc", b"two")
    odd = keys.blob("event", "../x y", b"one")
    assert odd.startswith("event/h/") and ".." not in odd
