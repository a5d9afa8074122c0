"""``evolve`` is ``dataclasses.replace`` for the engine's plain frozen records."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wayline.engine.decision import Decision
from wayline.engine.evolve import evolve
from wayline.engine.model import Run, RunStatus, WorkItem, WorkKind

RUN = Run(
    id="r1",
    function_id="f",
    app_id="a",
    status=RunStatus.RUNNING,
    events=({"name": "go"},),
    event_ids=("e1",),
    created_at=1,
    memos={"s1": {"data": 1}},
    stack=("s1",),
)

changes = st.fixed_dictionaries(
    {},
    optional={
        "version": st.integers(0, 10**6),
        "status": st.sampled_from(RunStatus),
        "stack": st.lists(st.text(max_size=3), max_size=3).map(tuple),
        "seq": st.integers(),
        "output": st.none() | st.integers() | st.text(),
        "race": st.booleans(),
        "cancel_reason": st.none() | st.text(),
    },
)


@given(changes)
def test_a_run_evolves_to_what_replace_gives(change: dict[str, Any]) -> None:
    evolved = evolve(RUN, **change)
    assert evolved == dataclasses.replace(RUN, **change)
    assert type(evolved) is Run
    assert evolved is not RUN
    for field in dataclasses.fields(Run):  # unchanged fields are the same objects
        if field.name not in change:
            assert getattr(evolved, field.name) is getattr(RUN, field.name)


def test_the_original_is_left_as_it_was() -> None:
    before = dataclasses.replace(RUN)
    evolve(RUN, version=7, memos={})
    assert before == RUN


def test_other_records_evolve_too() -> None:
    item = WorkItem(id="q", run_id="r1", kind=WorkKind.CALL, at=5, attempt=2)
    assert evolve(item, attempt=0) == dataclasses.replace(item, attempt=0)
    decision = Decision(run=RUN, changed=False)
    assert evolve(decision, run=evolve(RUN, seq=3)) == dataclasses.replace(
        decision, run=dataclasses.replace(RUN, seq=3)
    )


def test_a_field_the_record_lacks_is_refused() -> None:
    with pytest.raises(TypeError, match="'versoin'"):
        evolve(RUN, versoin=2)


@dataclasses.dataclass(frozen=True)
class Checked:
    size: int

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("size")


def test_a_record_that_checks_itself_is_refused() -> None:
    """``replace`` would run its ``__post_init__``; a plain copy would skip the check."""
    with pytest.raises(TypeError, match="Checked"):
        evolve(Checked(1), size=-1)
