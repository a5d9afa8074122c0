"""The pure replay planner: table tests of every rule, and a property over random programs.

The property plays both sides: a tiny model of the server (discovery loop, planned steps,
force-step-plan, race/wait coalescing) drives the planner through a random program of
steps, repeated ids and (nested) parallel groups until it completes. Then the program is
replayed against its own memos: every step must replay, in program order, under the hashed
ids the protocol defines, and two replays must plan identically.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Any, TypeAlias

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.sdk import planner
from wayline.sdk.planner import (
    Execute,
    Intent,
    Memo,
    Op,
    Replay,
    Report,
    Scope,
    Skip,
    StepRef,
)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


RUN = Intent("a", planner.STEP_RUN)
SLEEP = Intent("nap", planner.SLEEP, name="2030-01-01T00:00:00.000Z")
WAIT = Intent("w", planner.WAIT_FOR_EVENT, name="x/y", opts={"if": None, "timeout": "1h"})
GROUP = Scope(parallel=True)
RACE = Scope(parallel=True, race=True)


def plan_one(intent: Intent, scope: Scope = planner.SEQUENTIAL, **start: Any) -> planner.Plan:
    state = planner.start(start.pop("memos", {}), **start)
    return planner.plan(state, intent, scope)


# ----------------------------------------------------------------------------- table tests


@pytest.mark.parametrize(
    ("intent", "scope", "start", "expected"),
    [
        # a new step.run executes inline; anything else is reported as its own opcode
        (RUN, planner.SEQUENTIAL, {}, Execute(StepRef(sha1("a"), "a"))),
        (
            SLEEP,
            planner.SEQUENTIAL,
            {},
            Report(Op("Sleep", StepRef(sha1("nap"), "nap"), SLEEP.name or "")),
        ),
        (
            WAIT,
            planner.SEQUENTIAL,
            {},
            Report(Op("WaitForEvent", StepRef(sha1("w"), "w"), "x/y", WAIT.opts)),
        ),
        # immediate execution disabled (after a parallel batch): step.run is planned
        (
            RUN,
            planner.SEQUENTIAL,
            {"disable_immediate": True},
            Report(Op("StepPlanned", StepRef(sha1("a"), "a"), "a")),
        ),
        (
            SLEEP,
            planner.SEQUENTIAL,
            {"disable_immediate": True},
            Report(Op("Sleep", StepRef(sha1("nap"), "nap"), SLEEP.name or "")),
        ),
        # in a group every new step is reported; step.run as StepPlanned
        (RUN, GROUP, {}, Report(Op("StepPlanned", StepRef(sha1("a"), "a"), "a"))),
        (
            RUN,
            RACE,
            {},
            Report(Op("StepPlanned", StepRef(sha1("a"), "a"), "a", {"parallelMode": "race"})),
        ),
        (
            WAIT,
            RACE,
            {},
            Report(
                Op(
                    "WaitForEvent",
                    StepRef(sha1("w"), "w"),
                    "x/y",
                    {"if": None, "timeout": "1h", "parallelMode": "race"},
                )
            ),
        ),
        # targeting: the target runs (even in a group), anything else is skipped
        (RUN, GROUP, {"target": sha1("a")}, Execute(StepRef(sha1("a"), "a"))),
        (RUN, RACE, {"target": sha1("a")}, Execute(StepRef(sha1("a"), "a"), race=True)),
        (RUN, planner.SEQUENTIAL, {"target": sha1("b")}, Skip(StepRef(sha1("a"), "a"))),
        (SLEEP, GROUP, {"target": sha1("b")}, Skip(StepRef(sha1("nap"), "nap"))),
        (
            RUN,
            planner.SEQUENTIAL,
            {"target": sha1("a"), "disable_immediate": True},
            Execute(StepRef(sha1("a"), "a")),
        ),
        # a memo always wins
        (
            RUN,
            GROUP,
            {"memos": {sha1("a"): Memo(data=7)}},
            Replay(StepRef(sha1("a"), "a"), Memo(data=7)),
        ),
        (
            RUN,
            planner.SEQUENTIAL,
            {"memos": {sha1("a"): Memo(data=1)}, "target": sha1("z")},
            Replay(StepRef(sha1("a"), "a"), Memo(data=1)),
        ),
    ],
)
def test_plan_rules(
    intent: Intent, scope: Scope, start: dict[str, Any], expected: planner.Plan
) -> None:
    assert plan_one(intent, scope, **start) == expected


def test_repeated_ids_get_numbered_suffixes() -> None:
    state = planner.start({})
    refs = []
    for _ in range(3):
        ref = planner.number(state, "loop")
        refs.append(ref)
    other = planner.number(state, "other")
    assert refs == [
        StepRef(sha1("loop"), "loop", None),
        StepRef(sha1("loop:1"), "loop", 1),
        StepRef(sha1("loop:2"), "loop", 2),
    ]
    assert other == StepRef(sha1("other"), "other", None)
    # the protocol's own example (research note §1.8)
    assert sha1("my-step-id") == "e7d8a2f140845095749d60246ff1110c9d01d76a"


def test_replaying_until_a_new_step_is_reached() -> None:
    memos = {sha1("a"): Memo(data=1), sha1("b"): Memo(data=2)}
    state = planner.start(memos)
    assert state.replaying
    planner.plan(state, Intent("a", planner.STEP_RUN))
    assert state.replaying
    planner.plan(state, Intent("new", planner.STEP_RUN))
    assert not state.replaying  # code after a new step runs for the first time


def test_unmet_target_is_non_determinism() -> None:
    state = planner.start({}, target=sha1("gone"))
    assert planner.unmet_target(state) is not None
    decided = planner.plan(state, Intent("gone", planner.STEP_RUN))
    assert isinstance(decided, Execute)
    assert planner.unmet_target(state) is None
    assert planner.unmet_target(planner.start({})) is None


@pytest.mark.parametrize(
    ("raw", "memo"),
    [
        ({"data": {"x": 1}}, Memo(data={"x": 1})),
        ({"data": None}, Memo(data=None)),
        ({}, Memo(data=None)),
        (None, Memo(data=None)),  # a sleep
        ({"error": {"name": "E", "message": "m"}}, Memo(error={"name": "E", "message": "m"})),
        ({"data": 1, "error": None}, Memo(data=1)),
        # anything else is itself the data: a matched event, or a value with extra keys
        ({"name": "x/y", "data": {}, "id": "1"}, Memo(data={"name": "x/y", "data": {}, "id": "1"})),
        ({"data": 1, "other": 2}, Memo(data={"data": 1, "other": 2})),
        ({"error": "text"}, Memo(data={"error": "text"})),
        ([1, 2], Memo(data=[1, 2])),
    ],
)
def test_parse_memo(raw: Any, memo: Memo) -> None:
    assert planner.parse_memo(raw) == memo


# ----------------------------------------------------------------------------- property

Step: TypeAlias = tuple[str, str]  # (user id, op)


@dataclass(frozen=True)
class Group:
    branches: tuple[tuple[Any, ...], ...]
    race: bool


Item: TypeAlias = Step | Group

step_ids = st.sampled_from(["a", "b", "c"])
steps = st.tuples(step_ids, st.sampled_from([planner.STEP_RUN, planner.STEP_RUN, planner.SLEEP]))


def prefixed(item: Item, prefix: str) -> Item:
    if isinstance(item, Group):
        return Group(tuple(tuple(prefixed(i, prefix) for i in b) for b in item.branches), item.race)
    return (prefix + item[0], item[1])


def make_group(branches: list[tuple[Item, ...]], race: bool) -> Group:
    # Step ids are numbered in the order a request reaches them, and a branch stops at its
    # first new step, so an id shared by two branches of one group would be numbered
    # differently as the branches progress (in the official SDK too). Each branch gets its
    # own namespace; repeats within a branch and at top level stay.
    return Group(
        tuple(tuple(prefixed(i, f"{n}/") for i in b) for n, b in enumerate(branches)), race
    )


def items(depth: int) -> st.SearchStrategy[Item]:
    if depth == 0:
        return steps
    branch = st.lists(items(depth - 1), min_size=1, max_size=3).map(tuple)
    group = st.builds(make_group, st.lists(branch, min_size=1, max_size=3), st.booleans())
    return st.one_of(steps, steps, group)


programs = st.lists(items(2), min_size=1, max_size=6)


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, ops: list[Op]) -> None:
        self.ops = ops


class _Skipped(Exception):  # noqa: N818 - control flow, not an error
    pass


def request(
    program: list[Item], memos: dict[str, Memo], target: str | None, disable: bool
) -> tuple[list[planner.Plan], list[Op] | None]:
    """One request: the plans made, and the ops reported (None: the function returned).

    Mirrors the SDK shells: an executed step ends the request with its StepRun; a group
    collects its branches' ops and skips, and reports them together.
    """
    state = planner.start(memos, target=target, disable_immediate=disable)
    plans: list[planner.Plan] = []

    def walk(body: tuple[Any, ...] | list[Item], races: tuple[bool, ...]) -> None:
        for item in body:
            if isinstance(item, Group):
                ops: list[Op] = []
                skipped = False
                for branch in item.branches:
                    try:
                        walk(branch, (*races, item.race))
                    except _Stop as stop:
                        ops += stop.ops
                    except _Skipped:
                        skipped = True
                if ops:
                    raise _Stop(ops)
                if skipped:
                    raise _Skipped
                continue
            user_id, op = item
            scope = Scope(parallel=bool(races), race=any(races))
            decided = planner.plan(state, Intent(user_id, op), scope)
            plans.append(decided)
            if isinstance(decided, Execute):
                opts = planner.race_opts(None, decided.race)
                raise _Stop([Op(planner.STEP_RUN, decided.step, user_id, opts, data=user_id)])
            if isinstance(decided, Report):
                raise _Stop([decided.op])
            if isinstance(decided, Skip):
                raise _Skipped

    try:
        walk(program, ())
    except _Stop as stop:
        return plans, stop.ops
    except _Skipped:
        raise AssertionError("a targeted request skipped outside any group") from None
    assert planner.unmet_target(state) is None
    return plans, None


def run_to_completion(program: list[Item]) -> tuple[dict[str, Memo], int]:
    """A model of the server's loop; returns the memos and the step bodies executed."""
    memos: dict[str, Memo] = {}
    queue: deque[str | None] = deque([None])
    planned: set[str] = set()
    disable = race = False
    executed = 0
    for _ in range(500):
        if not queue:
            break
        target = queue.popleft()
        _, ops = request(program, memos, target, disable)
        if ops is None:
            return memos, executed
        done = False
        for op in ops:
            if op.op == planner.STEP_PLANNED:
                if op.step.hashed not in planned:
                    planned.add(op.step.hashed)
                    queue.append(op.step.hashed)
                race = race or bool(op.opts and op.opts.get("parallelMode") == "race")
                continue
            assert op.step.hashed not in memos, f"{op.step} ran twice"
            executed += op.op == planner.STEP_RUN
            memos[op.step.hashed] = Memo(data=op.data)
            planned.discard(op.step.hashed)
            done = True
        disable = disable or len(ops) > 1
        if done and (not planned or race) and None not in queue:
            if not planned:
                disable = race = False
            queue.append(None)
    raise AssertionError("the program did not complete")


