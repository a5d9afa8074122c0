"""Pure key builders for the DynamoDB single table: every ``pk``/``sk`` and GSI key string.

No boto3 here: keys are plain strings, unit-tested without AWS. The layout (the table
definition itself is in ``dynamodb_schema``)::

    item          pk                 sk              GSI key attributes
    event         EVT#<internal_id>  EVT             ev_name=EVN#<n>#<name>, ev_shard=EVT#<n>,
                                                     ev_id
    app           APPS               APP#<app_id>
    function      FNS                FN#<fn_id>      fn_app=APP#<app_id>, fn_id
    run           RUN#<run_id>       RUN             run_shard=RUN#<n>, run_id,
                                                     run_live=LIVE#<n> (only while the run is live),
                                                     run_ord=<created_at>#<run_id>,
                                                     run_fns=FNS#<n>#<fn_id>,
                                                     run_st=ST#<status>#<n>,
                                                     run_fst=FST#<status>#<n>#<fn_id>
    memo          RUN#<run_id>       MEMO#<step_id>  (with the step's timeline record)
    outbox ack    RUN#<run_id>       RUN#ACK
    run's events  RUN#<run_id>       EVENTS
    run of event  EVR#<event_id>     RUN#<run_id>
    idempotency   IDEM#<key>         IDEM
    queue item    Q#<item_id>        Q               q_part=QUEUE, q_due=<due>#<item_id>
    wait          WAIT#<wait_id>     WAIT            wait_event=WEV#<name> (shard 0) or
                                                     WEV#<n>#<name> (shards 1..3),
                                                     wait_order=<created_at>#<wait_id>
    lease key     LEASE#<key>        LEASE
    parked item   PARK#<key>         <at>#<item_id>   (a work item blocked by concurrency key <key>)
    counter       CTR#<key>          CTR

A run and its memos share a partition, so one Query loads a whole run. Every key part
that comes from outside (names, ids, idempotency keys) follows a fixed prefix, so no key
is ever empty and no two kinds of item collide. Times inside sort keys are zero-padded
to a fixed width, so string order is time order.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from typing import NamedTuple

EVENT_SHARDS = 4
"""Partitions of the "all events" index, and of each event name in the by-name index
(one name can be sent as often as all events together). A GSI partition takes about
1,000 writes/s and ULID sort keys always write its tail, so a single partition would cap
ingest there; N shards raise the cap N times for N queries per listing. Part of the data
format: changing it needs a backfill."""

RUN_SHARDS = 4
"""Partitions of the "all runs" and "live runs" indexes (same reasoning as EVENT_SHARDS)."""

WAIT_SHARDS = 4
"""Partitions of each event name in the ``waits_by_event`` index (by wait id): every run
of a busy function waiting for one event name puts and deletes a wait, 2 writes per run,
so 1,000 runs/s would be 2,000 writes/s on one partition. Each ingested event reads all
of its name's shards (N Queries). Part of the data format: shard 0 keeps the unsharded
key, so waits stored before the sharding are still found; changing the count needs a
backfill."""

APPS_PARTITION = "APPS"
FUNCTIONS_PARTITION = "FNS"
QUEUE_PARTITION = "QUEUE"
RUN_SK = "RUN"
RUN_EVENTS_SK = "EVENTS"
"""Sorts before the memos and the run item: a run's events, written once."""
RUN_ACK_SK = "RUN#ACK"
"""Sorts right after ``RUN_SK``: one Query from ``RUN`` on reads the run item and it."""
MEMO_PREFIX = "MEMO#"

_TIME_WIDTH = 16  # 2^48 ms (the ULID range) has 15 digits
_SAFE_OWNER = re.compile(r"[A-Za-z0-9._:-]{1,200}(/[A-Za-z0-9._:-]{1,200}){0,3}")
_MAX_PART_BYTES = 1024
"""Longest outside text kept verbatim in a key (DynamoDB allows 2,048 bytes for a
partition key, 1,024 for a sort key); longer text is replaced by its SHA-256."""


class Key(NamedTuple):
    pk: str
    sk: str


def _part(prefix: str, text: str) -> str:
    """``prefix#text``, or ``prefix~#<sha256>`` for text too long for a key.

    The ``~`` keeps a hashed key from ever equalling a verbatim one.
    """
    raw = text.encode("utf-8")
    if len(raw) <= _MAX_PART_BYTES:
        return f"{prefix}#{text}"
    return f"{prefix}~#{hashlib.sha256(raw).hexdigest()}"


def padded_ms(ms: int) -> str:
    """A time in ms as fixed-width digits, so that string order is numeric order."""
    if not 0 <= ms < 10**_TIME_WIDTH:
        raise ValueError(f"time {ms} is outside [0, 10^{_TIME_WIDTH}) ms")
    return f"{ms:0{_TIME_WIDTH}d}"


def shard_of(ident: str, shards: int) -> int:
    """A stable shard number for an id (CRC-32: the same in every process and version)."""
    return zlib.crc32(ident.encode("utf-8")) % shards


# -- events --------------------------------------------------------------------------


def event(internal_id: str) -> Key:
    return Key(_part("EVT", internal_id), "EVT")


def events_by_name(name: str, shard: int) -> str:
    """One of ``EVENT_SHARDS`` partitions of an event name (by event id): one name sent
    1,000 times a second would otherwise be one GSI partition at its write limit."""
    return _part(f"EVN#{shard}", name)


def events_by_time(shard: int) -> str:
    return f"EVT#{shard}"


# -- apps and functions ----------------------------------------------------------------


