"""``RunStore`` on DynamoDB: a small run item, one write-once item per step, one partition.

Layout (``dynamodb_run_layout``): ``RUN#<id>``/``RUN`` holds what a transition changes
(its ``ver`` is the optimistic lock) and carries, in ``fresh``, the memos its save added;
``RUN#<id>``/``MEMO#<step>`` holds one step's memo AND its timeline record, written from
a committed run item; ``RUN#<id>``/``ACK`` says up to which version the outbox was
applied. No item grows with the run: a save writes what changed, whatever came before.

The write protocol, and why it needs no transaction:

1. ``save_run`` first writes the memo items of the run item's ``fresh`` list if they are
   not written yet (only after a crash between steps 2 and 3 of an earlier save);
2. then ONE conditional UpdateItem of the run item (``ver = expected``), carrying the new
   memos inline: this is the commit, and the only condition;
3. then one BatchWriteItem of the new memos' items (the same content, now committed).

A memo item is only ever written from a committed run item, so there are no orphans: a
loser of the race at step 2 has written nothing, and step 3 of any writer writes the
content that committed. Two workers loaded version 4 and both finished step "b"::

    A: Update run 4->5 if ver = 4 (fresh: b=A's output)  -> committed
    B: Update run 4->5 if ver = 4 (fresh: b=B's output)  -> ConditionFailed: False
    A: BatchWrite MEMO#b (A's output)                     (or the next save does it)

Crash between 2 and 3: the memo lives in the run item's ``fresh`` list, which readers
merge with the memo items; the next save (step 1) writes its item before replacing the
list. A Query can see memo items from before a concurrent save and its run item from
after it: fewer memos than the run item counts means a torn read, and it reads again.

Request units (1 write unit per KB, 1 read unit per 4 KB read strongly consistently):

- ``save_run`` of a sequential step: one UpdateItem of the run item (~0.5-1 KB plus the
  new step's memo and record) and one BatchWriteItem of the memo item: about 2 WRU, flat
  in the run's length. Without a new memo (a sleep, a retry): the UpdateItem alone.
- ``ack_outbox``: a ~60-byte PutItem of the ``ACK`` marker (1 WRU) and a GetItem of the
  run item (1 RRU) to say whether the run moved on; once per run, for a finished run, an
  UpdateItem of the run item instead, which also takes it out of the live-runs index.
- ``create_run``: one BatchWriteItem of the event links, then one conditional PutItem of
  the run (a transaction only if the run already has memos).
- ``get_run``: when this store (this container) saved or read the run's current version,
  one Query of the run item and its ack marker: 1 RRU however long the run (a version is
  written once, so the run it saved is the run stored); otherwise one Query over the
  run's partition, every memo item included. ``list_*``/``search_runs``: index Queries
  (one per shard), then
  one Query per run listed; the plan per filter is in ``dynamodb_run_search``.

Checkpointed steps are not saves: ``dynamodb_memo_appends`` writes their memo items
alone, without a new version (``engine.checkpoint_append`` has the races). So a run whose
item says memos were appended (``apd``, set before the first) and that has a discovery
call pending (one that may checkpoint) is read whole, never answered from
``_KnownRuns``; the run item carries its record count and state size (``nrec``,
``sz``) for the appends' fence read.

Runs stored by the previous layout (layout 1: the whole timeline in the run item, memos
written in a transaction) are read as they are; their next save rewrites the run item in
layout 2, keeping their old records in it (their memo items carry none).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from wayline.engine import search
from wayline.engine.checkpoint_append import may_append
from wayline.engine.model import Outbox, Run
from wayline.engine.ports import RunPage, RunQuery
from wayline.engine.protocol import state_size
from wayline.errors import StoreError

from . import dynamodb_lifecycle_refs as lifecycle_refs
from . import dynamodb_run_layout as layout
from . import keys
from .codec import dumps, loads, run_from_dict, run_to_dict
from .dynamodb_memo_appends import APPENDED, RECORDS, STATE_BYTES
from .dynamodb_run_search import RunSearch, index_attributes, status_attributes
from .dynamodb_schema import PK, SK, TTL_ATTRIBUTE, Retention
from .dynamodb_table import (
    BODY,
    BODY_REF,
    ConditionFailed,
    Item,
    Table,
    Write,
    backoff,
    item_bytes,
    merge_iter,
    n,
    number,
    s,
    text,
)

log = logging.getLogger(__name__)

_READ_RETRIES = 5
_LOAD_THREADS = 8
_MAX_CREATE_MEMOS = 99  # a transaction holds 100 writes, one of them the run
MEMO_INDEX = "i"
"""A memo's position among the memos of its save (memo items are the only items with it)."""
RECORD = "rec"
"""A memo item's copy of its step's timeline record (JSON)."""
ACKED = "ack"
"""On a finished run's item: the version whose outbox was applied."""