def flatten(body: tuple[Any, ...] | list[Item]) -> list[Step]:
    out: list[Step] = []
    for item in body:
        if isinstance(item, Group):
            for branch in item.branches:
                out += flatten(branch)
        else:
            out.append(item)
    return out


@settings(max_examples=300, deadline=None)
@given(programs)
def test_programs_replay_to_identical_plans_from_their_own_memos(program: list[Item]) -> None:
    memos, executed = run_to_completion(program)
    flat = flatten(program)

    # every step.run body ran exactly once
    assert executed == sum(op == planner.STEP_RUN for _, op in flat)

    # memo keys are the protocol's hashed ids: sha1(id), then sha1("id:1"), ...
    seen: dict[str, int] = {}
    expected_ids = []
    for user_id, _ in flat:
        n = seen.get(user_id, 0)
        seen[user_id] = n + 1
        expected_ids.append(sha1(user_id if n == 0 else f"{user_id}:{n}"))
    assert set(memos) == set(expected_ids)

    # a full replay plans Replay for every step, in program order, deterministically
    first, ops = request(program, memos, None, False)
    second, _ = request(program, memos, None, False)
    assert ops is None
    assert first == second
    assert all(isinstance(p, Replay) for p in first)
    assert [p.step.hashed for p in first if isinstance(p, Replay)] == expected_ids
