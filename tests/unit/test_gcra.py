"""GCRA against a reference model: random arrival times, keys and parameters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.engine.flow.config import Rate
from wayline.engine.flow.gcra import interval_ms, rate_limit, throttle

arrivals = st.lists(st.integers(0, 20_000), min_size=1, max_size=80).map(sorted)
rates = st.builds(
    Rate, limit=st.integers(1, 10), period_ms=st.integers(1_000, 10_000), burst=st.integers(1, 5)
)


def max_in_window(times: list[int], window: int) -> int:
    """The most ``times`` in any half-open window ``[t, t + window)``."""
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


@settings(max_examples=300, deadline=None)
@given(times=arrivals, rate=rates)
def test_rate_limit_never_admits_more_than_limit_per_period(times: list[int], rate: Rate) -> None:
    tat: int | None = None
    admitted = []
    for now in times:
        decision = rate_limit(tat, now=now, rate=rate)
        tat = decision.tat
        if decision.start_at is not None:
            assert decision.start_at == now
            admitted.append(now)
    t = interval_ms(rate)
    for window in (t, rate.period_ms, 3 * rate.period_ms):
        assert max_in_window(admitted, window) <= rate.limit + (window - 1) // t
    assert max_in_window(admitted, 1) <= rate.limit  # never more than limit at once
    assert admitted[0] == times[0]  # the first event is always admitted


@settings(max_examples=300, deadline=None)
@given(times=arrivals, rate=rates)
def test_throttle_queues_fifo_and_never_exceeds_limit_plus_burst(
    times: list[int], rate: Rate
) -> None:
    tat: int | None = None
    starts = []
    for now in times:
        decision = throttle(tat, now=now, rate=rate)
        assert decision.start_at is not None and decision.start_at >= now
        tat = decision.tat
        starts.append(decision.start_at)
    assert starts == sorted(starts)  # FIFO: no event overtakes an earlier one
    assert max_in_window(starts, rate.period_ms) <= rate.limit + rate.burst - 1
    assert max_in_window(starts, 1) <= rate.burst


def test_a_burst_of_limit_starts_then_one_per_interval() -> None:
    rate = Rate(limit=2, period_ms=10_000)
    tat = None
    admitted = []
    for now in (0, 1, 2, 3, 5_000, 5_001, 10_000):
        decision = rate_limit(tat, now=now, rate=rate)
        tat = decision.tat
        admitted.append(decision.start_at is not None)
    assert admitted == [True, True, False, False, True, False, True]


def test_throttle_spaces_a_burst_by_the_interval() -> None:
    rate = Rate(limit=1, period_ms=1_000, burst=1)
    tat = None
    starts = []
    for now in (0, 0, 0, 0):
        decision = throttle(tat, now=now, rate=rate)
        tat = decision.tat
        starts.append(decision.start_at)
    assert starts == [0, 1_000, 2_000, 3_000]
