"""``RunStore`` on DynamoDB: a run item plus one write-once item per memo, one partition.

``RUN#<id>``/``RUN`` holds the run without its memos (its ``ver`` is the optimistic lock);
``RUN#<id>``/``MEMO#<step>`` holds one step's output, so one Query reads a whole run and a
save writes only what changed. Request units per call (1 write unit per KB written, a
transaction twice that; 1 read unit per 4 KB read strongly consistently):

- ``save_run`` of a sequential step: ONE TransactWriteItems with two writes, the run
  update (condition ``ver = expected``) and the new memo (``attribute_not_exists``): no
  read first, since the store remembers which memos a version holds (``_KnownMemos``).
  Without a new memo (a sleep, a retry) it is one conditional UpdateItem.
- ``create_run``: one BatchWriteItem of the event links, then one conditional PutItem of
  the run (a transaction only if the run already has memos).
- ``get_run``: one Query over the run's partition. ``list_*``/``search_runs``: index
  Queries (one per shard), then one Query per run listed; the plan per filter is in
  ``dynamodb_run_search``.

Step outputs are not stored twice: the engine copies each output into the step's timeline
record, and the store keeps those copies as references to the memo (``_strip_outputs``).
The timeline itself (~260 bytes a step: record + stack entry) stays in the body, so a
save costs ceil(body KB) write units: about 3 KB after 10 steps, 27 KB after 100.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

from wayline.engine import search
from wayline.engine.model import JSON, Run
from wayline.engine.ports import RunPage, RunQuery
from wayline.errors import StoreError

from . import keys
from .codec import run_from_dict, run_to_dict
from .dynamodb_run_search import RunSearch, index_attributes, status_attributes
from .dynamodb_schema import PK, SK
from .dynamodb_table import (
    BODY,
    BODY_REF,
    ConditionFailed,
    Item,
    Table,
    Write,
    backoff,
    merge_iter,
    n,
    number,
    s,
    text,
)

_DERIVED = (("output", "data"), ("error", "error"))
"""Step record fields the engine copies from the step's memo (record field, memo key)."""
_FROM_MEMO = "from_memo"
_READ_RETRIES = 5
_LOAD_THREADS = 8
_MAX_NEW_MEMOS = 99  # a transaction holds 100 writes, one of them the run


