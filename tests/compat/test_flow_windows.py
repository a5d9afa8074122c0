"""Debounce and batching with the official SDK's options (the server clock is moved
forward instead of waiting for windows to close)."""

from __future__ import annotations

import datetime
import time

import inngest
import pytest

from .harness import COMPLETED, Compat, Recorder, wait_until

pytestmark = pytest.mark.compat

PERIOD = datetime.timedelta(seconds=5)


def test_debounce_starts_one_run_with_the_last_event(compat: Compat) -> None:
    client, seen = compat.client(), Recorder()

    @client.create_function(
        fn_id="debounced",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/typing"),
        debounce=inngest.Debounce(period=PERIOD, key="event.data.doc"),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        seen.append((ctx.event.data["doc"], ctx.event.data["text"]))
        return str(ctx.event.data["text"])

    compat.serve("fastapi", client, [fn])
    for text in ("h", "he", "hel"):
        compat.send("compat/typing", {"doc": "a", "text": text})
    compat.send("compat/typing", {"doc": "b", "text": "x"})
    time.sleep(0.3)
    assert seen.items == []  # still inside the quiet period
    compat.advance_clock(6_000)
    wait_until(lambda: len(seen.items) == 2, timeout=10, message=lambda: str(seen.items))
    time.sleep(0.3)
    assert sorted(seen.items) == [("a", "hel"), ("b", "x")]


def test_debounce_timeout_caps_the_delay(compat: Compat) -> None:
    client, seen = compat.client(), Recorder()

    @client.create_function(
        fn_id="capped",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/chatty"),
        debounce=inngest.Debounce(period=PERIOD, timeout=datetime.timedelta(seconds=8)),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        seen.append(ctx.event.data["n"])
        return str(ctx.event.data["n"])

    compat.serve("fastapi", client, [fn])
    for n in range(3):  # events at 0 s, 3 s and 6 s keep extending the quiet period
        if n:
            compat.advance_clock(3_000)
        compat.send("compat/chatty", {"n": n})
    time.sleep(0.5)
    assert seen.items == []  # at 6 s: the window is still open
    # The period alone would close it at 11 s; the timeout closes it 8 s after the first.
    compat.advance_clock(2_500)
    wait_until(lambda: len(seen.items) >= 1, timeout=10, message="debounce never fired")
    assert seen.items == [2]


def _serve_batcher(compat: Compat, key: str | None = None) -> Recorder:
    client, batches = compat.client(), Recorder()

    @client.create_function(
        fn_id="batcher",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/item"),
        batch_events=inngest.Batch(max_size=3, timeout=datetime.timedelta(seconds=5), key=key),
    )
    def fn(ctx: inngest.ContextSync) -> int:
        batches.append(sorted(e.data["n"] for e in ctx.events))
        return len(ctx.events)

    compat.serve("fastapi", client, [fn])
    return batches


def test_batch_closes_at_max_size_and_by_timeout(compat: Compat) -> None:
    batches = _serve_batcher(compat)
    ids = compat.send_many([{"name": "compat/item", "data": {"n": n}} for n in range(4)])
    run = compat.wait_run(ids[0], status=COMPLETED, timeout=10)
    assert run["output"] == 3  # closed by size, without waiting for the timeout
    time.sleep(0.3)
    assert batches.items == [[0, 1, 2]]
    compat.advance_clock(6_000)  # the fourth event's batch times out
    assert compat.wait_run(ids[3], status=COMPLETED, timeout=10)["output"] == 1
    assert batches.items == [[0, 1, 2], [3]]


def test_batches_are_partitioned_by_key(compat: Compat) -> None:
    batches = _serve_batcher(compat, key="event.data.team")
    events = [{"name": "compat/item", "data": {"n": n, "team": "ab"[n % 2]}} for n in range(6)]
    ids = compat.send_many(events)
    for event_id in ids:
        compat.wait_run(event_id, status=COMPLETED, timeout=10)
    assert sorted(batches.items) == [[0, 2, 4], [1, 3, 5]]
