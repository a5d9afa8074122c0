"""Simulation: random function shapes x random schedules, against the pure state machine.

A small model of the official Python SDK's replay algorithm (``execution_lib/v0.py``:
memo lookup, planning inside parallel groups, ``disable_immediate_execution``, step
targeting with skip) plays the app. Hypothesis picks the program and every scheduling
choice: which pending work item's call starts, which in-flight call returns (so
discovery calls can return stale), when a sleep wakes, and duplicate deliveries of items
already applied. Invariants checked on every schedule:

* the run completes, with the output the program computes;
* every step body ran exactly once (no double execution, none lost);
* a memo, once written, never changes;
* a live run always has something pending (a work item or a wait) - it never stalls.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wayline.engine import lifecycle, machine
from wayline.engine.decision import Decision
from wayline.engine.ids import hash_step_id
from wayline.engine.machine import Env
from wayline.engine.model import JSON, FunctionDef, Run, RunStatus, Trigger, WorkItem, WorkKind
from wayline.engine.protocol import CallResponse, Op, build_request

FN = FunctionDef(
    id="app-sim",
    app_id="app",
    name="sim",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="e"),),
    retries=0,
)
EVENT: dict[str, JSON] = {"name": "e", "data": {}, "user": {}, "id": "ev", "ts": 1}


@dataclass(frozen=True)
class Block:
    """``step`` / ``sleep`` named ``name``, or a parallel ``group`` of sequential lanes."""

    kind: str
    name: str = ""
    mode: str = "wait"
    lanes: tuple[tuple[str, ...], ...] = ()


class Interrupt(BaseException):
    def __init__(self, ops: list[Op]) -> None:
        self.ops = ops


class Skip(BaseException):
    pass


@dataclass
class FakeSdk:
    """The py SDK's report_step decisions for one call, over a fixed program."""

    program: list[Block]
    executions: dict[str, int] = field(default_factory=dict)

    def call(self, body: dict[str, JSON], target: str | None) -> CallResponse:
        steps, ctx = body["steps"], body["ctx"]
        assert isinstance(steps, dict) and isinstance(ctx, dict)
        memos = dict(steps)
        self._memos, self._target = memos, target
        self._no_inline = bool(ctx["disable_immediate_execution"])
        self._in_parallel = False
        try:
            outputs = [self._block(b) for b in self.program]
        except Interrupt as interrupt:
            return CallResponse(status=206, ops=tuple(interrupt.ops))
        except Skip:
            return CallResponse(status=500, body={"code": "step_unexpected"}, no_retry=True)
        return CallResponse(status=200, body=[o for o in outputs if o is not None])

    def _block(self, block: Block) -> JSON:
        if block.kind == "group":
            return self._group(block.mode, block.lanes)
        return self._report(block.kind, block.name)

    def _group(self, mode: str, lanes: tuple[tuple[str, ...], ...]) -> JSON:
        self._in_parallel, ops, outputs = True, [], []
        try:
            for lane in lanes:
                try:
                    outputs.append([self._report("step", name) for name in lane])
                except Interrupt as interrupt:
                    ops.extend(interrupt.ops)
                except Skip:
                    pass
        finally:
            self._in_parallel = False
        if ops:
            opts = {"parallelMode": "race"} if mode == "race" else None
            raise Interrupt([replace(o, opts=opts) for o in ops])
        return outputs

    def _report(self, kind: str, name: str) -> JSON:
        step_id = hash_step_id(name)
        if step_id in self._memos:
            memo = self._memos[step_id]
            return memo["data"] if isinstance(memo, dict) else memo
        if self._target is not None and self._target != step_id:
            raise Skip
        if kind == "sleep":
            raise Interrupt([Op("Sleep", step_id, "1s", name)])
        if self._target is None and (self._in_parallel or self._no_inline):
            raise Interrupt([Op("StepPlanned", step_id, name, name)])
        self.executions[name] = self.executions.get(name, 0) + 1
        raise Interrupt([Op("StepRun", step_id, name, name, data=f"out:{name}", has_data=True)])


