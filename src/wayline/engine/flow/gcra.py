"""GCRA (the generic cell rate algorithm) for throttle and rate limit, as pure functions.

State is one number per key, the theoretical arrival time (TAT). With emission interval
``T = period / limit`` and tolerance ``tau``:

* an arrival at ``now`` conforms iff ``max(TAT, now) - tau <= now``; it then moves TAT to
  ``max(TAT, now) + T``;
* **rate limit** (hard) uses ``tau = (limit - 1) * T``: a burst of up to ``limit`` starts,
  then one every ``T``, so the sustained rate is ``limit`` per ``period`` and any window of
  length ``W`` holds at most ``limit + floor(W / T)`` starts (at most ``2 * limit - 1`` in
  one period: GCRA's guarantee, as on Inngest); a non-conforming event is skipped and TAT
  does not move;
* **throttle** (soft) uses ``tau = (burst - 1) * T`` plus a queue: a non-conforming event
  is not dropped but scheduled at ``max(TAT, now) - tau``, the first instant it conforms,
  and TAT still moves, so queued starts keep their arrival (FIFO) order; any window of
  length ``W`` holds at most ``burst + floor(W / T)`` starts, so at most
  ``limit + burst - 1`` per period.

The store holds TAT and updates it with a compare-and-set; these functions only decide.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Rate


@dataclass(frozen=True, slots=True)
class Admission:
    start_at: int | None
    """When the run may start (``now`` if at once); None when a rate limit skips it."""
    tat: int
    """The key's new theoretical arrival time (unchanged when skipped)."""


def interval_ms(rate: Rate) -> int:
    """``period / limit`` rounded up: rounding down would let a limiter run fast."""
    return max(1, -(-rate.period_ms // rate.limit))


def rate_limit(tat: int | None, *, now: int, rate: Rate) -> Admission:
    """Hard limit: conform or be skipped."""
    t = interval_ms(rate)
    tau = (rate.limit - 1) * t
    base = max(tat if tat is not None else now, now)
    if base - tau > now:
        return Admission(start_at=None, tat=tat if tat is not None else now)
    return Admission(start_at=now, tat=base + t)


def throttle(tat: int | None, *, now: int, rate: Rate) -> Admission:
    """Soft limit: conform now, or start later at the first conforming instant."""
    t = interval_ms(rate)
    tau = (rate.burst - 1) * t
    base = max(tat if tat is not None else now, now)
    return Admission(start_at=max(now, base - tau), tat=base + t)
