"""A seeded fault-injection run of the AWS topology (issue 14): a few dozen runs through two
dispatch containers while moto throttles, fails and half-applies requests, containers die
at every named point of a dispatch, and SQS delivers messages twice.

What must hold afterwards, for every seed:

1. every event's run exists (none lost at ingest);
2. every run is terminal, with the output its function returns;
3. every matched wait resolved (the waiter got the approval, not a timeout);
4. every terminal run published ``inngest/function.finished`` exactly once;
5. no step body ran twice for one delivery: a body re-runs only when a call's answer was
   lost (the container died, or the save failed, after the app answered);
6. no stall: everything is done a few virtual minutes after the workload's own time
   (``STALL_LIMIT_MS``), so no run waited for the 15-minute sweep or a 90-minute timeout.

``WAYLINE_FAULT_SEEDS=N`` runs N seeds (default 2, < 90 s); the seed is in the test id, so
a failing seed replays exactly (modulo thread timing in uvicorn, which the faults do not
depend on: they count calls).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from wayline.aws.sqs import decode_item
from wayline.engine import lifecycle
from wayline.engine.model import Run, RunStatus

from .conftest import Stack, VirtualClock
from .driver import FakeLambdaContext
from .fault_app import Cluster, Executions, serving
from .faults import ContainerDied, CrashPoint, Fault, Faults, Kind, is_run_save

SEEDS = int(os.environ.get("WAYLINE_FAULT_SEEDS", "2"))
MIN = 60_000
NAP_MS = 2 * MIN
"""The workload's own virtual time: the napper's sleep."""
STALL_LIMIT_MS = NAP_MS + 5 * MIN
"""Everything must be done this long after the workload starts."""
GIVE_UP_MS = 45 * MIN
"""How long the run goes on after a violation, to report whether (and when) it converged."""
IDLE_STEP_MS = 5_000
SWEEP_EVERY_MS = 15 * MIN  # template.yaml SweepIntervalMinutes

WORKLOAD = {"t/steps": 6, "t/nap": 3, "t/order": 4, "t/parent": 3}
FUNCTION_OF = {"t/steps": "steps", "t/nap": "napper", "t/order": "waiter", "t/parent": "parent"}
OUTPUTS: dict[str, Callable[[Run], bool]] = {
    "steps": lambda run: run.output == 3,
    "napper": lambda run: run.output == "after",
    "waiter": lambda run: run.output == {"order": run.events[0]["data"]["order"], "ok": True},
    "parent": lambda run: run.output == {"doubled": 42},
    "child": lambda run: run.output == {"doubled": 42},
}

DYNAMO_WRITES = ("UpdateItem", "TransactWriteItems", "PutItem")


def fault_menu(rng: random.Random) -> list[Fault]:
    """Eight faults of the kinds issue 14 names, each on a random call of its operation."""
    menu: list[Callable[[], Fault]] = [
        lambda: Fault("dynamodb", None, Kind.THROTTLE, skip=rng.randint(0, 400)),
        lambda: Fault("sqs", "SendMessageBatch", Kind.THROTTLE, skip=rng.randint(0, 60)),
        lambda: Fault("dynamodb", "TransactWriteItems", Kind.SERVER_ERROR, skip=rng.randint(0, 60)),
        lambda: Fault(
            "dynamodb", rng.choice(DYNAMO_WRITES), Kind.AMBIGUOUS, skip=rng.randint(0, 80)
        ),
        lambda: Fault("sqs", "SendMessageBatch", Kind.AMBIGUOUS, skip=rng.randint(0, 60)),
        # CrashPoint.AFTER_SAVE: the run's conditional save succeeded, nothing after it ran.
        lambda: Fault(
            "dynamodb", None, Kind.CRASH_AFTER, when=is_run_save, skip=rng.randint(0, 60)
        ),
        # CrashPoint.AFTER_ENQUEUE: the next item is in SQS, nothing after it ran.
        lambda: Fault("sqs", "SendMessageBatch", Kind.CRASH_AFTER, skip=rng.randint(0, 60)),
        lambda: Fault("dynamodb", None, Kind.CRASH_BEFORE, skip=rng.randint(0, 400)),
    ]
    return [rng.choice(menu)() for _ in range(8)]


@dataclass
class Ledger:
    """What the dispatchers did, per run: app answers received and calls saved."""

    answered: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)

    def lost_answers(self, run_id: str) -> int:
        return self.answered[run_id] - self.completed[run_id]


class FaultRun:
    def __init__(self, cluster: Cluster, executions: Executions, seed: int) -> None:
        self.cluster = cluster
        self.executions = executions
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.sent: Counter[str] = Counter()
        self.approved: set[int] = set()
        self.pending_crash: dict[str, CrashPoint | None] = {"dispatch": None, "dispatch_b": None}
        self.crashed_at: Counter[str] = Counter()
        self.duplicates = 0
        self.started_at = 0
        self.next_sweep = 0
        self._current: dict[str, str] = {}
        """The run each container is working on (one message per delivery)."""
        self._racer: Callable[[], None] | None = None
        """Container B's delivery of a duplicate, run when A is about to call the app."""
        for name in ("dispatch", "dispatch_b"):
            self.cluster.runtimes[name].dispatcher.checkpoint = self._checkpoint(name)

    # -- the workload --------------------------------------------------------------

    def start(self) -> None:
        for fault in fault_menu(self.rng):
            self.cluster.faults.add(fault)
        order = 0
        for name, n in WORKLOAD.items():
            for _ in range(n):
                order += 1
                self.cluster.put_events(name, {"order": order})
                self.sent[name] += 1
        self.started_at = self.cluster.clock.now_ms()
        self.next_sweep = self.started_at + SWEEP_EVERY_MS

    def approve_waiting(self) -> None:
        """Send each waiter its approval once its wait is registered (an earlier event must
        not match, and one sent between the run's save and its wait's registration need
        not: the run's outbox registers the wait after the save)."""
        if len(self.approved) == self.sent["t/order"]:
            return
        registered = {w.run_id for w in self.cluster.observer.store.waits.waits_for("t/approved")}
        for run in self.cluster.runs("waiter"):
            order = run.events[0]["data"]["order"]
            if run.id in registered and order not in self.approved:
                self.approved.add(order)
                self.cluster.put_events("t/approved", {"order": order, "ok": True})

    # -- Lambda, with crashes and duplicates -----------------------------------------

    def _checkpoint(self, worker: str) -> Callable[[str], None]:
        def checkpoint(point: str) -> None:
            run_id = self._current.get(worker, "")
            if point == "after_answer":
                self.ledger.answered[run_id] += 1
            elif point == "completed":
                self.ledger.completed[run_id] += 1
            if point == "before_call" and self._racer is not None and worker == "dispatch":
                racer, self._racer = self._racer, None
                racer()
            crash = self.pending_crash[worker]
            if crash is not None and crash.value == point:
                self.pending_crash[worker] = None
                self.crashed_at[point] += 1
                raise ContainerDied(point)

        return checkpoint

    def dispatch(self) -> int:
        """One poll of the work queue by container A or B; sometimes SQS hands the same
        messages to the other container too, while the first is about to call the app."""
        c = self.cluster
        url = c.stack.work_queue_url
        messages = c.receive(url)
        if not messages:
            return 0
        worker = self.rng.choice(["dispatch", "dispatch_b"])
        other = "dispatch_b" if worker == "dispatch" else "dispatch"
        roll = self.rng.random()
        if roll < 0.05:
            self.pending_crash[worker] = self.rng.choice(
                [CrashPoint.BEFORE_CALL, CrashPoint.AFTER_ANSWER]
            )
        elif roll < 0.08:
            c.crash_before_delete = True
            self.crashed_at[CrashPoint.BEFORE_DELETE] += 1
        self._current = {}
        duplicate: list[dict[str, Any]] = []
        if self.rng.random() < 0.15:
            for m in messages:
                c.stack.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            duplicate = c.receive(url)
            self.duplicates += 1
        handlers = {"dispatch": c.dispatch, "dispatch_b": c.dispatch_b}
        if duplicate and worker == "dispatch":
            self._racer = lambda: self._deliver(other, handlers[other], duplicate)
        self._deliver(worker, handlers[worker], messages)
        if self._racer is not None or (duplicate and worker != "dispatch"):
            self._racer = None
            self._deliver(other, handlers[other], duplicate)  # a late duplicate
        return len(messages)

    def _deliver(self, worker: str, handler: Any, messages: list[dict[str, Any]]) -> None:
        run_ids = {decode_item(m["Body"]).run_id for m in messages if m["Body"].startswith("{")}
        self._current[worker] = next(iter(run_ids), "") if len(run_ids) == 1 else ""
        if len(run_ids) > 1:  # attribute calls per message: deliver one at a time
            for m in messages:
                self._deliver(worker, handler, [m])
            return
        self.cluster.dispatch_with(handler, messages)

    def round(self) -> int:
        c = self.cluster
        work = c.fire_due_schedules()
        while (n := c.poll("ingest")) > 0:
            work += n
        self.approve_waiting()
        return work + self.dispatch()

    def sweep_if_due(self) -> None:
        if self.cluster.clock.now_ms() < self.next_sweep:
            return
        self.next_sweep += SWEEP_EVERY_MS
        with contextlib.suppress(ContainerDied):  # a crashed sweep: the next one repairs
            self.cluster.timers({"kind": "sweep"}, FakeLambdaContext())

    def drive(self, until_ms: int, *, idle_step_ms: int = IDLE_STEP_MS) -> None:
        """Rounds until everything is done or the clock reaches ``until_ms``; time moves
        on only when nothing is visible (so a stall is measured, never skipped)."""
        clock = self.cluster.clock
        while clock.now_ms() < until_ms:
            if self.round() == 0:
                if self.done():
                    return
                clock.advance(idle_step_ms)
                self.sweep_if_due()

    # -- the invariants --------------------------------------------------------------

    def runs(self) -> dict[str, list[Run]]:
        return {fn: self.cluster.runs(fn) for fn in OUTPUTS}

    def done(self) -> bool:
        runs = self.runs()
        expected = {FUNCTION_OF[e]: n for e, n in self.sent.items()} | {
            "child": self.sent["t/parent"]
        }
        return all(
            len(runs[fn]) >= n and all(r.status.is_terminal for r in runs[fn])
            for fn, n in expected.items()
        )

    def violations(self) -> list[str]:
        found: list[str] = []
        runs = self.runs()
        for event, n in self.sent.items():
            got = len(runs[FUNCTION_OF[event]])
            if got != n:
                found.append(f"1. {event}: {n} events, {got} runs")
        if len(runs["child"]) != self.sent["t/parent"]:
            found.append(f"1. {self.sent['t/parent']} invokes, {len(runs['child'])} child runs")
        finished = Counter(
            str(e.data.get("run_id"))
            for e in self.cluster.observer.store.events.list_events(
                name=lifecycle.FUNCTION_FINISHED, limit=10_000
            )
        )
        for fn, fn_runs in runs.items():
            for run in fn_runs:
                where = f"{fn} run {run.id}"
                if run.status is not RunStatus.COMPLETED or not OUTPUTS[fn](run):
                    found.append(f"2/3. {where}: {run.status.value}, output {run.output!r}")
                if run.status.is_terminal and finished[run.id] != 1:
                    found.append(f"4. {where}: {finished[run.id]} finish events")
                lost = self.ledger.lost_answers(run.id)
                for step, n in self.executions.of(run.id).items():
                    if n > 1 + lost:
                        found.append(f"5. {where}: step {step} ran {n}x, {lost} answers lost")
        return found

    def summary(self) -> str:
        return (
            f"faults injected {self.cluster.faults.injected}, crashes {dict(self.crashed_at)}"
            f", duplicate deliveries {self.duplicates}, failed records"
            f" {len(self.cluster.failed_records)}"
        )


@pytest.fixture
def cluster(stack: Stack, clock: VirtualClock) -> Iterator[tuple[Cluster, Executions]]:
    with serving(stack, clock, Faults()) as both:
        yield both


@pytest.mark.parametrize("seed", range(SEEDS))
def test_no_run_wait_or_finish_event_is_lost_under_faults(
    cluster: tuple[Cluster, Executions], seed: int
) -> None:
    driver, executions = cluster
    run = FaultRun(driver, executions, seed)
    run.start()
    run.drive(run.started_at + STALL_LIMIT_MS)
    stalled = not run.done()
    found = run.violations()
    if stalled:
        found.append(f"6. not done {STALL_LIMIT_MS // MIN} virtual minutes after the start")
    if found:  # go on, to tell a stall from a loss
        run.drive(run.started_at + GIVE_UP_MS, idle_step_ms=30_000)
        after = run.violations()
        elapsed = (driver.clock.now_ms() - run.started_at) // 1000
        found.append(f"after {elapsed} virtual s (sweeps included): {after or 'all fine'}")
    assert found == [], f"seed {seed}: {run.summary()}\n" + "\n".join(found)