class DynamoRunStore:
    def __init__(self, table: Table) -> None:
        self._t = table
        self._known = _KnownMemos()
        self._search = RunSearch(table, self._load_many)

    def create_run(self, run: Run) -> bool:
        # Links first: they are idempotent (same key, same content for a given run id),
        # and a link whose run was never created is skipped by every reader. Written
        # after the run, a crash in between would hide the run from its events instead.
        self._t.batch_put([_link(run, event_id) for event_id in dict.fromkeys(run.event_ids)])
        create = self._t.put(self._run_item(run), condition="attribute_not_exists(#pk)")
        memos = self._memo_writes(run, list(run.memos.items()))
        try:
            self._t.write_all([create, *memos])
        except ConditionFailed:
            return False
        self._known.put(run.id, run.version, frozenset(run.memos))
        return True

    def save_run(self, run: Run, *, expected_version: int) -> bool:
        if run.version != expected_version + 1:
            raise ValueError(
                f"run {run.id}: version {run.version} must be expected_version + 1"
                f" ({expected_version + 1})"
            )
        stored = self._stored_memos(run.id, expected_version)
        if stored is None:
            return False  # no such run, or already past expected_version
        new = [(step, memo) for step, memo in run.memos.items() if step not in stored]
        # Two workers loaded version 4 and both finished step "b":
        #
        #   A: TransactWrite[run 4->5 if ver = 4, memo b if absent]  -> committed
        #   B: TransactWrite[run 4->5 if ver = 4, memo b if absent]  -> cancelled: False
        #
        # The memo rides in the run's transaction, so a loser's memo is never visible
        # and the winner's is never overwritten (write-once even against a stale cache).
        update = self._run_update(run, expected_version, memo_count=len(stored) + len(new))
        try:
            self._t.write_all([update, *self._memo_writes(run, new)])
        except ConditionFailed:
            self._known.drop(run.id)
            return False
        self._known.put(run.id, run.version, stored | {step for step, _ in new})
        return True

    def ack_outbox(self, run: Run) -> bool:
        """One conditional UpdateItem of the run item (its body without the outbox); a
        finished run leaves the live-runs index with it."""
        if run.outbox:
            raise ValueError(f"run {run.id}: acknowledge with the outbox emptied")
        update = self._run_update(run, run.version, memo_count=len(run.memos))
        try:
            self._t.write_all([update])
        except ConditionFailed:
            return False
        return True

    def get_run(self, run_id: str) -> Run | None:
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

    def _stored_memos(self, run_id: str, version: int) -> frozenset[str] | None:
        """The step ids whose memos are stored at ``version``, or None if the run is not at
        that version. Usually known without a read: ``get_run`` (which the engine calls
        before every save) and every successful write remember it."""
        known = self._known.get(run_id, version)
        if known is not None:
            return known
        items = self._t.query(
            "#pk = :pk", {":pk": s(keys.run_partition(run_id))}, projection="#sk, #ver, #v"
        )
        stored_version, memos = None, []
        for item in items:
            if text(item, SK) == keys.RUN_SK:
                stored_version = number(item, "ver")
            else:
                memos.append(item)
        if stored_version != version:
            return None
        return frozenset(keys.step_of_memo(text(m, SK)) for m in memos if number(m, "v") <= version)

    def _decode(self, items: list[Item]) -> Run | None:
        """The run in a partition's items (None if there is none).

        A Query is not isolated from a transaction: it can see one item of a save before
        and another after it. A memo newer than the run item is left out (its save has
        not happened as far as this run item knows); fewer memos than the run item
        counts raises ``_TornRead``, and the caller reads again.
        """
        head = next((item for item in items if text(item, SK) == keys.RUN_SK), None)
        if head is None:
            return None
        version = number(head, "ver")
        memos = sorted(
            (
                item
                for item in items
                if text(item, SK).startswith(keys.MEMO_PREFIX) and number(item, "v") <= version
            ),
            key=lambda item: (number(item, "v"), number(item, "i")),
        )
        if len(memos) < number(head, "memos"):
            raise _TornRead
        doc = self._t.decode_body(head)
        doc["memos"] = {keys.step_of_memo(text(m, SK)): self._t.decode_body(m) for m in memos}
        _restore_outputs(doc)
        run = run_from_dict(doc)
        self._known.put(run.id, run.version, frozenset(run.memos))
        return run

    def _load_many(self, run_ids: list[str]) -> list[Run]:
        """Each run by its own Query, a few at a time; runs that are gone are skipped."""
        if len(run_ids) <= 1:
            loaded: Iterable[Run | None] = [self.get_run(run_id) for run_id in run_ids]
        else:
            with ThreadPoolExecutor(max_workers=min(_LOAD_THREADS, len(run_ids))) as pool:
                loaded = list(pool.map(self.get_run, run_ids))
        return [run for run in loaded if run is not None]

    # -- items -------------------------------------------------------------------

    def _run_item(self, run: Run) -> Item:
        shard = keys.shard_of(run.id, keys.RUN_SHARDS)
        item: Item = {
            PK: s(keys.run(run.id).pk),
            SK: s(keys.RUN_SK),
            "ver": n(run.version),
            "memos": n(len(run.memos)),
            "run_id": s(run.id),
            "run_shard": s(keys.runs_by_time(shard)),
            **index_attributes(run),
            **self._body(run),
        }
        if _needs_sweep(run):
            item["run_live"] = s(keys.live_runs(shard))
        return item

    def _run_update(self, run: Run, expected_version: int, *, memo_count: int) -> Write:
        body = self._body(run)
        (kept,) = body
        (dropped,) = {BODY, BODY_REF} - {kept}
        removed = [dropped]
        if not _needs_sweep(run):
            removed.append("run_live")  # leaves the live-runs index: its one index write
        # The status keys move the run between the search indexes' status partitions;
        # rewritten with the same value (most saves) they cost the indexes nothing.
        moved = status_attributes(run)
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
        return self._t.update(
            keys.run(run.id), expression, condition="#ver = :expected", values=values
        )

    def _memo_writes(self, run: Run, memos: Sequence[tuple[str, JSON]]) -> list[Write]:
        if len(memos) > _MAX_NEW_MEMOS:
            raise StoreError(
                f"run {run.id}: {len(memos)} new memos in one write; a DynamoDB transaction"
                f" holds the run and at most {_MAX_NEW_MEMOS} memos"
            )
        writes = []
        for index, (step_id, memo) in enumerate(memos):
            item: Item = {
                PK: s(keys.memo(run.id, step_id).pk),
                SK: s(keys.memo(run.id, step_id).sk),
                "v": n(run.version),  # written at this version: orders memos, hides torn reads
                "i": n(index),
                **self._t.encode_body(
                    memo,
                    kind="memo",
                    owner=f"{run.id}/{step_id}",
                    what=f"memo of run {run.id} step {step_id}",
                ),
            }
            writes.append(self._t.put(item, condition="attribute_not_exists(#pk)"))
        return writes

    def _body(self, run: Run) -> Item:
        doc = run_to_dict(run)
        del doc["memos"]  # one item per memo
        _strip_outputs(doc, run.memos)
        return self._t.encode_body(
            doc, kind="run", owner=run.id, what=f"run {run.id} (without its memos)"
        )


