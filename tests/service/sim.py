"""A simulated world for the service: a model SDK app, a client, a worker, a clock.

The app runs two programs (immediate execution, one step per call)::

    parent: step "a" -> sleep "nap" -> waitForEvent "go" -> invoke child -> step "b"
    child:  step "c"

``World`` delivers due work items through the real ``Service`` (some twice), plays the
outside world (sends each parent's trigger event, retrying a failure with the same id
seed, and the "go" event a run waits for once the run is saved as waiting), and moves a virtual
clock. ``check_outcome`` states what must hold once the world is quiet.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from contract.conftest import BACKENDS
from wayline.engine.events import validate_event
from wayline.engine.ids import hash_step_id
from wayline.engine.lifecycle import FUNCTION_FINISHED
from wayline.engine.model import JSON, App, FunctionDef, RunStatus, Trigger, WorkItem, WorkKind
from wayline.engine.ports import Store
from wayline.engine.protocol import CallResponse, Op
from wayline.engine.service import Blocked, Service
from wayline.errors import StoreError

from .faults import Crash, FaultPlan, faulty
from .test_windows import Clock

LEASE_MS = 5_000
MAX_DELIVERIES = 3_000

PARENT = FunctionDef(
    id="app-parent",
    app_id="app",
    name="parent",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="shop/order"),),
    retries=3,
)
CHILD = FunctionDef(
    id="app-child",
    app_id="app",
    name="child",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="never/sent"),),
    retries=3,
)


class Entropy:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def entropy(self, n: int) -> bytes:
        return self._rng.randbytes(n)


@dataclass
class ModelApp:
    """The app: a model of an SDK running the two programs, counting step executions."""

    executions: dict[tuple[str, str], int] = field(default_factory=dict)

    def call(self, body: dict[str, JSON], fn_id: str) -> CallResponse:
        memos: dict[str, JSON] = body["steps"]
        run_id = body["ctx"]["run_id"]
        order = str(body["event"]["data"].get("order", ""))
        if fn_id == CHILD.id:
            c = self._step(memos, run_id, "c", f"child:{order}")
            return c if isinstance(c, CallResponse) else CallResponse(status=200, body=c)
        a = self._step(memos, run_id, "a", f"a:{order}")
        if isinstance(a, CallResponse):
            return a
        if hash_step_id("nap") not in memos:
            return _op(Op("Sleep", hash_step_id("nap"), "nap", opts={"duration": "10s"}))
        go_id = hash_step_id("go")
        if go_id not in memos:
            opts: dict[str, JSON] = {
                "event": "shop/go",
                "timeout": "1d",
                "if": "event.data.order == async.data.order",
            }
            return _op(Op("WaitForEvent", go_id, "go", opts=opts))
        inv_id = hash_step_id("inv")
        if inv_id not in memos:
            opts = {
                "function_id": CHILD.id,
                "payload": {"data": {"order": order}},
                "timeout": "1d",
            }
            return _op(Op("InvokeFunction", inv_id, "inv", opts=opts))
        b = self._step(memos, run_id, "b", f"b:{order}")
        if isinstance(b, CallResponse):
            return b
        go, inv = memos[go_id], memos[inv_id]
        matched = go["data"]["order"] if isinstance(go, dict) else None
        child = inv.get("data") if isinstance(inv, dict) else None
        return CallResponse(status=200, body=[a, matched, child, b])

    def _step(self, memos: dict[str, JSON], run_id: str, name: str, value: str) -> JSON:
        memo = memos.get(hash_step_id(name))
        if memo is not None:
            return memo["data"]
        self.executions[(run_id, name)] = self.executions.get((run_id, name), 0) + 1
        return _op(Op("StepRun", hash_step_id(name), name, data=value, has_data=True))


def _op(op: Op) -> CallResponse:
    return CallResponse(status=206, ops=(op,))


@dataclass
class World:
    raw: Store
    service: Service
    clock: Clock
    plan: FaultPlan
    rng: random.Random
    app: ModelApp = field(default_factory=ModelApp)
    memos_seen: dict[tuple[str, str], JSON] = field(default_factory=dict)
    orders: tuple[str, ...] = ("o1", "o2", "o3")
    orders_sent: set[str] = field(default_factory=set)
    go_sent: set[str] = field(default_factory=set)

    def deliver(self, item: WorkItem) -> bool:
        """One delivery of ``item``; True if it was handled (the worker acks it)."""
        try:
            if item.kind is not WorkKind.CALL:
                self.service.fire(item)
                return True
            call = self.service.prepare_call(item)
            if call is None:
                return True
            if isinstance(call, Blocked):
                return False
            started = self.clock.now
            response = self.app.call(call.body, call.fn.id)
            self.service.complete_call(item, response, started_at=started)
            self.service.release_call(call, item)
            return True
        except (Crash, StoreError):
            return False  # the lease expires and the queue hands the item out again

    def send(self, name: str, data: dict[str, JSON], key: str) -> None:
        """A client sending an event, retrying a failure with the same id seed."""
        entropy = hashlib.sha256(key.encode()).digest()[:10]
        seed = f"{self.clock.now},{base64.b64encode(entropy).decode()}"
        for _ in range(20):
            try:
                self.service.send_events([validate_event({"name": name, "data": data})], seed=seed)
                return
            except (Crash, StoreError):
                continue
        pytest.fail(f"sending {name} kept failing")

    def step(self) -> bool:
        """Deliver what is due (some twice), or move time on; False when all is quiet."""
        self._outside_world()
        items = self.raw.queue.claim(now=self.clock.now, lease_ms=LEASE_MS, limit=5)
        for item in items:
            if self.deliver(item):
                if self.rng.random() < 0.1:
                    self.deliver(item)  # a duplicate delivery
                self.raw.queue.ack(item.id)
            self._check_memos()
        if items or self._outside_world(force=True):
            return True
        due = self.raw.queue.next_due()
        if due is None:
            return False
        self.clock.now = max(self.clock.now + 1, due)
        return True

    def _outside_world(self, *, force: bool = False) -> bool:
        """Send trigger events at random times, and the event each waiting run waits for
        soon after its wait is stored; ``force`` sends whatever is still owed before time
        jumps ahead. True if anything was sent."""
        sent = False
        for order in self.orders:
            if order not in self.orders_sent and (force or self.rng.random() < 0.3):
                self.orders_sent.add(order)
                self.send("shop/order", {"order": order}, key=f"order-{order}")
                sent = True
        # A run is waiting once its save says so (a user sees it in the dashboard then).
        for run in self.raw.runs.list_runs(function_id=PARENT.id):
            waiting = run.events[0]["data"]["order"] if run.waiting else None
            if waiting and waiting not in self.go_sent and (force or self.rng.random() < 0.5):
                self.go_sent.add(waiting)
                self.send("shop/go", {"order": waiting}, key=f"go-{waiting}")
                sent = True
        return sent

    def _check_memos(self) -> None:
        for run in self.raw.runs.list_runs(limit=100):
            for step_id, memo in run.memos.items():
                seen = self.memos_seen.setdefault((run.id, step_id), memo)
                assert seen == memo, f"run {run.id}: memo {step_id} changed"
            if not run.status.is_terminal:
                assert run.pending or run.waiting or run.outbox, f"run {run.id} stalled"


@contextmanager
def world_on(backend: str, tmp: Path, plan: FaultPlan, seed: int = 0) -> Iterator[World]:
    """A world on a fresh ``backend`` store whose every port call is subject to ``plan``
    (the app's sync excepted)."""
    opened = BACKENDS[backend](tmp)
    raw = opened.open()
    clock = Clock()
    service = Service(faulty(raw, plan), clock, Entropy(random.Random(seed)))
    enabled, plan.enabled = plan.enabled, False
    service.sync_app(App(id="app", url=PARENT.url), [PARENT, CHILD])
    plan.enabled = enabled
    try:
        yield World(raw, service, clock, plan, random.Random(seed))
    finally:
        opened.close()


def run_until_quiet(world: World) -> None:
    for _ in range(MAX_DELIVERIES):
        if not world.step() and len(world.orders_sent) == len(world.orders):
            return


def simulate(backend: str, seed: int, tmp: Path) -> None:
    plan = FaultPlan(random.Random(seed * 7919), rate=0.05, budget=12)
    with world_on(backend, tmp, plan, seed) as world:
        run_until_quiet(world)
        check_outcome(world, f"seed {seed} ({backend}); faults: {plan.injected}")


def check_outcome(world: World, where: str) -> None:
    runs = world.raw.runs.list_runs(limit=100)
    parents = [r for r in runs if r.function_id == PARENT.id]
    by_order = {r.events[0]["data"]["order"]: r for r in parents}
    assert len(parents) == len(world.orders) == len(by_order), f"{where}: parents {parents}"
    finished = [e for e in world.raw.events.list_events(name=FUNCTION_FINISHED, limit=1000)]
    for run in runs:
        assert run.status is RunStatus.COMPLETED, f"{where}: run {run.id} is {run.status}"
        assert not run.outbox, f"{where}: run {run.id} has an unapplied outbox"
        count = sum(1 for e in finished if e.data.get("run_id") == run.id)
        assert count == 1, f"{where}: run {run.id} published {count} finish events"
    for order, run in by_order.items():
        expected = [f"a:{order}", order, f"child:{order}", f"b:{order}"]
        assert run.output == expected, f"{where}: run {run.id} output {run.output}"
