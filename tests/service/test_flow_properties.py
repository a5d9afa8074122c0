"""Flow-control invariants under random schedules (hypothesis), against reference models.

* Leases (concurrency slots): random acquires, releases, renewals and crashes (a holder
  that stops renewing) over time - in-flight never exceeds the limit, and every acquire
  succeeds exactly when the reference model has a free slot.
* Batching: random arrival times and sizes - every event runs exactly once.
* Debounce: random arrival times - exactly one run per quiet window, with its last event.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.store.sqlite import SqliteStore

from .test_windows import make

TTL = 100

lease_ops = st.lists(
    st.tuples(
        st.sampled_from(["acquire", "release", "tick"]), st.integers(0, 5), st.integers(1, 60)
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=lease_ops, limit=st.integers(1, 3))
def test_leases_match_the_reference_model(ops: list[tuple[str, int, int]], limit: int) -> None:
    with SqliteStore(":memory:") as sqlite:
        leases = sqlite.store().leases
        now = 0
        model: dict[str, int] = {}  # holder -> expiry; a crashed holder never renews
        peak = 0
        for op, holder_n, dt in ops:
            holder = f"h{holder_n}"
            model = {h: exp for h, exp in model.items() if exp > now}
            if op == "acquire":
                expected = holder in model or len(model) < limit
                got = leases.acquire("k", holder, limit=limit, now=now, ttl_ms=TTL)
                assert got == expected, (op, holder, now, model)
                if got:
                    model[holder] = now + TTL
            elif op == "release":
                leases.release("k", holder)
                model.pop(holder, None)
            else:
                now += dt
            live = {h for h, exp in model.items() if exp > now}
            assert set(leases.holders("k", now=now)) == live
            peak = max(peak, len(live))
        assert peak <= limit


arrivals = st.lists(st.integers(0, 4_000), min_size=1, max_size=25).map(sorted)


def _events_in_runs(runs: list[list[Any]]) -> list[Any]:
    return sorted(n for run in runs for n in run)


@settings(max_examples=40, deadline=None)
@given(times=arrivals, max_size=st.integers(2, 4))
def test_every_batched_event_runs_exactly_once(times: list[int], max_size: int) -> None:
    for h in make({"batchEvents": {"maxSize": max_size, "timeout": "1s"}}):
        for n, t in enumerate(times):
            h.clock.now = max(h.clock.now, 1_800_000_000_000 + t)
            h.fire_due()
            h.send("e", n=n)
        h.clock.now += 1_000
        h.fire_due()
        runs = h.runs()
        assert _events_in_runs(runs) == list(range(len(times)))
        assert all(1 <= len(run) <= max_size for run in runs)


@settings(max_examples=40, deadline=None)
@given(times=arrivals)
def test_debounce_runs_once_per_quiet_window(times: list[int]) -> None:
    period = 1_000
    for h in make({"debounce": {"period": "1s"}}):
        base = 1_800_000_000_000
        for n, t in enumerate(times):
            h.clock.now = max(h.clock.now, base + t)
            h.fire_due()
            h.send("e", n=n)
        h.clock.now += period
        h.fire_due()
        # Reference: a window closes after `period` with no event; its last event runs.
        expected = [
            [n] for n, t in enumerate(times) if n == len(times) - 1 or times[n + 1] - t >= period
        ]
        assert h.runs() == expected