def _needs_sweep(run: Run) -> bool:
    """In the live-runs index: not finished, or finished with effects still to apply."""
    return not run.status.is_terminal or bool(run.outbox)


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


def _strip_outputs(doc: dict[str, Any], memos: Mapping[str, JSON]) -> None:
    """Replace step outputs that ARE (identity, not equality) their memo's value by a
    reference to it. Identity is exact: ``1 == True`` but ``1 is not True``; and it holds
    on the engine's path, which builds the record from the memo object, and after a load,
    since ``_restore_outputs`` puts the memo's object back."""
    for step in doc.get("steps", ()):
        memo = memos.get(step["id"])
        if not isinstance(memo, Mapping):
            continue
        derived = [f for f, k in _DERIVED if step[f] is not None and step[f] is memo.get(k)]
        for field in derived:
            step[field] = None
        if derived:
            step[_FROM_MEMO] = derived


def _restore_outputs(doc: dict[str, Any]) -> None:
    memo_key = dict(_DERIVED)
    for step in doc.get("steps", ()):
        for field in step.pop(_FROM_MEMO, ()):
            # Memos are write-once: the stored one is what the record refers to.
            memo = doc["memos"].get(step["id"])
            step[field] = memo.get(memo_key[field]) if isinstance(memo, Mapping) else None


class _KnownMemos:
    """Which memos each recently seen run holds at a given version.

    Never stale: a version is written exactly once (conditionally), so the memos stored
    at (run, version) never change. Bounded: the oldest entries are dropped first.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._by_run: dict[str, tuple[int, frozenset[str]]] = {}

    def get(self, run_id: str, version: int) -> frozenset[str] | None:
        with self._lock:
            entry = self._by_run.get(run_id)
        return entry[1] if entry is not None and entry[0] == version else None

    def put(self, run_id: str, version: int, step_ids: frozenset[str]) -> None:
        with self._lock:
            self._by_run.pop(run_id, None)
            self._by_run[run_id] = (version, step_ids)
            while len(self._by_run) > self._size:
                del self._by_run[next(iter(self._by_run))]

    def drop(self, run_id: str) -> None:
        with self._lock:
            self._by_run.pop(run_id, None)