def app(app_id: str) -> Key:
    return Key(APPS_PARTITION, _part("APP", app_id))


def function(fn_id: str) -> Key:
    return Key(FUNCTIONS_PARTITION, _part("FN", fn_id))


def functions_by_app(app_id: str) -> str:
    return _part("APP", app_id)


# -- runs and memos --------------------------------------------------------------------


def run_partition(run_id: str) -> str:
    return _part("RUN", run_id)


def run(run_id: str) -> Key:
    return Key(run_partition(run_id), RUN_SK)


def run_events(run_id: str) -> Key:
    return Key(run_partition(run_id), RUN_EVENTS_SK)


def run_ack(run_id: str) -> Key:
    """The marker that says up to which version a run's outbox was applied."""
    return Key(run_partition(run_id), RUN_ACK_SK)


def memo(run_id: str, step_id: str) -> Key:
    return Key(run_partition(run_id), MEMO_PREFIX + step_id)


def step_of_memo(sk: str) -> str:
    """The step id in a memo's sort key (the inverse of ``memo(...).sk``)."""
    if not sk.startswith(MEMO_PREFIX):
        raise ValueError(f"not a memo sort key: {sk!r}")
    return sk[len(MEMO_PREFIX) :]


def run_of_event(event_id: str, run_id: str) -> Key:
    """The link item that lists ``run_id`` under one of the events that started it."""
    return Key(runs_of_event(event_id), _part("RUN", run_id))


def runs_of_event(event_id: str) -> str:
    return _part("EVR", event_id)


def runs_by_time(shard: int) -> str:
    return f"RUN#{shard}"


def live_runs(shard: int) -> str:
    return f"LIVE#{shard}"


def run_order(created_at: int, run_id: str) -> str:
    """Sort key of the run search indexes: newest first is descending string order."""
    return f"{padded_ms(created_at)}#{run_id}"


def run_order_parts(sort_key: str) -> tuple[int, str]:
    """``(created_at, run_id)`` of a ``run_order`` sort key."""
    return int(sort_key[:_TIME_WIDTH]), sort_key[_TIME_WIDTH + 1 :]


def run_order_floor(created_at: int) -> str:
    """Sorts before every ``run_order`` of a run created at or after ``created_at``."""
    return padded_ms(created_at)


RUN_ORDER_CEILING = "~"
"""Sorts after every ``run_order`` (``~`` is above every digit)."""


def runs_of_function(fn_id: str, shard: int) -> str:
    """Partition of the run search by function: sharded, so no function is one hot key."""
    return _part(f"FNS#{shard}", fn_id)


def runs_in_status(status: str, shard: int) -> str:
    return f"ST#{status}#{shard}"


def runs_of_function_in_status(fn_id: str, status: str, shard: int) -> str:
    return _part(f"FST#{status}#{shard}", fn_id)


# -- idempotency, queue, waits -----------------------------------------------------------


def idempotency(key: str) -> Key:
    return Key(_part("IDEM", key), "IDEM")


def queue_item(item_id: str) -> Key:
    return Key(_part("Q", item_id), "Q")


def queue_due(due_ms: int, item_id: str) -> str:
    """Sort key in the due-time index: when the item is next claimable, then its id."""
    return f"{padded_ms(due_ms)}#{item_id}"


def queue_due_before(ms: int) -> str:
    """Upper bound (exclusive) of the sort keys of items due at or before ``ms``."""
    return padded_ms(ms + 1)


def due_of(queue_due_sk: str) -> int:
    """The due time in a ``queue_due`` sort key."""
    return int(queue_due_sk[:_TIME_WIDTH])


def item_of_due(queue_due_sk: str) -> str:
    """The item id in a ``queue_due`` sort key."""
    return queue_due_sk[_TIME_WIDTH + 1 :]


def wait(wait_id: str) -> Key:
    return Key(_part("WAIT", wait_id), "WAIT")


def waits_by_event(event_name: str, shard: int = 0) -> str:
    """Shard 0 is ``WEV#<name>``, the key every wait had before ``WAIT_SHARDS``."""
    return _part("WEV" if shard == 0 else f"WEV#{shard}", event_name)


def wait_order(created_at: int, wait_id: str) -> str:
    return f"{padded_ms(created_at)}#{wait_id}"


# -- flow control ----------------------------------------------------------------------


def lease(key: str) -> Key:
    return Key(_part("LEASE", key), "LEASE")


def counter(key: str) -> Key:
    return Key(_part("CTR", key), "CTR")


def parked(key: str) -> str:
    """The partition of a concurrency key's parked (blocked) work items."""
    return _part("PARK", key)


def parked_item(key: str, at: int, item_id: str) -> Key:
    """A parked item: sorted by its due time, then id, so the oldest is the first."""
    return Key(parked(key), f"{padded_ms(at)}#{item_id}")


# -- S3 offload ----------------------------------------------------------------------


def blob(kind: str, owner: str, data: bytes) -> str:
    """S3 key of an offloaded body, e.g. ``memo/<run_id>/<step_id>/<sha256>``.

    Content-addressed: a retried or raced upload of the same bytes writes the same object,
    and a different body (a racer that lost) never overwrites the one an item points to.
    ``owner`` is kept readable when it is made of key-safe characters, else hashed.
    """
    if not _SAFE_OWNER.fullmatch(owner):
        owner = "h/" + hashlib.sha256(owner.encode("utf-8")).hexdigest()
    return f"{kind}/{owner}/{hashlib.sha256(data).hexdigest()}"
