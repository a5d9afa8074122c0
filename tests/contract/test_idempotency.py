"""Idempotency contract: a key is held until ``now + ttl_ms``, then free again."""

from __future__ import annotations

import threading

from wayline.engine.ports import Store

from .conftest import Backend


def test_claim_once_until_expiry(store: Store) -> None:
    claim = store.idempotency.claim
    assert claim("k", now=1000, ttl_ms=100) is True
    assert claim("k", now=1000, ttl_ms=100) is False
    assert claim("k", now=1099, ttl_ms=100) is False
    assert claim("k", now=1100, ttl_ms=100) is True  # expired at exactly 1100
    assert claim("k", now=1150, ttl_ms=100) is False  # the new claim holds until 1200


def test_failed_claim_does_not_extend(store: Store) -> None:
    claim = store.idempotency.claim
    assert claim("k", now=0, ttl_ms=100) is True
    assert claim("k", now=50, ttl_ms=1000) is False
    assert claim("k", now=100, ttl_ms=100) is True


def test_keys_are_independent(store: Store) -> None:
    claim = store.idempotency.claim
    assert claim("a", now=0, ttl_ms=100) is True
    assert claim("b", now=0, ttl_ms=100) is True
    assert claim("a", now=1, ttl_ms=100) is False
    # Claiming (and expiring) other keys leaves a live claim alone.
    assert claim("c", now=99, ttl_ms=100) is True
    assert claim("b", now=99, ttl_ms=100) is False


def test_zero_ttl_is_free_at_once(store: Store) -> None:
    assert store.idempotency.claim("k", now=5, ttl_ms=0) is True
    assert store.idempotency.claim("k", now=5, ttl_ms=0) is True


def _race(stores: list[Store]) -> list[bool]:
    barrier = threading.Barrier(len(stores))
    results = [False] * len(stores)

    def claim(i: int) -> None:
        barrier.wait()
        results[i] = stores[i].idempotency.claim("k", now=0, ttl_ms=1000)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_threads_racing_one_claims(store: Store) -> None:
    assert _race([store] * 8).count(True) == 1


def test_connections_racing_one_claims(durable: Backend) -> None:
    assert _race([durable.open() for _ in range(4)]).count(True) == 1


def test_a_claim_records_its_owner_until_it_expires(store: Store) -> None:
    idem = store.idempotency
    assert idem.holder("k", now=0) is None
    assert idem.claim("k", now=0, ttl_ms=100, owner="run-1") is True
    assert idem.claim("k", now=1, ttl_ms=100, owner="run-2") is False
    assert idem.holder("k", now=99) == "run-1"  # a failed claim changes no owner
    assert idem.holder("k", now=100) is None
    assert idem.claim("k", now=100, ttl_ms=100, owner="run-3") is True
    assert idem.holder("k", now=150) == "run-3"
    assert idem.claim("anonymous", now=0, ttl_ms=100) is True
    assert idem.holder("anonymous", now=0) == ""
