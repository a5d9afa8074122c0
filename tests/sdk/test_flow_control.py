"""Flow control declared with the Wayline SDK, enforced by a real ``wayline dev``.

The same server-side behaviour the official-SDK suite checks (tests/compat/test_flow_*),
from functions whose options the Wayline SDK serialized.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import fastapi
import pytest

import wayline
import wayline.fastapi
from compat.harness import CANCELLED, COMPLETED, RUNNING, SKIPPED, Compat, wait_until

pytestmark = pytest.mark.timeout(90)


class Overlap:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.seen: dict[str, list[Any]] = defaultdict(list)

    def work(self, key: str, seconds: float) -> None:
        with self._lock:
            self.active[key] += 1
            self.peak[key] = max(self.peak[key], self.active[key])
        time.sleep(seconds)
        with self._lock:
            self.active[key] -= 1

    def note(self, key: str, value: Any) -> None:
        with self._lock:
            self.seen[key].append(value)


state = Overlap()


def build(client: wayline.Wayline) -> list[wayline.Function[Any, Any]]:
    @client.function(
        id="limited",
        trigger=wayline.TriggerEvent(event="flow/limited"),
        retries=0,
        concurrency=[wayline.Concurrency(limit=2)],
    )
    def limited(ctx: wayline.SyncContext) -> str:
        key = str(ctx.event.data["key"])
        ctx.step.run("work", state.work, key, 0.3)
        return "ok"

    @client.function(
        id="rated",
        trigger=wayline.TriggerEvent(event="flow/rated"),
        retries=0,
        rate_limit=wayline.RateLimit(limit=1, period="1h", key="event.data.key"),
    )
    async def rated(ctx: wayline.Context) -> str:
        return "ok"

    @client.function(
        id="debounced",
        trigger=wayline.TriggerEvent(event="flow/typing"),
        retries=0,
        debounce=wayline.Debounce(period="5s", key="event.data.key"),
    )
    async def debounced(ctx: wayline.Context) -> str:
        state.note(str(ctx.event.data["key"]), ctx.event.data["text"])
        return str(ctx.event.data["text"])

    @client.function(
        id="batched",
        trigger=wayline.TriggerEvent(event="flow/item"),
        retries=0,
        batch_events=wayline.Batch(max_size=3, timeout="5s", key="event.data.key"),
    )
    async def batched(ctx: wayline.Context) -> list[int]:
        return sorted(int(e.data["n"]) for e in ctx.events)

    @client.function(
        id="solo",
        trigger=wayline.TriggerEvent(event="flow/solo"),
        retries=0,
        singleton=wayline.Singleton(mode="skip", key="event.data.key"),
    )
    async def solo(ctx: wayline.Context) -> str:
        await ctx.step.sleep("hold", "30s")
        return "done"

    @client.function(
        id="cancellable",
        trigger=wayline.TriggerEvent(event="flow/order"),
        retries=0,
        cancel=[
            wayline.Cancel(event="flow/order.cancelled", if_="event.data.key == async.data.key")
        ],
    )
    async def cancellable(ctx: wayline.Context) -> str:
        await ctx.step.sleep("hold", "30s")
        return "shipped"

    return [limited, rated, debounced, batched, solo, cancellable]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compat]:
    compat = Compat(tmp_path_factory.mktemp("sdk-flow"))
    client = wayline.Wayline(app_id="flow", is_dev=True, base_url=compat.server_url)
    app = fastapi.FastAPI()
    handler = wayline.fastapi.serve(app, client, build(client))
    try:
        compat.serve_app(app, app_id="flow", function_ids=handler.function_ids)
        yield compat
    finally:
        compat.close()
        client.close()


def key() -> str:
    return uuid.uuid4().hex


def test_concurrency(dev: Compat) -> None:
    k = key()
    ids = dev.send_many([{"name": "flow/limited", "data": {"key": k}} for _ in range(6)])
    for event_id in ids:
        dev.wait_run(event_id, "limited", status=COMPLETED, timeout=30)
    assert state.peak[k] == 2


def test_rate_limit(dev: Compat) -> None:
    k = key()
    ids = dev.send_many([{"name": "flow/rated", "data": {"key": k}} for _ in range(2)])
    assert [dev.wait_run(i, "rated")["status"] for i in ids] == [COMPLETED, SKIPPED]


def test_debounce_and_batch(dev: Compat) -> None:
    k = key()
    for text in ("a", "ab", "abc"):
        dev.send("flow/typing", {"key": k, "text": text})
    items = dev.send_many([{"name": "flow/item", "data": {"key": k, "n": n}} for n in range(3)])
    assert dev.wait_run(items[0], "batched", status=COMPLETED)["output"] == [0, 1, 2]
    dev.advance_clock(6_000)
    wait_until(lambda: state.seen[k] == ["abc"], timeout=10, message=lambda: str(state.seen[k]))


def test_singleton_and_cancel_on(dev: Compat) -> None:
    k = key()
    first = dev.send("flow/solo", {"key": k})
    run = dev.wait_run(first, "solo", status=RUNNING, timeout=10)
    second = dev.send("flow/solo", {"key": k})
    assert dev.wait_run(second, "solo")["status"] == SKIPPED
    dev.cancel_run(str(run["run_id"]))

    order = dev.send("flow/order", {"key": k})
    placed = dev.wait_run(order, "cancellable", status=RUNNING, timeout=10)
    time.sleep(0.2)
    dev.send("flow/order.cancelled", {"key": k})
    assert dev.wait_run_by_id(str(placed["run_id"]), timeout=10)["status"] == CANCELLED
