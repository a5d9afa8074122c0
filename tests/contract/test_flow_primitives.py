"""Contract: ``Leases`` (expiring counting semaphores) and ``Counters`` (versioned values)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from wayline.engine.ports import Store

from .conftest import Backend


def test_leases_admit_up_to_the_limit_and_renew_holders(store: Store) -> None:
    leases = store.leases
    assert leases.acquire("k", "a", limit=2, now=0, ttl_ms=100)
    assert leases.acquire("k", "b", limit=2, now=1, ttl_ms=100)
    assert not leases.acquire("k", "c", limit=2, now=2, ttl_ms=100)
    assert leases.acquire("k", "a", limit=2, now=3, ttl_ms=100)  # renewal, not a third slot
    assert leases.holders("k", now=3) == ["a", "b"]
    assert leases.acquire("other", "c", limit=1, now=3, ttl_ms=100)  # keys are independent


def test_released_and_expired_slots_are_free_again(store: Store) -> None:
    leases = store.leases
    assert leases.acquire("k", "a", limit=1, now=0, ttl_ms=100)
    leases.release("k", "a")
    leases.release("k", "a")  # a second release is a no-op
    assert leases.acquire("k", "b", limit=1, now=1, ttl_ms=100)
    assert not leases.acquire("k", "c", limit=1, now=100, ttl_ms=100)  # b holds until 101
    assert leases.acquire("k", "c", limit=1, now=101, ttl_ms=100)  # b crashed: slot freed
    assert leases.holders("k", now=101) == ["c"]


def test_renewal_extends_the_lease(store: Store) -> None:
    leases = store.leases
    assert leases.acquire("k", "a", limit=1, now=0, ttl_ms=100)
    assert leases.acquire("k", "a", limit=1, now=90, ttl_ms=100)
    assert not leases.acquire("k", "b", limit=1, now=150, ttl_ms=100)
    assert leases.holders("k", now=189) == ["a"] and leases.holders("k", now=190) == []


def test_connections_racing_never_exceed_the_limit(durable: Backend) -> None:
    stores = [durable.open() for _ in range(4)]

    def take(i: int) -> bool:
        return stores[i % 4].leases.acquire("k", f"h{i}", limit=3, now=0, ttl_ms=1000)

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(take, range(16)))
    assert won.count(True) == 3
    assert len(stores[0].leases.holders("k", now=1)) == 3


def test_counter_compare_and_set(store: Store) -> None:
    counters = store.counters
    assert counters.get("c", now=0) is None
    assert counters.put("c", {"tat": 5}, expected_version=0, now=0, ttl_ms=100)
    assert not counters.put("c", {"tat": 6}, expected_version=0, now=1, ttl_ms=100)
    got = counters.get("c", now=1)
    assert got is not None and got.value == {"tat": 5} and got.version == 1
    assert not counters.put("c", {"tat": 7}, expected_version=2, now=1, ttl_ms=100)
    assert counters.put("c", {"tat": 7}, expected_version=1, now=1, ttl_ms=100)
    got = counters.get("c", now=2)
    assert got is not None and got.value == {"tat": 7} and got.version == 2


def test_expired_counter_counts_as_absent(store: Store) -> None:
    counters = store.counters
    assert counters.put("c", [1], expected_version=0, now=0, ttl_ms=10)
    assert counters.get("c", now=10) is None
    assert not counters.put("c", [2], expected_version=1, now=10, ttl_ms=10)
    assert counters.put("c", [3], expected_version=0, now=10, ttl_ms=10)
    got = counters.get("c", now=11)
    assert got is not None and got.value == [3] and got.version == 1


def test_counter_delete_is_conditional(store: Store) -> None:
    counters = store.counters
    assert counters.put("c", "x", expected_version=0, now=0, ttl_ms=100)
    assert not counters.delete("c", expected_version=2)
    assert counters.delete("c", expected_version=1)
    assert counters.get("c", now=1) is None


def test_connections_racing_one_cas_wins(durable: Backend) -> None:
    stores = [durable.open() for _ in range(4)]

    def write(i: int) -> bool:
        return stores[i % 4].counters.put("c", i, expected_version=0, now=0, ttl_ms=1000)

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(write, range(8))).count(True) == 1
