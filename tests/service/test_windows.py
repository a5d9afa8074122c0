"""Debounce and batch windows through the real service, on SQLite and on DynamoDB (moto),
with storage failures injected at the points that lost batches elsewhere (user-asks §17)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from contract.conftest import BACKENDS
from wayline.engine.events import validate_event
from wayline.engine.model import App, FunctionDef, RunStatus, Trigger, WorkItem, WorkKind
from wayline.engine.ports import Counters, IdSource, Store, Versioned
from wayline.engine.service import Service
from wayline.errors import StoreError

T0 = 1_800_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def now_ms(self) -> int:
        return self.now


class Entropy:
    def __init__(self) -> None:
        self.n = 0

    def entropy(self, n: int) -> bytes:
        self.n += 1
        return self.n.to_bytes(n, "big")


@dataclass
class FlakyCounters:
    """Counters that fail the next ``put``/``delete`` calls named in ``fail``."""

    inner: Counters
    fail: list[str]

    def get(self, key: str, *, now: int) -> Versioned | None:
        return self.inner.get(key, now=now)

    def put(self, key: str, value: Any, *, expected_version: int, now: int, ttl_ms: int) -> bool:
        if self.fail and self.fail[0] == "put":
            self.fail.pop(0)
            raise StoreError("injected: put failed")
        return self.inner.put(key, value, expected_version=expected_version, now=now, ttl_ms=ttl_ms)

    def delete(self, key: str, *, expected_version: int) -> bool:
        if self.fail and self.fail[0] == "delete":
            self.fail.pop(0)
            raise StoreError("injected: delete failed")
        return self.inner.delete(key, expected_version=expected_version)


@dataclass
class Harness:
    service: Service
    store: Store
    clock: Clock
    fail: list[str]

    def send(self, name: str, **data: Any) -> str:
        (event_id,) = self.service.send_events([validate_event({"name": name, "data": data})])
        return event_id

    def fire_due(self) -> list[WorkItem]:
        """Deliver every due flow timer once (as the worker would) and ack it."""
        items = self.store.queue.claim(now=self.clock.now, lease_ms=1_000, limit=100)
        timers = [i for i in items if i.kind in (WorkKind.BATCH, WorkKind.DEBOUNCE)]
        for item in timers:
            self.service.fire(item)
            self.store.queue.ack(item.id)
        for item in items:
            if item not in timers:
                self.store.queue.defer(item.id, until=self.clock.now + 10**9)
        return timers

    def runs(self) -> list[list[Any]]:
        found = self.store.runs.list_runs(function_id="app-fn", limit=100)
        return sorted(
            [
                [self.store.events.get_event(i).data["n"] for i in r.event_ids]  # type: ignore[union-attr]
                for r in found
                if r.status is not RunStatus.SKIPPED
            ]
        )


def make(
    config: dict[str, Any],
    backend: str = "sqlite-memory",
    tmp: Path | None = None,
    *,
    entropy: IdSource | None = None,
) -> Generator[Harness, None, None]:
    """A service with one function ``app-fn`` (trigger ``e``) on the given store backend."""
    opened = BACKENDS[backend](tmp or Path())
    base = opened.open()
    fail: list[str] = []
    store = replace(base, counters=FlakyCounters(base.counters, fail))
    clock = Clock()
    service = Service(store, clock, entropy or Entropy())
    fn = FunctionDef(
        id="app-fn",
        app_id="app",
        name="fn",
        url="http://127.0.0.1:1/",
        triggers=(Trigger(event="e"),),
        retries=0,
        config=config,
    )
    service.sync_app(App(id="app", url="http://127.0.0.1:1/"), [fn])
    try:
        yield Harness(service, store, clock, fail)
    finally:
        opened.close()


STORES = ["sqlite-memory", "dynamodb-moto"]
"""Flow control must behave the same on the dev server's store and on AWS's."""


@pytest.fixture(params=STORES)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def batcher(backend: str, tmp_path: Path) -> Iterator[Harness]:
    yield from make({"batchEvents": {"maxSize": 3, "timeout": "5s"}}, backend, tmp_path)


@pytest.fixture
def debouncer(backend: str, tmp_path: Path) -> Iterator[Harness]:
    yield from make({"debounce": {"period": "5s"}}, backend, tmp_path)


def test_each_batched_event_runs_exactly_once(batcher: Harness) -> None:
    for n in range(7):
        batcher.send("e", n=n)
    assert batcher.runs() == [[0, 1, 2], [3, 4, 5]]
    batcher.clock.now += 5_000
    batcher.fire_due()
    assert batcher.runs() == [[0, 1, 2], [3, 4, 5], [6]]
    batcher.clock.now += 60_000
    batcher.fire_due()  # every old timer is now a no-op
    assert batcher.runs() == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_failed_write_on_the_first_event_leaves_no_stuck_batch(batcher: Harness) -> None:
    batcher.fail.append("put")
    with pytest.raises(StoreError):
        batcher.send("e", n=0)  # the client sees an error and retries
    batcher.send("e", n=1)
    batcher.clock.now += 5_000
    batcher.fire_due()
    assert batcher.runs() == [[1]]  # n=0 was refused whole; n=1 was not stuck


def test_a_crash_between_start_and_removal_neither_repeats_nor_loses(batcher: Harness) -> None:
    batcher.send("e", n=0)
    batcher.send("e", n=1)
    batcher.fail.append("delete")  # the run starts, then removing the events fails
    with pytest.raises(StoreError):
        batcher.send("e", n=2)
    assert batcher.runs() == [[0, 1, 2]]
    batcher.send("e", n=3)  # lands in the same, not yet cleared buffer
    batcher.clock.now += 5_000
    batcher.fire_due()  # the timer closes it: [0, 1, 2] already ran; 3 moves on
    batcher.clock.now += 5_000
    batcher.fire_due()
    assert batcher.runs() == [[0, 1, 2], [3]]


def test_debounce_runs_once_per_quiet_window_with_the_last_event(debouncer: Harness) -> None:
    for n in range(4):
        debouncer.send("e", n=n)
        debouncer.clock.now += 1_000
    debouncer.fire_due()
    assert debouncer.runs() == []
    debouncer.clock.now += 5_000
    debouncer.fire_due()
    assert debouncer.runs() == [[3]]
    debouncer.send("e", n=4)
    debouncer.clock.now += 5_000
    debouncer.fire_due()
    debouncer.fire_due()
    assert debouncer.runs() == [[3], [4]]
