"""Flow control with the official SDK's options: concurrency, throttle, rate limit,
idempotency, singleton and priority, observed from the app and the run records."""

from __future__ import annotations

import datetime
import itertools
import threading
import time
from typing import Literal

import inngest
import pytest

from .harness import CANCELLED, COMPLETED, RUNNING, SKIPPED, Compat, Recorder

pytestmark = pytest.mark.compat

SECOND = datetime.timedelta(seconds=1)
HOUR = datetime.timedelta(hours=1)


class Overlap:
    """Counts how many step bodies run at once, overall and per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def run(self, key: str, seconds: float) -> None:
        with self._lock:
            for k in (key, "*"):
                self.active[k] = self.active.get(k, 0) + 1
                self.peak[k] = max(self.peak.get(k, 0), self.active[k])
        time.sleep(seconds)
        with self._lock:
            for k in (key, "*"):
                self.active[k] -= 1


def test_concurrency_limit_holds_under_a_burst(compat: Compat) -> None:
    client, overlap = compat.client(), Overlap()

    @client.create_function(
        fn_id="limited",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/limited"),
        concurrency=[inngest.Concurrency(limit=2)],
    )
    def fn(ctx: inngest.ContextSync) -> str:
        ctx.step.run("work", lambda: overlap.run("all", 0.3))
        return "ok"

    compat.serve("fastapi", client, [fn])
    ids = compat.send_many([{"name": "compat/limited", "data": {"i": i}} for i in range(8)])
    for event_id in ids:
        assert compat.wait_run(event_id, status=COMPLETED, timeout=30)["output"] == "ok"
    assert overlap.peak["*"] == 2


def test_keyed_concurrency_limits_each_key_separately(compat: Compat) -> None:
    client, overlap = compat.client(), Overlap()

    @client.create_function(
        fn_id="per-user",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/per-user"),
        concurrency=[inngest.Concurrency(limit=1, key="event.data.user")],
    )
    def fn(ctx: inngest.ContextSync) -> str:
        user = str(ctx.event.data["user"])
        ctx.step.run("work", lambda: overlap.run(user, 0.4))
        return user

    compat.serve("fastapi", client, [fn])
    users = ["a", "a", "a", "b", "b", "b"]
    ids = compat.send_many([{"name": "compat/per-user", "data": {"user": u}} for u in users])
    for event_id in ids:
        compat.wait_run(event_id, status=COMPLETED, timeout=30)
    assert overlap.peak["a"] == 1 and overlap.peak["b"] == 1
    assert overlap.peak["*"] == 2  # different keys did run side by side


def test_throttle_spaces_starts_and_loses_nothing(compat: Compat) -> None:
    client, starts = compat.client(), Recorder()

    @client.create_function(
        fn_id="throttled",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/throttled"),
        throttle=inngest.Throttle(limit=1, period=datetime.timedelta(seconds=1)),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        ctx.step.run("start", lambda: starts.append(time.monotonic()))
        return "ok"

    compat.serve("fastapi", client, [fn])
    ids = compat.send_many([{"name": "compat/throttled"} for _ in range(3)])
    for event_id in ids:
        compat.wait_run(event_id, status=COMPLETED, timeout=30)
    times = sorted(starts.items)
    assert len(times) == 3
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times)), times


def test_rate_limit_skips_the_excess_and_records_it(compat: Compat) -> None:
    client, calls = compat.client(), Recorder()

    @client.create_function(
        fn_id="rated",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/rated"),
        rate_limit=inngest.RateLimit(
            limit=1, period=datetime.timedelta(hours=1), key="event.data.user"
        ),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        calls.append(ctx.event.data["user"])
        return "ok"

    compat.serve("fastapi", client, [fn])
    ids = compat.send_many([{"name": "compat/rated", "data": {"user": u}} for u in "aab"])
    statuses = [compat.wait_run(i, timeout=20)["status"] for i in ids]
    assert statuses == [COMPLETED, SKIPPED, COMPLETED]
    skipped = compat.wait_run(ids[1], timeout=5)
    assert "rateLimit" in str(skipped["cancel_reason"])
    assert sorted(calls.items) == ["a", "b"]


def test_idempotency_key_starts_one_run_per_key(compat: Compat) -> None:
    client = compat.client()

    @client.create_function(
        fn_id="once",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/once"),
        idempotency="event.data.order",
    )
    def fn(ctx: inngest.ContextSync) -> str:
        return str(ctx.event.data["order"])

    compat.serve("fastapi", client, [fn])
    ids = compat.send_many([{"name": "compat/once", "data": {"order": o}} for o in "xxy"])
    statuses = [compat.wait_run(i, timeout=20)["status"] for i in ids]
    assert statuses == [COMPLETED, SKIPPED, COMPLETED]


@pytest.mark.parametrize("mode", ["skip", "cancel"])
def test_singleton(compat: Compat, mode: Literal["skip", "cancel"]) -> None:
    client = compat.client()

    @client.create_function(
        fn_id="solo",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/solo"),
        singleton=inngest.Singleton(mode=mode, key="event.data.user"),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("hold", datetime.timedelta(seconds=30))
        return "done"

    compat.serve("fastapi", client, [fn])
    first = compat.send("compat/solo", {"user": "u"})
    first_run = compat.wait_run(first, status=RUNNING, timeout=10)
    other_key = compat.send("compat/solo", {"user": "v"})
    second = compat.send("compat/solo", {"user": "u"})
    if mode == "skip":
        assert compat.wait_run(second, timeout=10)["status"] == SKIPPED
        assert compat.get_run(str(first_run["run_id"]))["status"] == RUNNING
    else:
        assert compat.wait_run_by_id(str(first_run["run_id"]), timeout=10)["status"] == CANCELLED
        assert compat.wait_run(second, status=RUNNING, timeout=10)["status"] == RUNNING
    assert compat.wait_run(other_key, status=RUNNING, timeout=10)["status"] == RUNNING


def test_priority_orders_the_backlog(compat: Compat) -> None:
    client, order, gate = compat.client(), Recorder(), threading.Event()

    @client.create_function(
        fn_id="prioritized",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/prio"),
        concurrency=[inngest.Concurrency(limit=1)],
        priority=inngest.Priority(run="event.data.vip ? 300 : 0"),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        name = str(ctx.event.data["name"])

        def work() -> None:
            if name == "blocker":
                gate.wait(10)
            order.append(name)

        ctx.step.run("work", work)
        return name

    compat.serve("fastapi", client, [fn])
    blocker = compat.send("compat/prio", {"name": "blocker", "vip": False})
    compat.wait_run(blocker, status=RUNNING, timeout=10)
    time.sleep(0.3)  # the blocker holds the only slot
    ids = compat.send_many(
        [
            {"name": "compat/prio", "data": {"name": "plain-1", "vip": False}},
            {"name": "compat/prio", "data": {"name": "plain-2", "vip": False}},
            {"name": "compat/prio", "data": {"name": "vip", "vip": True}},
        ]
    )
    time.sleep(0.3)
    gate.set()
    for event_id in [blocker, *ids]:
        compat.wait_run(event_id, status=COMPLETED, timeout=30)
    assert order.items == ["blocker", "vip", "plain-1", "plain-2"]


def test_start_timeout_cancels_a_run_stuck_behind_the_limit(compat: Compat) -> None:
    client, gate = compat.client(), threading.Event()

    @client.create_function(
        fn_id="impatient",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/impatient"),
        concurrency=[inngest.Concurrency(limit=1)],
        timeouts=inngest.Timeouts(start=datetime.timedelta(seconds=5)),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        ctx.step.run("work", lambda: gate.wait(10))
        return "ok"

    compat.serve("fastapi", client, [fn])
    first = compat.send("compat/impatient")
    compat.wait_run(first, status=RUNNING, timeout=10)
    time.sleep(0.3)  # the first run's step holds the only slot
    second = compat.send("compat/impatient")
    compat.advance_clock(6_000)
    cancelled = compat.wait_run(second, status=CANCELLED, timeout=10)
    assert "timeouts.start" in str(cancelled["cancel_reason"])
    gate.set()
    assert compat.wait_run(first, status=COMPLETED, timeout=10)["output"] == "ok"