class DynamoRunStore:
    def __init__(self, table: Table, retention: Retention | None = None) -> None:
        """``retention``: memos and event links expire from the run's creation, the run
        item from then too but only once it has finished (``Retention``)."""
        self._t = table
        self._retention = retention
        self._known = _KnownRuns()
        self._search = RunSearch(table, self._load_many)

    def create_run(self, run: Run) -> bool:
        # Links first: they are idempotent (same key, same content for a given run id),
        # and a link whose run was never created is skipped by every reader. Written
        # after the run, a crash in between would hide the run from its events instead.
        links = [
            {**_link(run, event_id), **self._expiry(run)}
            for event_id in dict.fromkeys(run.event_ids)
        ]
        self._t.batch_put(links)
        if len(run.memos) > _MAX_CREATE_MEMOS:
            raise StoreError(
                f"run {run.id}: created with {len(run.memos)} memos; a DynamoDB transaction"
                f" holds the run and at most {_MAX_CREATE_MEMOS} memos"
            )
        doc, fresh = layout.head_doc(run_to_dict(run), run.memos, stored={})
        fresh = self._encoded(run, fresh)
        # A new run's memos are written with it, all or nothing: no ``fresh`` list.
        create = self._t.put(
            self._run_item(run, {**doc, layout.FRESH_KEY: []}, memo_count=len(fresh)),
            condition="attribute_not_exists(#pk)",
        )
        memos = [
            self._t.put(self._memo_item(run, run.version, f), condition="attribute_not_exists(#pk)")
            for f in fresh
        ]
        try:
            self._t.write_all([create, *memos])
        except ConditionFailed:
            return False
        records = {f.step_id: f.record for f in fresh}
        self._known.put(run.id, _Seen(run.version, records, (), run))
        return True

    def save_run(self, run: Run, *, expected_version: int) -> bool:
        if run.version != expected_version + 1:
            raise ValueError(
                f"run {run.id}: version {run.version} must be expected_version + 1"
                f" ({expected_version + 1})"
            )
        seen = self._seen(run.id, expected_version)
        if seen is None:
            return False  # no such run, or already past expected_version
        seen = self._write_memo_items(run, expected_version, seen)
        doc, fresh = layout.head_doc(run_to_dict(run), run.memos, stored=seen.records)
        fresh = self._encoded(run, fresh)
        doc[layout.FRESH_KEY] = [f.to_doc() for f in fresh]
        lifecycle_refs.refer(doc, run)
        memo_count = len(seen.records) + len(fresh)
        if seen.events_apart or self._events_cost_a_unit(run, doc, memo_count):
            seen = self._write_events_item(run, seen)
            del doc["events"]
            doc[layout.EVENTS_APART] = 1
        update = self._run_update(run, doc, expected_version, memo_count=memo_count)
        try:
            self._t.write(update)
        except ConditionFailed:
            self._known.drop(run.id)
            return False
        records = {**seen.records, **{f.step_id: f.record for f in fresh}}
        kept = run if _keeps(seen.run, run) else None
        saved = _Seen(run.version, records, tuple(fresh), kept, events_apart=seen.events_apart)
        self._known.put(run.id, saved)
        try:
            self._write_memo_items(run, run.version, saved)
        except StoreError:
            # Committed already: the memos are in the run item, and the next save writes
            # their items first (step 1). Failing here would report a saved step as lost.
            log.warning("memo items of run %s left to its next save", run.id, exc_info=True)
        return True

    def ack_outbox(self, run: Run) -> bool:
        """A marker put and a read of the run's version; for a finished run, one update of
        the run item that also takes it out of the live-runs index."""
        if run.outbox:
            raise ValueError(f"run {run.id}: acknowledge with the outbox emptied")
        version = {":v": n(run.version)}
        if run.status.is_terminal:
            leave = self._t.update(
                keys.run(run.id),
                f"SET #{ACKED} = :v REMOVE #run_live",
                condition="#ver = :v",
                values=version,
            )
            try:
                self._t.write(leave)
            except ConditionFailed:
                return False
            return True
        marker: Item = {
            PK: s(keys.run_ack(run.id).pk),
            SK: s(keys.run_ack(run.id).sk),
            "v": n(run.version),
            **self._expiry(run),
        }
        newer = "attribute_not_exists(#pk) OR #v < :v"
        # A failed condition: this version (or a later one) is acknowledged already.
        with contextlib.suppress(ConditionFailed):
            self._t.write(self._t.put(marker, condition=newer, values=version))
        head = self._t.get(keys.run(run.id))
        return head is not None and number(head, "ver") == run.version

    def get_run(self, run_id: str) -> Run | None:
        known = self._known.latest(run_id)
        if known is not None and known.run is not None:
            current = self._current(known)
            if current is not None:
                return current
        partition = keys.run_partition(run_id)
        for attempt in range(_READ_RETRIES):
            try:
                return self._decode(list(self._t.query("#pk = :pk", {":pk": s(partition)})))
            except _TornRead:
                backoff(attempt)
        raise StoreError(f"run {run_id}: reads kept catching a save half-applied")

    def list_runs(
        self,
        *,
        function_id: str | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        if limit <= 0:
            return []
        query = RunQuery(function_id=function_id, event_id=event_id, limit=limit)
        return self._search.search(query).runs

    def search_runs(self, query: RunQuery) -> RunPage:
        """See ``dynamodb_run_search``: the query plan and read units per filter."""
        search.validate_query(query)
        return self._search.search(query)

    def list_live_runs(self, *, limit: int = 10_000, after: str | None = None) -> list[Run]:
        # Each shard is read from the cursor on (``run_id > after`` in the key condition:
        # a page costs what it returns, however many pages came before).
        condition, values = "#run_live = :p", dict[str, Any]()
        if after is not None:
            condition, values = "#run_live = :p AND #run_id > :after", {":after": s(after)}
        streams = [
            self._t.query(
                condition,
                {":p": s(keys.live_runs(shard)), **values},
                index="live_runs",
                page_size=max(1, min(limit, 1000)),
            )
            for shard in range(keys.RUN_SHARDS)
        ]
        # The index is eventually consistent: a run that just finished may still be in it,
        # so runs are loaded and filtered in chunks until ``limit`` pass (or the index ends):
        # a short page then means the last one, as the port promises.
        merged = merge_iter(streams, "run_id", descending=False)
        found: list[Run] = []
        while len(found) < limit:
            chunk = [text(item, "run_id") for item in islice(merged, limit - len(found))]
            if not chunk:
                break
            found += [run for run in self._load_many(chunk) if _needs_sweep(run)]
        return found

    # -- reads -------------------------------------------------------------------

    def _current(self, known: _Seen) -> Run | None:
        """The run this store saved or read last, if it is still the stored version: one
        Query of the run item and the ack marker (1 read unit, however long the run),
        since a version is written once and its memos never change. None if it moved on.
        """
        assert known.run is not None
        items = list(
            self._t.query(
                "#pk = :pk AND #sk >= :run",
                {":pk": s(keys.run_partition(known.run.id)), ":run": s(keys.RUN_SK)},
            )
        )
        head = next((item for item in items if text(item, SK) == keys.RUN_SK), None)
        if head is None or number(head, "ver") != known.version:
            return None
        run = known.run
        if APPENDED in head and _open_to_appends(run):
            return None  # memos may have been appended since, which ``ver`` does not show
        if run.outbox and self._acknowledged(head, items) >= known.version:
            run = replace(run, outbox=Outbox())
        return run

    def _seen(self, run_id: str, version: int) -> _Seen | None:
        """What the store holds of the run at ``version`` (None if it is not at that
        version). Usually known without a read: ``get_run`` (which the engine calls
        before every save) and every successful write remember it."""
        known = self._known.get(run_id, version)
        if known is not None:
            return known
        run = self.get_run(run_id)
        if run is None or run.version != version:
            return None
        return self._known.get(run_id, version)

    def _decode(self, items: list[Item]) -> Run | None:
        """The run in a partition's items (None if there is none).

        A Query is not isolated from a save: it can see memo items from before a save and
        the run item from after it. A memo item newer than the run item is left out (its
        save has not happened as far as this run item knows; only layout 1 wrote one);
        fewer memos than the run item counts raises ``_TornRead``, and the caller reads
        again.
        """
        head = next((item for item in items if text(item, SK) == keys.RUN_SK), None)
        if head is None:
            return None
        version = number(head, "ver")
        memo_items = [
            item
            for item in items
            if text(item, SK).startswith(keys.MEMO_PREFIX) and number(item, "v") <= version
        ]
        doc = self._t.decode_body(head)
        if doc.get(layout.LAYOUT_KEY) == layout.LAYOUT:
            events = next((i for i in items if text(i, SK) == keys.RUN_EVENTS_SK), None)
            doc, seen = self._decode_layout2(head, doc, memo_items, events)
        else:
            doc, seen = self._decode_layout1(head, doc, memo_items)
        if self._acknowledged(head, items) >= version:
            doc["outbox"] = {}
        lifecycle_refs.restore(doc, run_from_dict)
        run = run_from_dict(doc)
        self._known.put(run.id, replace(seen, run=run))
        return run

    def _decode_layout2(
        self, head: Item, doc: dict[str, Any], memo_items: list[Item], events: Item | None
    ) -> tuple[dict[str, Any], _Seen]:
        version = number(head, "ver")
        written = {keys.step_of_memo(text(item, SK)) for item in memo_items}
        fresh = [self._loaded(f) for f in layout.fresh_of(doc)]
        stored = [
            layout.StoredMemo(
                keys.step_of_memo(text(item, SK)),
                number(item, "v"),
                number(item, MEMO_INDEX),
                self._t.decode_body(item),
                loads(text(item, RECORD)) if RECORD in item else None,
            )
            for item in memo_items
        ]
        stored += [layout.StoredMemo(f.step_id, version, f.index, f.memo, f.record) for f in fresh]
        memos = layout.memo_order(stored)
        if len(memos) < number(head, "memos"):
            raise _TornRead
        unwritten = tuple(f for f in fresh if f.step_id not in written)
        apart = bool(doc.get(layout.EVENTS_APART))
        if apart:
            if events is None:
                raise _TornRead  # written before the run item that says so: read again
            doc["events"] = self._t.decode_body(events)
        seen = _Seen(version, {m.step_id: m.record for m in memos}, unwritten, events_apart=apart)
        return layout.run_doc(doc, memos, run_id=text(head, "run_id"), version=version), seen

    def _decode_layout1(
        self, head: Item, doc: dict[str, Any], memo_items: list[Item]
    ) -> tuple[dict[str, Any], _Seen]:
        memo_items = sorted(memo_items, key=lambda item: (number(item, "v"), number(item, "i")))
        if len(memo_items) < number(head, "memos"):
            raise _TornRead
        doc["memos"] = {keys.step_of_memo(text(m, SK)): self._t.decode_body(m) for m in memo_items}
        layout.restore_outputs_v1(doc)
        # No memo item carries a record: every record stays in the run item when it is
        # next saved (in layout 2).
        return doc, _Seen(number(head, "ver"), dict.fromkeys(doc["memos"]), ())

    @staticmethod
    def _acknowledged(head: Item, items: list[Item]) -> int:
        """The version whose outbox was applied (-1: none)."""
        marker = next((item for item in items if text(item, SK) == keys.RUN_ACK_SK), None)
        return max(
            number(head, ACKED) if ACKED in head else -1,
            number(marker, "v") if marker is not None else -1,
        )

    def _loaded(self, fresh: layout.Fresh) -> layout.Fresh:
        """A fresh memo with its value (fetched from S3 if it was too large to inline)."""
        if fresh.ref is None:
            return fresh
        memo = self._t.decode_body({PK: s(fresh.step_id), BODY_REF: s(fresh.ref)})
        return replace(fresh, memo=memo)

    def _load_many(self, run_ids: list[str]) -> list[Run]:
        """Each run by its own Query, a few at a time; runs that are gone are skipped."""
        if len(run_ids) <= 1:
            loaded: Iterable[Run | None] = [self.get_run(run_id) for run_id in run_ids]
        else:
            with ThreadPoolExecutor(max_workers=min(_LOAD_THREADS, len(run_ids))) as pool:
                loaded = list(pool.map(self.get_run, run_ids))
        return [run for run in loaded if run is not None]

    # -- items -------------------------------------------------------------------

    def _write_memo_items(self, run: Run, version: int, seen: _Seen) -> _Seen:
        """Write the items of the memos committed at ``version`` that have none yet:
        unconditional puts, since a memo item only ever holds committed content."""
        if not seen.unwritten:
            return seen
        self._t.batch_put([self._memo_item(run, version, f) for f in seen.unwritten])
        done = replace(seen, unwritten=())
        self._known.put(run.id, done)
        return done

    def _events_cost_a_unit(self, run: Run, doc: dict[str, Any], memo_count: int) -> bool:
        """Whether the run's events, kept in the run item, would make this save cost one
        more write unit (the item crosses a KB boundary with them): only then are they
        moved to their own item (a write unit once). Small events of a short run (the
        usual case: two or three saves) stay where ``create_run`` put them."""
        events = len(dumps(doc.get("events", ()))) + len(',"events":')
        head = item_bytes(self._run_attributes(run, memo_count=memo_count))
        body = len(BODY) + len(dumps(doc).encode())
        return -(-(head + body) // 1024) > -(-(head + body - events) // 1024)

    def _write_events_item(self, run: Run, seen: _Seen) -> _Seen:
        """Move the run's events (written once, with the run) out of the run item, which
        every save rewrites, once they cost write units there (``_events_cost_a_unit``):
        their own item is written before the first save that drops them, from the
        committed run, so a reader always finds them in one place."""
        if seen.events_apart:
            return seen
        key = keys.run_events(run.id)
        doc = [dict(e) for e in run.events]
        body = self._t.encode_body(
            doc, kind="run", owner=f"{run.id}/events", what=f"events of run {run.id}"
        )
        self._t.write(self._t.put({PK: s(key.pk), SK: s(key.sk), **self._expiry(run), **body}))
        done = replace(seen, events_apart=True)
        self._known.put(run.id, done)
        return done

    def _encoded(self, run: Run, fresh: Sequence[layout.Fresh]) -> list[layout.Fresh]:
        """``fresh`` with each memo too large for an item moved to S3 (a ``StoreError``
        naming the run, step and size without an S3 offload)."""
        encoded = []
        for f in fresh:
            body = self._t.encode_body(
                f.memo,
                kind="memo",
                owner=f"{run.id}/{f.step_id}",
                what=f"memo of run {run.id} step {f.step_id}",
            )
            if BODY_REF in body:
                f = layout.Fresh(f.step_id, f.index, None, f.record, text(body, BODY_REF))
            encoded.append(f)
        return encoded

    def _memo_item(self, run: Run, version: int, fresh: layout.Fresh) -> Item:
        key = keys.memo(run.id, fresh.step_id)
        body = {BODY: s(dumps(fresh.memo))} if fresh.ref is None else {BODY_REF: s(fresh.ref)}
        item: Item = {
            PK: s(key.pk),
            SK: s(key.sk),
            "v": n(version),  # committed at this version: orders memos
            MEMO_INDEX: n(fresh.index),
            **self._expiry(run),
            **body,
        }
        if fresh.record is not None:
            item[RECORD] = s(dumps(fresh.record))
        return item

    def _run_item(self, run: Run, doc: dict[str, Any], *, memo_count: int) -> Item:
        return {**self._run_attributes(run, memo_count=memo_count), **self._body(run, doc)}

    def _run_attributes(self, run: Run, *, memo_count: int) -> Item:
        """The run item without its body."""
        shard = keys.shard_of(run.id, keys.RUN_SHARDS)
        item: Item = {
            PK: s(keys.run(run.id).pk),
            SK: s(keys.RUN_SK),
            "ver": n(run.version),
            "memos": n(memo_count),
            "run_id": s(run.id),
            "run_shard": s(keys.runs_by_time(shard)),
            **index_attributes(run),
            **_head_sizes(run),
        }
        if _needs_sweep(run):
            item["run_live"] = s(keys.live_runs(shard))
        if run.status.is_terminal:
            item.update(self._expiry(run))
        return item

    def _expiry(self, run: Run) -> Item:
        """The TTL attribute of this run's items (nothing without a retention)."""
        return self._retention.expires_at(run.created_at) if self._retention else {}

    def _run_update(
        self, run: Run, doc: dict[str, Any], expected_version: int, *, memo_count: int
    ) -> Write:
        body = self._body(run, doc)
        (kept,) = body
        (dropped,) = {BODY, BODY_REF} - {kept}
        removed = [dropped]
        if not _needs_sweep(run):
            removed.append("run_live")  # leaves the live-runs index: its one index write
        # The status keys move the run between the search indexes' status partitions;
        # rewritten with the same value (most saves) they cost the indexes nothing.
        moved = {**status_attributes(run), **_head_sizes(run)}
        sets = ", ".join(f"#{name} = :{name}" for name in moved)
        expression = (
            f"SET #ver = :ver, #memos = :memos, #{kept} = :body, {sets} REMOVE "
            + ", ".join(f"#{name}" for name in removed)
        )
        values = {
            ":ver": n(run.version),
            ":memos": n(memo_count),
            ":body": body[kept],
            ":expected": n(expected_version),
            **{f":{name}": value for name, value in moved.items()},
        }
        expiry = self._expiry(run) if run.status.is_terminal else {}
        if expiry:  # the save that finishes the run starts its retention clock
            expression = expression.replace("SET ", f"SET #{TTL_ATTRIBUTE} = :exp, ", 1)
            values[":exp"] = expiry[TTL_ATTRIBUTE]
        return self._t.update(
            keys.run(run.id), expression, condition="#ver = :expected", values=values
        )

    def _body(self, run: Run, doc: dict[str, Any]) -> Item:
        return self._t.encode_body(
            doc, kind="run", owner=run.id, what=f"run {run.id} (without its memos)"
        )


def _head_sizes(run: Run) -> Item:
    """What ``DynamoMemoAppends.run_head`` reads besides the run: its record count and
    state size at this save (two numbers, a few bytes of the run item)."""
    return {RECORDS: n(len(run.steps)), STATE_BYTES: n(state_size(run))}


def _open_to_appends(run: Run) -> bool:
    """Whether memos may be appended to ``run`` without a new version
    (``engine.checkpoint_append``): it is live with a discovery call pending."""
    return not run.status.is_terminal and any(may_append(item) for item in run.pending.values())


def _needs_sweep(run: Run) -> bool:
    """In the live-runs index: not finished, or finished with effects still to apply."""
    return not run.status.is_terminal or bool(run.outbox)


def _keeps(before: Run | None, after: Run) -> bool:
    """Whether ``after``, saved over ``before``, is exactly what the store now holds (so a
    later ``get_run`` may return it): it holds every stored memo, unchanged and in the
    stored order, first. A caller that dropped or rewrote a memo (write-once: the store
    kept the first) or reordered them is read back from the table instead."""
    if before is None:
        return False
    stored = before.memos
    if len(after.memos) < len(stored) or len(after.steps) < len(before.steps):
        return False  # records are only ever appended or replaced in place
    for (step, memo), (new_step, new) in zip(stored.items(), after.memos.items(), strict=False):
        if step != new_step or not (new is memo or new == memo):
            return False
    return True


class _TornRead(Exception):  # noqa: N818 - control flow inside the store, not an error
    """A read saw a save half-applied."""


def _link(run: Run, event_id: str) -> Item:
    key = keys.run_of_event(event_id, run.id)
    return {
        PK: s(key.pk),
        SK: s(key.sk),
        "link_run": s(run.id),
        "link_fn": s(run.function_id),
    }


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the store holds of a run at one version."""

    version: int
    records: Mapping[str, dict[str, Any] | None]
    """Every stored memo's step id -> the record its item (or fresh entry) carries."""
    unwritten: tuple[layout.Fresh, ...]
    """Memos committed in the run item whose own items are not written yet."""
    run: Run | None = None
    """The run at this version, as saved or read (a version never changes)."""
    events_apart: bool = False
    """The run's events are in their own item, not in the run item."""


class _KnownRuns:
    """What each recently seen run holds at a given version.

    Never stale: a version is written exactly once (conditionally), so the memos stored
    at (run, version) never change; only whether their items are written yet does, and
    writing them twice is harmless. Bounded: the oldest entries are dropped first.
    """

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._by_run: dict[str, _Seen] = {}

    def latest(self, run_id: str) -> _Seen | None:
        with self._lock:
            return self._by_run.get(run_id)

    def get(self, run_id: str, version: int) -> _Seen | None:
        with self._lock:
            entry = self._by_run.get(run_id)
        return entry if entry is not None and entry.version == version else None

    def put(self, run_id: str, seen: _Seen) -> None:
        with self._lock:
            self._by_run.pop(run_id, None)
            self._by_run[run_id] = seen
            while len(self._by_run) > self._size:
                del self._by_run[next(iter(self._by_run))]

    def drop(self, run_id: str) -> None:
        with self._lock:
            self._by_run.pop(run_id, None)
