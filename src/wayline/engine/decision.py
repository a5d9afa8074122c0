"""What a state-machine step decides: the new run plus the side effects to perform.

The service performs them in a fixed order after the conditional save of ``run``:
enqueue work items, store waits, drop waits, publish events. A crash between the save and
those effects is repaired from the saved run (its ``pending`` and ``waiting`` maps are
the source of truth), which is why the run is always written first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .model import JSON, FunctionDef, Run, Wait, WorkItem, WorkKind


@dataclass(frozen=True, slots=True)
class Env:
    """Everything a decision may depend on besides the run: injected, never read."""

    now: int
    fn: FunctionDef
    jitter_ms: int = 0
    retry_interval_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    run: Run
    enqueue: tuple[WorkItem, ...] = ()
    waits: tuple[Wait, ...] = ()
    drop_waits: tuple[str, ...] = ()
    publish: tuple[dict[str, JSON], ...] = ()
    changed: bool = True

    @classmethod
    def unchanged(cls, run: Run) -> Decision:
        return cls(run=run, changed=False)

    def merge(self, other: Decision) -> Decision:
        """Effects of ``self`` then ``other``; the run is ``other``'s."""
        return Decision(
            run=other.run,
            enqueue=self.enqueue + other.enqueue,
            waits=self.waits + other.waits,
            drop_waits=self.drop_waits + other.drop_waits,
            publish=self.publish + other.publish,
            changed=self.changed or other.changed,
        )


def add_item(
    run: Run, kind: WorkKind, *, at: int, step_id: str | None = None, attempt: int = 0
) -> tuple[Run, WorkItem]:
    """Allocate the run's next work item id and record the item as pending."""
    seq = run.seq + 1
    item = WorkItem(
        id=f"{run.id}:{seq}", run_id=run.id, kind=kind, at=at, step_id=step_id, attempt=attempt
    )
    return replace(run, seq=seq, pending={**run.pending, item.id: item}), item


def drop_item(run: Run, item_id: str) -> Run:
    return replace(run, pending={k: v for k, v in run.pending.items() if k != item_id})
