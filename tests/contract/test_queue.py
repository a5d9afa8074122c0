"""WorkQueue contract: due items, leases, crash recovery, ack, next_due."""

from __future__ import annotations

import threading

from wayline.engine.model import WorkKind
from wayline.engine.ports import Store

from .conftest import make_item, unset_fields


def _ids(store: Store, now: int, lease_ms: int = 1000, limit: int = 10) -> list[str]:
    return [i.id for i in store.queue.claim(now=now, lease_ms=lease_ms, limit=limit)]


def test_item_round_trips(store: Store) -> None:
    item = make_item("1", at=5, kind=WorkKind.WAIT_TIMEOUT, step_id="s1", attempt=2)
    store.queue.enqueue([item])
    assert store.queue.claim(now=5, lease_ms=10, limit=1) == [item]


def test_only_due_items_in_at_then_id_order(store: Store) -> None:
    store.queue.enqueue(
        [make_item("b", at=10), make_item("c", at=5), make_item("a", at=10), make_item("d", at=11)]
    )
    assert _ids(store, now=4) == []
    assert _ids(store, now=10) == ["c", "a", "b"]


def test_limit(store: Store) -> None:
    store.queue.enqueue([make_item(str(i), at=i) for i in range(5)])
    assert _ids(store, now=100, limit=2) == ["0", "1"]
    assert _ids(store, now=100, limit=2) == ["2", "3"]
    assert _ids(store, now=100, limit=0) == []


def test_lease_hides_item_until_it_expires(store: Store) -> None:
    store.queue.enqueue([make_item("1", at=0)])
    assert _ids(store, now=100, lease_ms=50) == ["1"]
    assert _ids(store, now=100) == []
    assert _ids(store, now=149) == []
    assert _ids(store, now=150, lease_ms=50) == ["1"]  # never acked: handed out again
    assert _ids(store, now=199) == []


def test_ack_removes(store: Store) -> None:
    store.queue.enqueue([make_item("1"), make_item("2")])
    assert _ids(store, now=0) == ["1", "2"]
    store.queue.ack("1")
    store.queue.ack("nope")
    assert _ids(store, now=10_000) == ["2"]
    store.queue.ack("2")
    assert store.queue.next_due() is None


def test_enqueue_is_idempotent(store: Store) -> None:
    first = make_item("1", at=5)
    store.queue.enqueue([first])
    store.queue.enqueue([make_item("1", at=1, kind=WorkKind.SLEEP), make_item("2", at=7)])
    assert store.queue.claim(now=5, lease_ms=10, limit=5) == [first]
    assert _ids(store, now=7) == ["2"]


def test_enqueue_does_not_reset_a_lease(store: Store) -> None:
    store.queue.enqueue([make_item("1")])
    assert _ids(store, now=0, lease_ms=100) == ["1"]
    store.queue.enqueue([make_item("1")])
    assert _ids(store, now=50) == []


def test_next_due(store: Store) -> None:
    assert store.queue.next_due() is None
    store.queue.enqueue([make_item("a", at=30), make_item("b", at=20)])
    assert store.queue.next_due() == 20
    store.queue.enqueue([make_item("c", at=10)])
    assert store.queue.next_due() == 10


def test_next_due_of_leased_item_is_its_lease_expiry(store: Store) -> None:
    store.queue.enqueue([make_item("a", at=10), make_item("b", at=500)])
    assert _ids(store, now=100, lease_ms=1000, limit=1) == ["a"]
    # "a" is next claimable when its lease runs out (1100), "b" at 500.
    assert store.queue.next_due() == 500
    store.queue.ack("b")
    assert store.queue.next_due() == 1100


def test_next_due_is_never_after_the_next_claim(store: Store) -> None:
    store.queue.enqueue([make_item(str(i), at=i * 100) for i in range(10)])
    now = 0
    for _ in range(15):
        due = store.queue.next_due()
        assert due is not None
        assert _ids(store, now=due - 1, lease_ms=250) == []
        now = due
        claimed = _ids(store, now=now, lease_ms=250, limit=1)
        assert claimed
        if int(claimed[0]) % 2:
            store.queue.ack(claimed[0])


def test_concurrent_claims_hand_out_each_item_once(store: Store) -> None:
    store.queue.enqueue([make_item(f"{i:03d}") for i in range(200)])
    barrier = threading.Barrier(8)
    claimed: list[list[str]] = [[] for _ in range(8)]

    def worker(n: int) -> None:
        barrier.wait()
        while batch := _ids(store, now=0, lease_ms=10_000, limit=7):
            claimed[n].extend(batch)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for batch in claimed for i in batch]
    assert sorted(flat) == [f"{i:03d}" for i in range(200)]


def test_cron_item_round_trips(store: Store) -> None:
    item = make_item("c", 7, "", kind=WorkKind.CRON, function_id="shop-a", cron="*/5 * * * *")
    assert unset_fields(item) == {"step_id", "attempt", "ref"}  # the rest is covered above
    store.queue.enqueue([item])
    assert store.queue.claim(now=7, lease_ms=10, limit=1) == [item]


def test_deferred_item_comes_back_at_its_time(store: Store) -> None:
    store.queue.enqueue([make_item("a", at=0), make_item("b", at=5)])
    (first, _) = store.queue.claim(now=10, lease_ms=1000, limit=10)
    store.queue.defer(first.id, until=50)
    assert store.queue.claim(now=49, lease_ms=1000, limit=10) == []
    assert [i.id for i in store.queue.claim(now=50, lease_ms=1000, limit=10)] == ["a"]
    assert store.queue.next_due() == 1010  # b's lease, then a's new one


def test_flow_timer_item_round_trips(store: Store) -> None:
    item = make_item(
        "d",
        9,
        "",
        kind=WorkKind.DEBOUNCE,
        function_id="shop-a",
        step_id="debounce:shop-a:abc",
        ref="debounce:shop-a:abc#3",
    )
    assert unset_fields(item) == {"attempt", "cron"}
    store.queue.enqueue([item])
    assert store.queue.claim(now=9, lease_ms=10, limit=1) == [item]