@st.composite
def programs(draw: st.DrawFn) -> list[Block]:
    counter = iter(range(1000))
    blocks: list[Block] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["step", "step", "sleep", "group"]))
        if kind == "group":
            lanes = tuple(
                tuple(f"g{next(counter)}" for _ in range(draw(st.integers(1, 3))))
                for _ in range(draw(st.integers(2, 3)))
            )
            mode = draw(st.sampled_from(["wait", "race"]))
            blocks.append(Block("group", mode=mode, lanes=lanes))
        else:
            blocks.append(Block(kind, f"{kind[0]}{next(counter)}"))
    return blocks


def expected_output(program: list[Block]) -> list[JSON]:
    out: list[JSON] = []
    for block in program:
        if block.kind == "step":
            out.append(f"out:{block.name}")
        elif block.kind == "group":
            out.append([[f"out:{n}" for n in lane] for lane in block.lanes])
    return out


def step_names(program: list[Block]) -> set[str]:
    names = {b.name for b in program if b.kind == "step"}
    for block in program:
        names |= {n for lane in block.lanes for n in lane}
    return names


@dataclass
class Sim:
    sdk: FakeSdk
    run: Run
    now: int = 1_000
    in_flight: list[tuple[WorkItem, CallResponse]] = field(default_factory=list)
    applied: list[WorkItem] = field(default_factory=list)
    memos_seen: dict[str, JSON] = field(default_factory=dict)

    def env(self) -> Env:
        return Env(now=self.now, fn=FN)

    def apply(self, decision: Decision) -> None:
        if not decision.changed:
            return
        for step_id, memo in self.memos_seen.items():
            assert decision.run.memos[step_id] == memo, "a memo changed"
        self.memos_seen = dict(decision.run.memos)
        self.run = decision.run
        if not self.run.status.is_terminal:
            assert self.run.pending or self.run.waiting, "live run with nothing pending"

    def start_call(self, item: WorkItem) -> None:
        body = build_request(
            self.run, FN, item, disable_immediate_execution=self.run.force_step_plan
        )
        self.in_flight.append((item, self.sdk.call(body, item.step_id)))

    def deliver(self, item: WorkItem, resp: CallResponse | None) -> None:
        if resp is None:
            self.apply(machine.apply_sleep_elapsed(self.run, item, self.env()))
        else:
            self.apply(machine.apply_call(self.run, item, resp, self.env(), started_at=self.now))
        self.applied.append(item)


def step(sim: Sim, data: st.DataObject) -> None:
    startable = [
        i
        for i in sim.run.pending.values()
        if i.kind is WorkKind.CALL and all(i.id != f.id for f, _ in sim.in_flight)
    ]
    sleeping = [i for i in sim.run.pending.values() if i.kind is WorkKind.SLEEP]
    choices = (
        ["start"] * bool(startable)
        + ["finish"] * bool(sim.in_flight)
        + ["wake"] * bool(sleeping)
        + ["duplicate"] * bool(sim.applied)
    )
    action = data.draw(st.sampled_from(choices))
    sim.now += 1
    if action == "start":
        sim.start_call(data.draw(st.sampled_from(startable)))
    elif action == "finish":
        item, resp = sim.in_flight.pop(data.draw(st.integers(0, len(sim.in_flight) - 1)))
        sim.deliver(item, resp)
    elif action == "wake":
        sim.now = max(sim.now, max(i.at for i in sleeping))
        sim.deliver(data.draw(st.sampled_from(sleeping)), None)
    else:
        item = data.draw(st.sampled_from(sim.applied))
        before = sim.run
        redelivered = CallResponse(status=206, ops=()) if item.kind is WorkKind.CALL else None
        sim.deliver(item, redelivered)
        assert sim.run is before, "a duplicate delivery changed the run"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs(), data=st.data())
def test_any_schedule_completes_every_step_exactly_once(
    program: list[Block], data: st.DataObject
) -> None:
    decision = lifecycle.start_run(run_id="sim", fn=FN, events=[EVENT], event_ids=["ev"], now=1_000)
    sim = Sim(sdk=FakeSdk(program), run=decision.run)
    for _ in range(400):
        if sim.run.status.is_terminal:
            break
        step(sim, data)
    assert sim.run.status is RunStatus.COMPLETED, (sim.run.status, sim.run.output)
    assert sim.run.output == expected_output(program)
    assert sim.sdk.executions == dict.fromkeys(step_names(program), 1)
