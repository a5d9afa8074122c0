"""Run search on DynamoDB: four sparse, sharded, keys-only indexes and no Scan.

Every run item carries ``run_ord = <created_at, 16 digits>#<run id>``, the sort key of
all four search indexes, so "newest first" is a descending Query, ``since``/``until`` and
the cursor are one ``BETWEEN`` on the sort key, and a page is a k-way merge of the shards'
Query results (``merge_sorted``). Partition keys are sharded by ``crc32(run id) % 4``
(``keys.RUN_SHARDS``): a busy function, or the ``Running`` status that every run passes
through, is spread over four GSI partitions instead of being one hot key (a partition
takes ~1,000 writes/s). The shards' first pages are fetched in parallel.

Query plan per filter (K = ``RUN_SHARDS`` = 4, S = number of statuses asked for, L =
limit; a keys-only index entry is ~100 bytes, so one 1 MB page holds far more than a
page of runs, and ``L + 1`` keys of one shard cost ceil((L + 1) * 100 B / 4 KB) * 0.5
read units, eventually consistent: 1 unit for L = 50):

============================  ======================  ===============================  =====
filter                        index                   partition key (per shard n)      Query
============================  ======================  ===============================  =====
none (all runs)               run_search_all          run_shard = RUN#<n>              K
function_id                   run_search_fn           run_fns = FNS#<n>#<fn>           K
statuses                      run_search_status       run_st = ST#<status>#<n>         K * S
function_id + statuses        run_search_fn_status    run_fst = FST#<status>#<n>#<fn>  K * S
event_id (+ anything)         table (links)           pk = EVR#<event id>              1
============================  ======================  ===============================  =====

``since``/``until``/``cursor`` narrow the sort-key range of the same Queries (no extra
reads). Then each run on the page is read by its own Query on the table (strongly
consistent, ceil(run KB / 4) units: ~1 for a small run): a page of 50 small runs with no
filter costs about 4 + 50 = 54 read units. The event filter reads the event's link items
(one per run the event started: one per matching function, so a handful) and then those
runs, and applies the other filters to them in memory.

Index reads are eventually consistent: a run whose status changed a moment ago can still
be listed under the old one. Each run read back is checked against the query
(``search.matches``) and left out if it no longer matches, so a page never shows a run in a
status it is not in; it may be one run short, and still has its cursor.

Write costs the indexes add: a new run is one entry in each of the four indexes (4 write
units); a status change moves the run in the two status indexes (delete + put: 4 write
units). ``Queued`` and ``Running`` share one status partition, ``Live``
(``partition_status``), so a run moves once (Live -> finished), not twice: Queued ->
Running, which every run does, rewrites the same key values, which writes nothing to an
index. Saves that keep the status do the same.

The price of the shared partition is on the read side: a search for Running alone reads
the Queued runs' entries too and drops them after loading them (``search.matches``), then
reads on (``_ROUNDS`` index reads at most) to fill the page. Queued is short-lived (until
the run's first call), so few such entries exist at a time. A search for Queued or Running
also reads the status's own partition, where runs saved before the shared partition
existed stay until their next save (a Query of an empty partition: 0.5 read units).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from wayline.engine import search
from wayline.engine.model import Run, RunStatus
from wayline.engine.ports import RunPage, RunQuery

from . import keys
from .dynamodb_table import Item, Table, merge_sorted, s, text

_PARALLEL = 8
_MAX_PAGE = 1000
_ROUNDS = 4
_ORDER = "run_ord"


def index_attributes(run: Run) -> Item:
    """The search-index attributes of a run item (``status``-dependent ones included)."""
    shard = keys.shard_of(run.id, keys.RUN_SHARDS)
    return {
        _ORDER: s(keys.run_order(run.created_at, run.id)),
        "run_fns": s(keys.runs_of_function(run.function_id, shard)),
        **status_attributes(run),
    }


LIVE_PARTITION = "Live"
"""The status partition that ``Queued`` and ``Running`` runs share (see the module doc)."""
_SHARING = frozenset({RunStatus.QUEUED.value, RunStatus.RUNNING.value})


def partition_status(status: str) -> str:
    """The status partition a run in ``status`` is indexed under."""
    return LIVE_PARTITION if status in _SHARING else status


def _partitions_of(statuses: list[str]) -> list[str]:
    """The status partitions to read for ``statuses``: ``Live`` once for Queued and
    Running, plus their own (layout-1) partitions, where a run saved before the shared
    partition stays until its next save."""
    wanted = [partition_status(status) for status in statuses]
    wanted += [status for status in statuses if status in _SHARING]
    return list(dict.fromkeys(wanted))


def status_attributes(run: Run) -> Item:
    """The attributes a save rewrites: they move the run between status partitions."""
    shard = keys.shard_of(run.id, keys.RUN_SHARDS)
    status = partition_status(run.status.value)
    return {
        "run_st": s(keys.runs_in_status(status, shard)),
        "run_fst": s(keys.runs_of_function_in_status(run.function_id, status, shard)),
    }


class RunSearch:
    def __init__(self, table: Table, load: Callable[[list[str]], list[Run]]) -> None:
        self._t = table
        self._load = load

    def search(self, query: RunQuery) -> RunPage:
        """``query`` without its limit checked (``list_runs`` asks for up to 10,000).

        Index entries whose run does not match (a Queued run under ``Live`` when Running
        was asked for, a stale status) are skipped and the next entries read, up to
        ``_ROUNDS`` index reads, so a page is full unless it ends or the rounds run out
        (then it is short and carries the cursor of the last run examined)."""
        if query.event_id is not None:
            return self._of_event(query)
        found: list[Run] = []
        cursor = query.cursor
        for _ in range(_ROUNDS):
            need = query.limit - len(found)
            page = self._round(replace(query, limit=need, cursor=cursor))
            found += page.runs
            cursor = page.cursor
            if cursor is None or len(found) >= query.limit:
                break
        return RunPage(found, cursor)

    def _round(self, query: RunQuery) -> RunPage:
        """One read of the indexes: the next ``query.limit`` entries, the runs among them
        that match, and the cursor of the last entry if more follow."""
        low, high = _order_range(query)
        if low > high:
            return RunPage([], None)
        attribute, index, partitions = _plan(query)
        skip = _cursor_order(query)
        page_size = min(query.limit + 1, _MAX_PAGE)
        streams = [
            self._t.query(
                f"#{attribute} = :p AND #{_ORDER} BETWEEN :low AND :high",
                {":p": s(partition), ":low": s(low), ":high": s(high)},
                index=index,
                forward=False,
                page_size=page_size,
            )
            for partition in partitions
        ]
        ready = [_without(stream, skip) for stream in _prefetched(streams)]
        picked = merge_sorted(ready, _ORDER, descending=True, limit=query.limit + 1)
        more = len(picked) > query.limit
        picked = picked[: query.limit]
        order = [keys.run_order_parts(text(item, _ORDER)) for item in picked]
        runs = self._load([run_id for _, run_id in order])
        cursor = search.cursor_at(*order[-1]) if more else None
        return RunPage([run for run in runs if search.matches(query, run)], cursor)

    def _of_event(self, query: RunQuery) -> RunPage:
        assert query.event_id is not None
        links = self._t.query(
            "#pk = :pk", {":pk": s(keys.runs_of_event(query.event_id))}, page_size=_MAX_PAGE
        )
        runs = self._load([text(item, "link_run") for item in links])
        found = sorted(
            (r for r in runs if search.matches(query, r) and search.after_cursor(query, r)),
            key=search.order_key,
            reverse=True,
        )
        page = found[: query.limit]
        more = len(found) > query.limit
        return RunPage(page, search.run_cursor(page[-1]) if more else None)


def _plan(query: RunQuery) -> tuple[str, str, list[str]]:
    """Which index serves ``query``, and the partitions (shards) to read from it."""
    shards = range(keys.RUN_SHARDS)
    fn, statuses = query.function_id, [status.value for status in query.statuses]
    partitions = _partitions_of(statuses)
    if fn is not None and statuses:
        parts = [keys.runs_of_function_in_status(fn, st, n) for st in partitions for n in shards]
        return "run_fst", "run_search_fn_status", parts
    if fn is not None:
        return "run_fns", "run_search_fn", [keys.runs_of_function(fn, n) for n in shards]
    if statuses:
        parts = [keys.runs_in_status(st, n) for st in partitions for n in shards]
        return "run_st", "run_search_status", parts
    return "run_shard", "run_search_all", [keys.runs_by_time(n) for n in shards]


def _order_range(query: RunQuery) -> tuple[str, str]:
    """The inclusive sort-key range of ``query``: ``until`` and the cursor are exclusive,
    the first because no run order equals a bare time, the second by ``_without``."""
    low = keys.run_order_floor(query.since or 0)
    highs = [keys.RUN_ORDER_CEILING]
    if query.until is not None:
        highs.append(keys.run_order_floor(query.until))
    skip = _cursor_order(query)
    if skip is not None:
        highs.append(skip)
    return low, min(highs)


def _cursor_order(query: RunQuery) -> str | None:
    if query.cursor is None:
        return None
    return keys.run_order(*search.parse_cursor(query.cursor))


def _without(stream: Iterator[Item], order: str | None) -> Iterator[Item]:
    return (item for item in stream if text(item, _ORDER) != order)


def _prefetched(streams: list[Iterator[Item]]) -> list[Iterator[Item]]:
    """The streams with their first page fetched, all shards at once: the merge needs
    every shard's head before it can return anything."""
    if len(streams) <= 1:
        return streams
    with ThreadPoolExecutor(max_workers=min(_PARALLEL, len(streams))) as pool:
        heads = list(pool.map(lambda stream: list(itertools.islice(stream, 1)), streams))
    return [itertools.chain(head, stream) for head, stream in zip(heads, streams, strict=True)]
