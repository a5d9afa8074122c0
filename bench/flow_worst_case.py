"""Worst cases of flow control under seeded random schedules (not a test: it measures).

The property tests in tests/unit/test_gcra.py and tests/service/test_flow_properties.py
assert the bounds; this script reports the worst values actually observed over many
random schedules, for the record (bench/RESULTS.md):

* concurrency: peak holders of a limited key with random acquires, releases and crashed
  holders whose leases lapse (SQLite leases);
* throttle: most starts in any window of one period, against ``limit + burst - 1``;
* rate limit: most admitted in one instant, and in any window of one period.

    .venv/bin/python bench/flow_worst_case.py [--schedules 2000] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

from wayline.engine.flow.config import Rate
from wayline.engine.flow.gcra import rate_limit, throttle
from wayline.store.sqlite import SqliteStore

TTL = 100


def max_in_window(times: list[int], window: int) -> int:
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


def concurrency(rng: random.Random, schedules: int, limit: int) -> int:
    worst = 0
    with SqliteStore(":memory:") as sqlite:
        leases = sqlite.store().leases
        for s in range(schedules):
            key, now = f"k{s}", 0
            for _ in range(60):
                holder = f"h{rng.randrange(8)}"
                op = rng.random()
                if op < 0.5:
                    leases.acquire(key, holder, limit=limit, now=now, ttl_ms=TTL)
                elif op < 0.7:
                    leases.release(key, holder)
                else:
                    now += rng.randrange(1, 60)  # holders that do not renew lapse
                worst = max(worst, len(leases.holders(key, now=now)))
    return worst


def gcra_worst(rng: random.Random, schedules: int, rate: Rate) -> tuple[int, int, int]:
    throttle_worst = rate_instant = rate_window = 0
    for _ in range(schedules):
        arrivals = sorted(rng.randrange(0, 20_000) for _ in range(rng.randrange(1, 80)))
        tat_t: int | None = None
        tat_r: int | None = None
        starts, admitted = [], []
        for now in arrivals:
            t = throttle(tat_t, now=now, rate=rate)
            tat_t = t.tat
            starts.append(t.start_at or now)
            r = rate_limit(tat_r, now=now, rate=rate)
            tat_r = r.tat
            if r.start_at is not None:
                admitted.append(now)
        throttle_worst = max(throttle_worst, max_in_window(starts, rate.period_ms))
        rate_instant = max(rate_instant, max_in_window(admitted, 1))
        rate_window = max(rate_window, max_in_window(admitted, rate.period_ms))
    return throttle_worst, rate_instant, rate_window


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--schedules", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    limit = 3
    peak = concurrency(rng, args.schedules, limit)
    rate = Rate(limit=3, period_ms=1_000, burst=2)
    thr, inst, window = gcra_worst(rng, args.schedules, rate)
    rows = [
        ("concurrency (limit 3, crashes + lease expiry)", "peak in-flight", peak, limit),
        ("throttle (3/s, burst 2)", "max starts in one period", thr, rate.limit + rate.burst - 1),
        ("rate limit (3/s)", "max admitted at one instant", inst, rate.limit),
        ("rate limit (3/s)", "max admitted in one period (GCRA)", window, 2 * rate.limit - 1),
    ]
    for feature, what, observed, bound in rows:
        print(f"{feature:48} {what:36} observed {observed:3}  bound {bound}")
    if args.record:
        with Path("bench/RESULTS.md").open("a") as fh:
            fh.write(
                f"\n### flow_worst_case.py - {dt.date.today()}, {args.schedules} seeded "
                f"schedules per row (seed {args.seed})\n\n| feature | measure | observed"
                " | bound |\n| --- | --- | --- | --- |\n"
            )
            for feature, what, observed, bound in rows:
                fh.write(f"| {feature} | {what} | {observed} | {bound} |\n")


if __name__ == "__main__":
    main()
