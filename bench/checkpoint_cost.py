"""Benchmark: the server's CPU per checkpoint, in process, without HTTP.

Not a test: it prints numbers. ``--runs`` runs of a 10-step function each have their
first call in flight (prepared, not answered), on a SQLite file in WAL mode as
``wayline dev`` opens it; then each run reports its steps one checkpoint at a time, the
way W2 of the peer bench does: step k of every run, then step k + 1. Saved either one
checkpoint per transaction (``Service.checkpoint``, ``--group 1``) or in groups of
``--group`` per transaction (``CheckpointGroup.save``, what the API's group commit does
with the checkpoints of one event-loop turn). Prints CPU microseconds per checkpoint
(``time.process_time``: this process only; the machine may be shared).

    .venv/bin/python bench/checkpoint_cost.py [--runs 500] [--steps 10] [--group 1 50 500]
    PYTHONPATH=/other/checkout/src .venv/bin/python bench/checkpoint_cost.py --group 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from wayline.clock import OsEntropy, SystemClock
from wayline.engine.checkpoint import Checkpoint
from wayline.engine.events import parse_request
from wayline.engine.ids import hash_step_id
from wayline.engine.model import App, FunctionDef, Trigger
from wayline.engine.protocol import Op
from wayline.engine.service import PreparedCall, Service
from wayline.store.sqlite import SqliteStore

FN = FunctionDef(
    id="bench-fn",
    app_id="bench",
    name="fn",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="go"),),
    retries=0,
)


def in_flight(service: Service, runs: int) -> dict[str, str]:
    """Start ``runs`` runs and prepare their first calls: run id -> the call's qi_id."""
    service.sync_app(App(id="bench", url=FN.url), [FN])
    for _ in range(runs):
        service.send_events(parse_request(b'{"name": "go", "data": {"n": 1}}'))
    calls = {}
    for run in service.store.runs.list_runs(function_id=FN.id, limit=runs):
        (item,) = run.pending.values()
        assert isinstance(service.prepare_call(item), PreparedCall)
        calls[run.id] = item.id
    return calls


def step(index: int, run_id: str) -> Op:
    name = f"step-{index}"
    data = {"step": index, "run": run_id, "payload": "x" * 64}
    return Op(op="StepRun", id=hash_step_id(name), name=name, data=data, has_data=True)


def grouped(service: Service) -> Callable[[list[Checkpoint]], list[object]]:
    """What ``CheckpointGroup`` does with one loop turn's checkpoints, without the futures:
    decide and save them in one batch (one transaction on SQLite)."""

    def save(chunk: list[Checkpoint]) -> list[object]:
        with service.batch():
            return [service.checkpoint(c) for c in chunk]

    return save


def measure(runs: int, steps: int, group: int) -> float:
    """CPU microseconds per checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SqliteStore(Path(tmp) / "bench.sqlite3")
        service = Service(sqlite.store(), SystemClock(), OsEntropy(), batch=sqlite.batch)
        calls = in_flight(service, runs)
        save = grouped(service)
        todo = [
            Checkpoint(run_id=run_id, qi_id=qi_id, steps=(step(k, run_id),))
            for k in range(steps)
            for run_id, qi_id in calls.items()
        ]
        started = time.process_time()
        for start in range(0, len(todo), group):
            chunk = todo[start : start + group]
            verdicts = [service.checkpoint(chunk[0])] if group == 1 else save(chunk)
            assert all(getattr(v, "status", None) == 200 for v in verdicts), verdicts
        spent = time.process_time() - started
        sqlite.close()
    return spent / len(todo) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--group", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--repeat", type=int, default=3, help="best of")
    args = parser.parse_args()
    for group in args.group:
        best = min(measure(args.runs, args.steps, group) for _ in range(args.repeat))
        print(f"group {group:>4}: {best:6.1f} us CPU per checkpoint")


if __name__ == "__main__":
    main()
