"""Runs due at the same time are served in the order they arrived (issue 12, item 9).

``test_priority_orders_the_backlog`` saw ``plain-2`` run before ``plain-1`` under load:
both runs' first calls were due in the same millisecond and the queue breaks ``at`` ties by
id, and run ids were random within a millisecond. Entropy that counts down makes that
order the wrong one every time, so this fails without monotonic ids.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wayline.engine.events import validate_event

from .test_windows import STORES, make


class CountdownEntropy:
    """Each id's random part is smaller than the last one's."""

    def __init__(self) -> None:
        self.n = 2**64

    def entropy(self, n: int) -> bytes:
        self.n -= 1
        return self.n.to_bytes(n, "big")


@pytest.mark.parametrize("backend", STORES)
def test_runs_due_in_one_ms_are_claimed_in_arrival_order(backend: str, tmp_path: Path) -> None:
    gen = make({}, backend, tmp_path, entropy=CountdownEntropy())
    h = next(gen)
    try:
        inputs = [validate_event({"name": "e", "data": {"n": n}}) for n in range(5)]
        h.service.send_events(inputs)
        items = h.store.queue.claim(now=h.clock.now, lease_ms=1_000, limit=10)
        order = [h.store.runs.get_run(i.run_id) for i in items]
        names = [r.events[0]["data"]["n"] for r in order if r is not None]
        assert names == [0, 1, 2, 3, 4]
    finally:
        gen.close()
