"""Contract: ``Parking``, the durable list of work items blocked by a full concurrency key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from wayline.engine.model import WorkItem, WorkKind
from wayline.engine.ports import Store

from .conftest import Backend


def item(n: int, at: int) -> WorkItem:
    return WorkItem(id=f"run{n}:c", run_id=f"run{n}", kind=WorkKind.CALL, at=at, step_id="s")


def test_the_oldest_parked_item_is_taken_first_and_only_once(store: Store) -> None:
    parked = store.parked
    late, early, tie = item(1, at=300), item(2, at=100), item(3, at=300)
    for it in (late, early, tie, late):  # parking twice lists an item once
        parked.park("k", it)
    parked.park("other", item(9, at=1))  # keys are independent
    assert parked.take_oldest("k") == early
    assert parked.take_oldest("k") == late  # same time: by id
    assert parked.take_oldest("k") == tie
    assert parked.take_oldest("k") is None
    assert parked.take_oldest("other") == item(9, at=1)


def test_an_unparked_or_dropped_item_is_never_woken(store: Store) -> None:
    parked = store.parked
    first, second, third = item(1, at=1), item(2, at=2), item(3, at=3)
    for it in (first, second, third):
        parked.park("k", it)
    parked.unpark("k", second)
    parked.unpark("k", second)  # a second unpark is a no-op
    # The releasing item was parked once (then got its slot by its re-check): its own
    # entry is removed, and the next one in line is woken instead.
    assert parked.take_oldest("k", dropping=first) == third
    assert parked.take_oldest("k", dropping=item(7, at=0)) is None


def test_a_dropped_item_past_the_first_entries_is_removed_too(store: Store) -> None:
    parked = store.parked
    entries = [item(n, at=n) for n in range(1, 6)]
    for it in entries:
        parked.park("k", it)
    assert parked.take_oldest("k", dropping=entries[4]) == entries[0]
    assert [parked.take_oldest("k") for _ in range(4)] == [*entries[1:4], None]


def test_parked_items_survive_a_reopen_and_racers_take_each_once(durable: Backend) -> None:
    entries = [item(n, at=n) for n in range(12)]
    writer = durable.open()
    for it in entries:
        writer.parked.park("k", it)
    durable.close()
    stores = [durable.open() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        taken = list(pool.map(lambda i: stores[i % 4].parked.take_oldest("k"), range(16)))
    assert sorted((t for t in taken if t is not None), key=lambda t: t.at) == entries


def test_a_woken_item_is_due_again_at_once(store: Store) -> None:
    queue = store.queue
    blocked, other = item(1, at=10), item(2, at=20)
    queue.enqueue([blocked, other])
    claimed = queue.claim(now=50, lease_ms=1_000, limit=10)
    assert claimed == [blocked, other]
    for it in claimed:
        queue.defer(it.id, until=60_050)  # parked with the long fallback re-check
    assert queue.claim(now=100, lease_ms=1_000, limit=10) == []
    queue.wake([blocked])
    assert queue.claim(now=100, lease_ms=1_000, limit=10) == [blocked]
    assert queue.claim(now=200, lease_ms=1_000, limit=10) == []  # the other still waits
