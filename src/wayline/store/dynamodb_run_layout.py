"""How a run is cut into DynamoDB items so that no item grows with the run (layout 2).

Pure: documents in, documents out (the codec's dicts); ``dynamodb_runs`` does the I/O.

- The run item (``RUN``) holds what a transition changes: status, pending items, waits,
  the outbox, and the records of steps still open. Its ``fresh`` list carries the memos
  (with their step records) that the save at its version added: the run item is the one
  commit point of a save.
- One item per memo (``MEMO#<step>``), written from a committed run item (never before),
  holds the memo and the step's record as of then: the timeline lives in these items, not
  in the run item. A record that changes after its memo was written (rare) goes back into
  the run item, which wins over the copy in the memo item.
- ``at`` is a record's position in the timeline (records are only ever appended or
  replaced in place, so a position never changes); the stack is the memos' first-write
  order, stored apart only when it is not.

Layout 1 (before): the run body held the whole timeline and the stack; its memos were
written in the same transaction. Both are read; a layout-1 run is rewritten in layout 2
by its next save (its older records then stay in the run item: they have no memo copy).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .codec import dumps

LAYOUT = 2
LAYOUT_KEY = "lay"
EVENTS_APART = "ev"
"""Set on a run item whose run's events are in their own item (``EVENTS``)."""
FRESH_KEY = "fresh"
AT = "at"
_FROM_MEMO = "from_memo"
_DERIVED = (("output", "data"), ("error", "error"))
"""Step record fields the engine copies from the step's memo (record field, memo key)."""

_RUN_DEFAULTS: Mapping[str, Any] = {
    "pending": {},
    "waiting": {},
    "cancel_waits": [],
    "planned": [],
    "race": False,
    "force_step_plan": False,
    "request_version": -1,
    "seq": 0,
    "started_at": None,
    "ended_at": None,
    "output": None,
    "cron": None,
    "parent": None,
    "cancel_reason": None,
    "outbox": {},
    "rerun_of": None,
    "reruns": [],
    "seeds": {},
    "steps": [],
}
"""Run fields left out of the run item when they hold their default (the codec reads a
missing key as its default): every byte of the run item is paid on every save."""
_STEP_DEFAULTS: Mapping[str, Any] = {
    "attempts": 0,
    "started_at": 0,
    "ended_at": None,
    "output": None,
    "error": None,
    "seeded": False,
}


@dataclass(frozen=True, slots=True)
class Fresh:
    """A memo first committed by the run item's save, until its own item is written."""

    step_id: str
    index: int
    """Its position among the memos of that save (memo order is (version, index))."""
    memo: Any
    record: dict[str, Any] | None
    """The step's record (outputs referenced, ``at`` set), or None without one."""
    ref: str | None = None
    """Where a memo too large for an item is (S3); ``memo`` is then None."""

    def to_doc(self) -> dict[str, Any]:
        record = None if self.record is None else _without(self.record, "id")
        doc = {"id": self.step_id, "i": self.index, "rec": record}
        if self.ref is None:
            doc["m"] = self.memo
        else:
            doc["r"] = self.ref
        return doc

    @staticmethod
    def from_doc(doc: Mapping[str, Any]) -> Fresh:
        record = doc.get("rec")
        if record is not None:
            record = {"id": doc["id"], **record}
        return Fresh(doc["id"], doc["i"], doc.get("m"), record, doc.get("r"))


@dataclass(frozen=True, slots=True)
class StoredMemo:
    """A memo as stored: in its own item or in the run item's ``fresh`` list."""

    step_id: str
    version: int
    index: int
    memo: Any
    record: dict[str, Any] | None


def head_doc(
    run_doc: dict[str, Any],
    memos: Mapping[str, Any],
    *,
    stored: Mapping[str, dict[str, Any] | None],
) -> tuple[dict[str, Any], list[Fresh]]:
    """The run item's document (without its ``fresh`` list) and the memos it adds, for
    the run encoded as ``run_doc`` (the codec's dict, memos included) when ``stored``
    (step id -> the record its memo item carries) is what the store holds already."""
    doc = dict(run_doc)
    doc.pop("memos", None)
    records = [
        _with_ref(step, memos, _stored_at(stored.get(step["id"]), at))
        for at, step in enumerate(doc.pop("steps", ()))
    ]
    by_id = {r["id"]: r for r in records}
    fresh = [
        Fresh(step_id, index, memos[step_id], by_id.get(step_id))
        for index, step_id in enumerate(s for s in memos if s not in stored)
    ]
    carried = {f.step_id for f in fresh}
    doc["steps"] = [
        r for r in records if r["id"] not in carried and not _same(stored.get(r["id"]), r)
    ]
    if list(doc.get("stack", ())) == list(memos):
        doc.pop("stack", None)  # the memos' order says it
    doc.pop("version", None)  # the item's ``ver`` says it
    doc["pending"] = {k: _compact_item(v, doc["id"]) for k, v in doc.get("pending", {}).items()}
    del doc["id"]  # the item's ``run_id`` says it
    doc[LAYOUT_KEY] = LAYOUT
    return _compact(doc, _RUN_DEFAULTS), fresh


