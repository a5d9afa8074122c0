"""Replay planning: what one step call does in one request. Pure: no I/O, no clock; the one
request's record (``PlannerState``) is handed in and updated in place (a copy per step was
~4 % of an app's CPU, and copying the step counts grew with the steps).

Every request from the server replays the function from the top. Each step the code reaches
is planned against the request's facts (memoized results, the targeted step, the
``disable_immediate_execution`` flag) and the scope it is reached in (inside a parallel
group or not). The rules are exactly the official Python SDK's (``execution_lib/v0.py``):

==============================================  ============================================
situation                                       plan
==============================================  ============================================
a memo exists for the step's hashed id          ``Replay`` it (data, or raise ``StepError``)
a step is targeted and this is not it           ``Skip`` (a parallel branch ignores it; outside
                                                a group it means the code changed)
this is the targeted step                       ``Execute`` a ``step.run``; report anything else
inside a parallel group                         ``Report`` it (``step.run`` as ``StepPlanned``)
``step.run`` with immediate execution disabled  ``Report`` it as ``StepPlanned``
any other new ``step.run``                      ``Execute`` its body inline
any other new step (sleep, wait, invoke)        ``Report`` its opcode
==============================================  ============================================

Step ids are hashed as the wire protocol wants: ``sha1(id)`` the first time an id is used in
a request, then ``sha1("id:1")``, ``sha1("id:2")`` ... so a step in a loop gets one memo per
iteration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from wayline.engine.ids import hash_step_id

STEP_RUN = "StepRun"
STEP_PLANNED = "StepPlanned"
STEP_ERROR = "StepError"
STEP_FAILED = "StepFailed"
SLEEP = "Sleep"
WAIT_FOR_EVENT = "WaitForEvent"
INVOKE = "InvokeFunction"
WAIT_FOR_SIGNAL = "WaitForSignal"


@dataclass(frozen=True, slots=True)
class Intent:
    """What user code asked for: a step id, its opcode and the opcode's ``name`` / ``opts``."""

    user_id: str
    op: str
    name: str | None = None
    opts: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StepRef:
    """A step as this request numbers it: hashed id, user-facing id, repeat index."""

    hashed: str
    user_id: str
    index: int | None = None


@dataclass(frozen=True, slots=True)
class Memo:
    """A memoized result: ``data`` (any JSON, ``None`` for a sleep) or an ``error`` object."""

    data: Any = None
    error: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Op:
    """One opcode for a 206 response."""

    op: str
    step: StepRef
    name: str
    opts: Mapping[str, Any] | None = None
    data: Any = None
    error: Mapping[str, Any] | None = None
    retriable: bool = True


@dataclass(frozen=True, slots=True)
class Replay:
    step: StepRef
    memo: Memo


@dataclass(frozen=True, slots=True)
class Execute:
    step: StepRef
    race: bool = False
    """Reached inside a racing group: the op reporting its result says so, as all ops do."""


@dataclass(frozen=True, slots=True)
class Report:
    op: Op


@dataclass(frozen=True, slots=True)
class Skip:
    step: StepRef


Plan: TypeAlias = Replay | Execute | Report | Skip


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a step is reached: inside ``group.parallel`` (and whether any enclosing group
    races), or in sequential code."""

    parallel: bool = False
    race: bool = False


SEQUENTIAL = Scope()


@dataclass(slots=True)
class PlannerState:
    """The facts of one request plus what has been planned in it so far (updated by ``plan``)."""

    memos: Mapping[str, Memo]
    target: str | None = None
    disable_immediate_execution: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    consumed: int = 0
    target_found: bool = False
    reached_new: bool = False

    @property
    def replaying(self) -> bool:
        """True while the code is only re-walking steps that already ran in earlier requests."""
        return not self.reached_new and self.consumed < len(self.memos)


def start(
    memos: Mapping[str, Memo], *, target: str | None = None, disable_immediate: bool = False
) -> PlannerState:
    """The state for a new request. ``target`` is the hashed step id of ``?stepId=``."""
    return PlannerState(memos=memos, target=target, disable_immediate_execution=disable_immediate)


def number(state: PlannerState, user_id: str) -> StepRef:
    """Give the next occurrence of ``user_id`` in this request its hashed id."""
    count = state.counts.get(user_id, 0)
    state.counts[user_id] = count + 1
    if count == 0:
        return StepRef(hash_step_id(user_id), user_id)
    return StepRef(hash_step_id(f"{user_id}:{count}"), user_id, count)


def plan(state: PlannerState, intent: Intent, scope: Scope = SEQUENTIAL) -> Plan:
    """Decide what the step ``intent`` does in this request (see the module table), and
    record it in ``state``."""
    ref = number(state, intent.user_id)
    memo = state.memos.get(ref.hashed)
    if memo is not None:
        state.consumed += 1
        return Replay(ref, memo)
    if state.target is not None:
        if ref.hashed != state.target:
            return Skip(ref)
        state.target_found = state.reached_new = True
        if intent.op == STEP_RUN:
            return Execute(ref, race=scope.race)
        return Report(_op(intent, ref, intent.op, scope))
    state.reached_new = True
    if scope.parallel:
        op = STEP_PLANNED if intent.op == STEP_RUN else intent.op
        return Report(_op(intent, ref, op, scope))
    if intent.op == STEP_RUN:
        if state.disable_immediate_execution:
            return Report(_op(intent, ref, STEP_PLANNED, scope))
        return Execute(ref)
    return Report(_op(intent, ref, intent.op, scope))


def unmet_target(state: PlannerState) -> str | None:
    """At the end of a request: why it is non-deterministic, or None if it is not.

    A request that targets a step must reach it; if the function returned or stopped
    without doing so, the steps before it no longer lead there.
    """
    if state.target is not None and not state.target_found:
        return (
            f"the server asked to run step {state.target} but the function never reached it: "
            "its steps changed since the run started"
        )
    return None


def _op(intent: Intent, ref: StepRef, op: str, scope: Scope) -> Op:
    return Op(
        op=op, step=ref, name=intent.name or intent.user_id, opts=race_opts(intent.opts, scope.race)
    )


def race_opts(opts: Mapping[str, Any] | None, race: bool) -> Mapping[str, Any] | None:
    """Opts marked for a racing group: the server then rediscovers after each of its steps."""
    return {**(opts or {}), "parallelMode": "race"} if race else opts


def parse_memos(raw: Mapping[str, Any]) -> dict[str, Memo]:
    """Read the request's ``steps`` leniently, as the official SDK does.

    ``{"data": x}`` and ``{"error": {...}}`` (and nothing else) are structured results;
    any other value (a matched event, ``null`` for a sleep) is itself the data.
    """
    return {str(key): parse_memo(value) for key, value in raw.items()}


def parse_memo(value: Any) -> Memo:
    if isinstance(value, Mapping) and set(value) <= {"data", "error"}:
        error = value.get("error")
        if isinstance(error, Mapping):
            return Memo(error=dict(error))
        if error is None:
            return Memo(data=value.get("data"))
    return Memo(data=value)
