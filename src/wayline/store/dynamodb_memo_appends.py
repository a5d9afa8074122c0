"""``MemoAppends`` on DynamoDB: a checkpointed step is its memo item alone.

``run_head`` is one GetItem of the run item (``RUN#<id>``/``RUN``): 0.5 read units read
eventually consistently, 1 strongly (a run item is well under 4 KB: memos and the
timeline live in the memo items). ``append_memos`` is one conditional PutItem per memo
(``attribute_not_exists``: write-once; a lost race returns the stored item with the
failure, ``ALL_OLD``, so there is no read to find the first writer's memo): 1 write
unit for a memo and record under 1 KB, nothing else. The run item is not written: its
version does not move (``engine.checkpoint_append`` has why that is safe).

The memo item is the one ``DynamoRunStore`` writes for a saved memo, ordered so that
the readers' rules (``dynamodb_run_layout.memo_order`` and the records' ``at``) place
it right:

- ``v`` is the head's version and ``i`` the append clock, so the memo sorts after the
  memos of the head's save (``i`` = their index in it: small numbers) and before any
  later save's (a higher ``v``), and after the memos appended before it;
- its record's ``at`` is ``[records, clock]`` (``appended_record``).

The head may be read eventually consistently (a moment old): its record count is still
the right one, because a head that shows the call's item pending is no older than the
save that created the item (the previous call's answer, the last save to add records;
while the call is open, other saves only change records in place: a cancel closes open
steps, a parallel wait resolves its own). Its state size may miss that save's memos:
the 413 check is the approximation ``engine.checkpoint_append`` describes.

A checkpoint of several steps writes them one by one: a conflict on a later step (409)
leaves the earlier ones written (each is a valid, write-once result).

The append clock is this process's: ``max(now_ms * 1000, last + 1)``, strictly rising
in one process. Between two processes (two api containers serving one call's
consecutive checkpoints) it follows the wall clock: each checkpoint is sent only after
the previous one was acknowledged, a round trip of milliseconds, far above the skew of
Lambda hosts' synchronised clocks.

The first append to a run also sets ``apd`` on its run item (1 write unit, once per run):
the memo items are invisible to the 1-unit check a process makes of a run it holds
cached (``DynamoRunStore._current``: the run item and its ack marker), so that check
reads the run whole when the run item says memos were appended and a call may be open.
A run whose SDK never checkpoints (the official Python SDK) keeps the cheap check.

A run saved before the head carried its record count (``nrec``) or in layout 1 has no
head here (``None``): its checkpoints take the transition path, and its next save
writes the count.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from wayline.engine.model import JSON
from wayline.engine.ports import AppendedMemo, RunHead

from . import dynamodb_run_layout as layout
from . import keys
from .codec import dumps, run_from_dict, step_to_dict
from .dynamodb_schema import PK, SK, Retention
from .dynamodb_table import ConditionFailed, Item, Table, n, number, s, text

RECORDS = "nrec"
"""On the run item: how many step records the run had at its save."""
STATE_BYTES = "sz"
"""On the run item: the run's state size (``protocol.state_size``) at its save."""
APPENDED = "apd"
"""On the run item: memos have been appended to this run (set once, before the first)."""
MEMO_INDEX = "i"
RECORD = "rec"
_REMEMBERED = 4096


class DynamoMemoAppends:
    def __init__(self, table: Table, retention: Retention | None = None) -> None:
        self._t = table
        self._retention = retention
        self._lock = threading.Lock()
        self._last = 0
        self._marked: OrderedDict[str, None] = OrderedDict()
        """Runs whose item is known to carry ``APPENDED`` (most recent last)."""

    def run_head(self, run_id: str, *, consistent: bool = True) -> RunHead | None:
        item = self._t.get(keys.run(run_id), consistent=consistent)
        if item is None or RECORDS not in item:
            return None
        if APPENDED in item:
            self._remember(run_id)
        doc = self._t.decode_body(item)
        if doc.get(layout.LAYOUT_KEY) != layout.LAYOUT:
            return None
        if doc.get(layout.EVENTS_APART):
            doc["events"] = []  # in their own item: not needed to fence a checkpoint
        doc["outbox"] = {}  # nor is what the last save left to apply
        version = number(item, "ver")
        run = run_from_dict(layout.run_doc(doc, [], run_id=text(item, "run_id"), version=version))
        return RunHead(run, number(item, STATE_BYTES), number(item, RECORDS))

    def append_memos(self, head: RunHead, memos: Sequence[AppendedMemo], *, now: int) -> list[JSON]:
        if memos and head.run.id not in self._marked:
            self._mark(head.run.id)
        return [self._append(head, memo, now) for memo in memos]

    def _mark(self, run_id: str) -> None:
        """Set ``APPENDED`` on the run item before its first appended memo: readers that
        hold the run cached see it in their 1-unit check of the run item and read the run
        whole (``DynamoRunStore._current``); a run never appended to (an SDK that does not
        checkpoint) keeps that cheap check. Once per run and process; 1 write unit."""
        self._t.write(
            self._t.update(
                keys.run(run_id),
                f"SET #{APPENDED} = :one",
                condition="attribute_exists(#pk)",
                values={":one": n(1)},
            )
        )
        self._remember(run_id)

    def _remember(self, run_id: str) -> None:
        with self._lock:
            self._marked[run_id] = None
            self._marked.move_to_end(run_id)
            while len(self._marked) > _REMEMBERED:
                self._marked.popitem(last=False)

    def _append(self, head: RunHead, memo: AppendedMemo, now: int) -> JSON:
        run = head.run
        order = self._tick(now)
        record = layout.appended_record(
            step_to_dict(memo.record), memo.memo, records=head.records, order=order
        )
        body = self._t.encode_body(
            memo.memo,
            kind="memo",
            owner=f"{run.id}/{memo.step_id}",
            what=f"memo of run {run.id} step {memo.step_id}",
        )
        key = keys.memo(run.id, memo.step_id)
        item: Item = {
            PK: s(key.pk),
            SK: s(key.sk),
            "v": n(run.version),
            MEMO_INDEX: n(order),
            RECORD: s(dumps(record)),
            **(self._retention.expires_at(run.created_at) if self._retention else {}),
            **body,
        }
        try:
            self._t.write(
                self._t.put(item, condition="attribute_not_exists(#pk)"), old_on_fail=True
            )
        except ConditionFailed as lost:
            stored = lost.old if lost.old is not None else self._t.get(key)
            return None if stored is None else self._t.decode_body(stored)
        return memo.memo

    def _tick(self, now: int) -> int:
        with self._lock:
            self._last = max(now * 1000, self._last + 1)
            return self._last