def run_doc(
    head: dict[str, Any], memos: Sequence[StoredMemo], *, run_id: str, version: int
) -> dict[str, Any]:
    """The codec's run dict from the document of a layout-2 run item (of run ``run_id``
    at ``version``) and every memo of the run, in memo order (``fresh`` ones included)."""
    doc = dict(head)
    doc["id"] = run_id
    doc["version"] = version
    doc["pending"] = {k: {"run_id": doc["id"], **v} for k, v in doc.get("pending", {}).items()}
    doc.pop(LAYOUT_KEY, None)
    doc.pop(EVENTS_APART, None)
    doc.pop(FRESH_KEY, None)
    doc["memos"] = {m.step_id: m.memo for m in memos}
    overrides = {r["id"] for r in doc.get("steps", ())}
    records = [*doc.get("steps", ())]
    records += [m.record for m in memos if m.record is not None and m.step_id not in overrides]
    records.sort(key=lambda r: at_key(r[AT]))
    doc["steps"] = [_restored(r, doc["memos"]) for r in records]
    if "stack" not in doc:
        doc["stack"] = [m.step_id for m in memos]
    return doc


def fresh_of(head: Mapping[str, Any]) -> list[Fresh]:
    return [Fresh.from_doc(d) for d in head.get(FRESH_KEY, ())]


def memo_order(memos: Iterable[StoredMemo]) -> list[StoredMemo]:
    """Memos in first-write order, each once (a fresh memo may also have its item)."""
    unique = {m.step_id: m for m in memos}
    return sorted(unique.values(), key=lambda m: (m.version, m.index))


# -- step records --------------------------------------------------------------------


def appended_record(
    step: Mapping[str, Any], memo: Any, *, records: int, order: int
) -> dict[str, Any]:
    """The record of a memo appended without a save (``ports.MemoAppends``), as its memo
    item carries it: its position is ``[records, order]`` (the head's record count, the
    append clock), which sorts after the head's records, before any record a later save
    adds (at a position >= the count then, which includes this one), and among appends
    by their clock."""
    return _with_ref(step, {step["id"]: memo}, [records, order])


def at_key(at: int | Sequence[int]) -> tuple[int, int]:
    """A record position as a sort key: a save's ``n`` is ``(n, 0)``; an append's
    ``[records, order]`` is itself (``order`` > 0)."""
    if isinstance(at, int):
        return (at, 0)
    first, second = at
    return (first, second)


def _stored_at(stored: Mapping[str, Any] | None, at: int) -> Any:
    """A record's position: the one its memo item's copy has, if any (a position is
    given once and never changes: an appended record keeps its ``[records, order]``,
    so a save rewrites no record for it), else ``at``, its index in the timeline."""
    if stored is not None and AT in stored:
        return stored[AT]
    return at


def _with_ref(step: Mapping[str, Any], memos: Mapping[str, Any], at: Any) -> dict[str, Any]:
    """The record with its position, and each output that IS (identity, not equality) its
    memo's value replaced by a reference: an output is stored once, in its memo. Identity
    is exact (``1 == True`` but ``1 is not True``) and holds on the engine's path, which
    builds the record from the memo object, and after a load (``_restored``)."""
    record = _compact(dict(step), _STEP_DEFAULTS)
    record[AT] = at
    memo = memos.get(step["id"])
    if not isinstance(memo, Mapping):
        return record
    derived = [f for f, k in _DERIVED if step.get(f) is not None and step[f] is memo.get(k)]
    for field in derived:
        record.pop(field, None)
    if derived:
        record[_FROM_MEMO] = derived
    return record


def _restored(record: Mapping[str, Any], memos: Mapping[str, Any]) -> dict[str, Any]:
    step = dict(record)
    step.pop(AT, None)
    memo_key = dict(_DERIVED)
    for field in step.pop(_FROM_MEMO, ()):
        # Memos are write-once: the stored one is what the record refers to.
        memo = memos.get(step["id"])
        step[field] = memo.get(memo_key[field]) if isinstance(memo, Mapping) else None
    for field, default in _STEP_DEFAULTS.items():
        step.setdefault(field, default)
    return step


_ITEM_DEFAULTS: Mapping[str, Any] = {
    "step_id": None,
    "attempt": 0,
    "function_id": None,
    "cron": None,
    "ref": None,
}


def _compact_item(item: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """A pending work item without its defaults, and without its run id when it is the
    run's (``run_doc`` puts it back)."""
    doc = _compact(dict(item), _ITEM_DEFAULTS)
    if doc.get("run_id") == run_id:
        del doc["run_id"]
    return doc


def _without(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


def _same(stored: Mapping[str, Any] | None, record: Mapping[str, Any]) -> bool:
    """Whether a memo item's copy of a record is this record (as JSON text: ``1 == True``
    in Python, not in the run's timeline)."""
    return stored is not None and dumps(stored) == dumps(record)


def _compact(doc: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` without the keys that hold their default (or nothing: the codec reads a
    missing key as its default)."""
    return {
        k: v
        for k, v in doc.items()
        if k not in defaults
        or not (v is None or (type(v) is type(defaults[k]) and v == defaults[k]))
    }


# -- layout 1 (read only) ------------------------------------------------------------


def restore_outputs_v1(doc: dict[str, Any]) -> None:
    """A layout-1 body's record outputs, from the memos they reference."""
    memo_key = dict(_DERIVED)
    for step in doc.get("steps", ()):
        for field in step.pop(_FROM_MEMO, ()):
            memo = doc["memos"].get(step["id"])
            step[field] = memo.get(memo_key[field]) if isinstance(memo, Mapping) else None
