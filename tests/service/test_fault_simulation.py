"""Fault-injection simulation of the service and a real store (SQLite and DynamoDB on moto).

Each seed drives a few runs of two functions through the real ``Service`` while a seeded
schedule fails or "crashes" store calls anywhere - before a write, or after a write took
effect - delivers items twice, and lets leases of crashed deliveries expire. The app is a
small model of an SDK (immediate execution, one step per call) running::

    parent: step "a" -> sleep "nap" -> waitForEvent "go" -> invoke child -> step "b"
    child:  step "c"

The test plays the outside world: it sends each parent's trigger event (a failed send is
retried by the client with the same idempotency seed), and sends the "go" event a run
waits for once the run is saved as waiting (as a user would see it), however soon after.
Invariants, checked after every seed:

* every trigger event has exactly one parent run and every run finished Completed, with
  the output its steps compute (so the wait was resolved by its event, not by a timeout,
  and the invoke by the child's finish event);
* a memo, once seen, never changes;
* every finished run published its ``inngest/function.finished`` event exactly once, and
  no outbox is left unapplied;
* while a run is live it has a pending work item or an open wait (it cannot stall).

``WAYLINE_SIM_SEEDS`` sets the number of SQLite seeds (default 1000); DynamoDB on moto,
~30x slower per seed, runs a hundredth of them. Record long runs in bench/RESULTS.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wayline.engine.service import Service

from .sim import simulate

SEEDS = int(os.environ.get("WAYLINE_SIM_SEEDS", "1000"))


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sqlite_holds_under_faults(seed: int, tmp_path: Path) -> None:
    simulate("sqlite-memory", seed, tmp_path)


@pytest.mark.parametrize("seed", range(max(1, SEEDS // 100)))
def test_dynamodb_holds_under_faults(seed: int, tmp_path: Path) -> None:
    simulate("dynamodb-moto", seed, tmp_path)


def test_the_simulation_catches_effects_that_are_not_reapplied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness finds the defect it was built for: when nobody re-applies an outbox a
    failure left behind (the behaviour before outboxes), some seed loses work."""
    monkeypatch.setattr(Service, "_load", lambda self, run_id: self._store.runs.get_run(run_id))
    failures = 0
    for seed in range(20):
        try:
            simulate("sqlite-memory", seed, tmp_path)
        except AssertionError:
            failures += 1
    assert failures > 0
