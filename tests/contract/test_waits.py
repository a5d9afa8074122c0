"""WaitStore contract: idempotent add, oldest-first lookup, take exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from wayline.engine.model import WaitKind
from wayline.engine.ports import Store
from wayline.store import sqlite_waits
from wayline.store.sqlite import SqliteStore

from .conftest import Backend, make_wait, unset_fields


def test_wait_round_trips(store: Store) -> None:
    wait = make_wait("w1", kind=WaitKind.INVOKE, created_at=3)
    assert unset_fields(wait) == set()
    store.waits.add_wait(wait)
    assert store.waits.waits_for(wait.event) == [wait]
    assert store.waits.take_wait("w1") == wait


def test_add_is_idempotent(store: Store) -> None:
    first = make_wait("w1", expires_at=1)
    store.waits.add_wait(first)
    store.waits.add_wait(make_wait("w1", expires_at=2))
    assert store.waits.waits_for(first.event) == [first]


def test_waits_for_is_oldest_first_and_by_event(store: Store) -> None:
    for wait_id, event, created_at in [
        ("w3", "a", 5),
        ("w1", "a", 7),
        ("w2", "b", 1),
        ("w0", "a", 5),
    ]:
        store.waits.add_wait(make_wait(wait_id, event, created_at))
    assert [w.id for w in store.waits.waits_for("a")] == ["w0", "w3", "w1"]
    assert [w.id for w in store.waits.waits_for("b")] == ["w2"]
    assert store.waits.waits_for("c") == []


def test_take_removes(store: Store) -> None:
    store.waits.add_wait(make_wait("w1"))
    store.waits.add_wait(make_wait("w2"))
    assert store.waits.take_wait("w1") == make_wait("w1")
    assert store.waits.take_wait("w1") is None
    assert store.waits.take_wait("nope") is None
    assert [w.id for w in store.waits.waits_for("shop/paid")] == ["w2"]


def _race_take(stores: list[Store], wait_id: str) -> list[object]:
    barrier = threading.Barrier(len(stores))
    results: list[object] = [None] * len(stores)

    def take(i: int) -> None:
        barrier.wait()
        results[i] = stores[i].waits.take_wait(wait_id)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_threads_racing_take_one_wins(store: Store) -> None:
    for n in range(5):
        store.waits.add_wait(make_wait(f"w{n}"))
        results = _race_take([store] * 8, f"w{n}")
        assert [r for r in results if r is not None] == [make_wait(f"w{n}")]


def test_connections_racing_take_one_wins(durable: Backend) -> None:
    stores = [durable.open() for _ in range(4)]
    stores[0].waits.add_wait(make_wait("w1"))
    results = _race_take(stores, "w1")
    assert [r for r in results if r is not None] == [make_wait("w1")]


def test_sqlite_take_without_returning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite-only: the select+delete path used on libraries older than 3.35."""
    monkeypatch.setattr(sqlite_waits, "HAS_RETURNING", False)
    with SqliteStore(tmp_path / "old.db") as db:
        store = db.store()
        store.waits.add_wait(make_wait("w1"))
        results = _race_take([store] * 8, "w1")
        assert [r for r in results if r is not None] == [make_wait("w1")]
        assert store.waits.waits_for("shop/paid") == []
