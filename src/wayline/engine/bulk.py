"""Bulk rerun by filter (``POST /v1/reruns``): a dry run first, then a paced job.

Users asked for replay by filter with a dry-run count, and for "select all" to be
impossible (user-asks §10): a filter needs the function, at least one status and a time
range, and one job reruns at most ``MAX_RUNS`` runs.

Pacing: a job reruns ``RERUNS_PER_TICK`` runs per ``TICK_MS`` (10 a second). Each rerun
starts through ``Service.start``, so the function's flow control (concurrency, throttle,
rate limit, singleton, a pause) applies to every one of them as to a new event.

The job is one versioned value in the ``Counters`` port (``reruns:<id>``, kept 7 days),
advanced by a chain of work items (kind ``reruns``, one per tick). A tick enqueues the
next one before it works, so a crash never strands a job, and each rerun's run id is
derived from (job, old run, tick time): a tick delivered twice creates no second run.
Listing the candidates reads up to ``SCAN_LIMIT`` runs of the function (on DynamoDB an
index Query plus one Query per run), which is why it is bounded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConflictError, NotFoundError, StoreError, ValidationError
from . import expr, redrive
from .durations import parse_time
from .ids import ulid
from .model import JSON, Run, RunStatus, WorkItem, WorkKind
from .runops import RunOps

if TYPE_CHECKING:
    from .service import Service

RERUNS_PER_TICK = 10
TICK_MS = 1_000
MAX_RUNS = 1_000
SCAN_LIMIT = 10_000
DRY_RUN_IDS = 20
JOB_TTL_MS = 7 * 24 * 3600 * 1000
_RERUNNABLE = tuple(s.value for s in RunStatus if s.is_terminal)
_MAX_CAS_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class RerunFilter:
    function_id: str
    statuses: frozenset[RunStatus]
    since: int
    until: int
    condition: str | None
    mode: str

    def matches(self, run: Run, *, now: int) -> bool:
        trigger = run.events[0] if run.events else {}
        return (
            run.status in self.statuses
            and self.since <= run.created_at < self.until
            and expr.matches(self.condition, event=trigger, now_ms=now)
        )

    def to_json(self) -> dict[str, JSON]:
        return {
            "function_id": self.function_id,
            "status": sorted(s.value for s in self.statuses),
            "since": self.since,
            "until": self.until,
            "if": self.condition,
            "from": self.mode,
        }


def parse_filter(body: Mapping[str, JSON]) -> RerunFilter:
    """Validate a bulk rerun request; every refusal names the field."""
    function_id = body.get("function_id")
    if not isinstance(function_id, str) or not function_id:
        raise ValidationError(
            "function_id is required (no rerun of every function)", field="function_id"
        )
    if body.get("app_id"):
        prefix = f"{body['app_id']}-"
        function_id = function_id if function_id.startswith(prefix) else prefix + function_id
    status = body.get("status")
    if not isinstance(status, list) or not status:
        raise ValidationError(
            f"status must be a non-empty list of {', '.join(_RERUNNABLE)}", field="status"
        )
    bad = [s for s in status if s not in _RERUNNABLE]
    if bad:
        raise ValidationError(
            f"status {bad[0]!r} cannot be rerun; use {', '.join(_RERUNNABLE)}", field="status"
        )
    for name in ("since", "until"):
        if not isinstance(body.get(name), str) or not body.get(name):
            raise ValidationError(
                f"{name} is required: a bulk rerun needs a time range (ISO-8601)", field=name
            )
    since = parse_time(str(body["since"]), field="since")
    until = parse_time(str(body["until"]), field="until")
    if since >= until:
        raise ValidationError("since must be before until", field="since")
    condition = body.get("if")
    if condition is not None and not isinstance(condition, str):
        raise ValidationError("if must be a CEL expression string", field="if")
    if condition:
        expr.validate(condition, field="if")
    mode = redrive.check_mode(body.get("from"))
    statuses = frozenset(RunStatus(s) for s in status)
    if mode == redrive.FROM_FAILED_STEP and statuses != {RunStatus.FAILED}:
        raise ValidationError(
            'from "failed_step" redrives Failed runs only: status must be ["Failed"]',
            field="status",
        )
    return RerunFilter(function_id, statuses, since, until, condition or None, mode)


def job_key(job_id: str) -> str:
    return f"reruns:{job_id}"


def rerun_id(job_id: str, old_run_id: str, *, at: int) -> str:
    """The id of the run a job makes of ``old_run_id``: the same on every delivery."""
    digest = hashlib.sha256(f"{job_id}/{old_run_id}".encode()).digest()
    return ulid(at, digest[:10])


def progress(job: Mapping[str, JSON]) -> dict[str, JSON]:
    """The job as ``GET /v1/reruns/{id}`` shows it."""
    pending = list(job.get("pending") or [])
    done = dict(job.get("rerun") or {})
    errors = dict(job.get("errors") or {})
    return {
        "id": job.get("id"),
        "status": "running" if pending else "done",
        "filter": job.get("filter"),
        "created_at": job.get("created_at"),
        "rate_per_s": RERUNS_PER_TICK * 1000 // TICK_MS,
        "total": job.get("total"),
        "done": len(done) + len(errors),
        "pending": len(pending),
        "reruns": done,
        "errors": errors,
    }


class BulkReruns:
    def __init__(self, service: Service) -> None:
        self._service = service

    def matching(self, flt: RerunFilter) -> list[Run]:
        if self._service.store.apps.get_function(flt.function_id) is None:
            raise NotFoundError(f"function {flt.function_id!r} not found")
        now = self._service.now()
        runs = self._service.store.runs.list_runs(function_id=flt.function_id, limit=SCAN_LIMIT)
        return sorted((r for r in runs if flt.matches(r, now=now)), key=lambda r: r.id)

    def dry_run(self, flt: RerunFilter) -> dict[str, JSON]:
        found = self.matching(flt)
        return {
            "dry_run": True,
            "count": len(found),
            "run_ids": [r.id for r in found[:DRY_RUN_IDS]],
            "max_runs": MAX_RUNS,
            "rate_per_s": RERUNS_PER_TICK * 1000 // TICK_MS,
        }

    def create(self, flt: RerunFilter) -> dict[str, JSON]:
        found = self.matching(flt)
        if len(found) > MAX_RUNS:
            raise ValidationError(
                f"the filter matches {len(found)} runs; one bulk rerun takes at most "
                f"{MAX_RUNS}: narrow since/until, status or if",
                field="until",
            )
        now, job_id = self._service.now(), self._service.new_id()
        job: dict[str, JSON] = {
            "id": job_id,
            "filter": flt.to_json(),
            "created_at": now,
            "total": len(found),
            "pending": [r.id for r in found],
            "rerun": {},
            "errors": {},
        }
        counters = self._service.store.counters
        if not counters.put(job_key(job_id), job, expected_version=0, now=now, ttl_ms=JOB_TTL_MS):
            raise StoreError(f"bulk rerun {job_id}: the id is taken")  # pragma: no cover
        self._service.enqueue([_tick(job_id, 0, at=now)])
        return progress(job)

    def get(self, job_id: str) -> dict[str, JSON]:
        found = self._service.store.counters.get(job_key(job_id), now=self._service.now())
        if found is None or not isinstance(found.value, dict):
            raise NotFoundError(f"bulk rerun {job_id!r} not found")
        return progress(found.value)

    def advance(self, item: WorkItem) -> None:
        """One tick: rerun the next ``RERUNS_PER_TICK`` runs of job ``item.ref``."""
        job_id = item.ref or ""
        counters, now = self._service.store.counters, self._service.now()
        found = counters.get(job_key(job_id), now=now)
        if found is None or not isinstance(found.value, dict):
            return
        pending = list(found.value.get("pending") or [])
        if not pending:
            return
        self._service.enqueue([_tick(job_id, item.attempt + 1, at=item.at + TICK_MS)])
        mode = str(dict(found.value.get("filter") or {}).get("from") or redrive.FROM_START)
        ops, results, errors = RunOps(self._service), {}, {}
        for old_id in pending[:RERUNS_PER_TICK]:
            try:
                new = ops.rerun(old_id, mode=mode, new_id=rerun_id(job_id, old_id, at=item.at))
                results[old_id] = new.id
            except (ConflictError, NotFoundError) as exc:  # recorded; a store error retries
                errors[old_id] = str(exc)
        self._record(job_id, results, errors)

    def _record(self, job_id: str, results: dict[str, str], errors: dict[str, str]) -> None:
        counters, key = self._service.store.counters, job_key(job_id)
        handled = set(results) | set(errors)
        for _ in range(_MAX_CAS_ATTEMPTS):
            now = self._service.now()
            found = counters.get(key, now=now)
            if found is None or not isinstance(found.value, dict):
                return
            job = dict(found.value)
            job["pending"] = [r for r in job.get("pending") or [] if r not in handled]
            job["rerun"] = {**dict(job.get("rerun") or {}), **results}
            # A tick delivered twice at once: the copy that lost the start race saw no run
            # yet; the rerun the other made is what counts.
            job["errors"] = {
                k: v
                for k, v in {**dict(job.get("errors") or {}), **errors}.items()
                if k not in job["rerun"]
            }
            if counters.put(key, job, expected_version=found.version, now=now, ttl_ms=JOB_TTL_MS):
                return
        raise StoreError(f"{key}: gave up after {_MAX_CAS_ATTEMPTS} conflicting writes")


def _tick(job_id: str, n: int, *, at: int) -> WorkItem:
    return WorkItem(
        id=f"reruns:{job_id}:{n}", run_id="", kind=WorkKind.RERUNS, at=at, attempt=n, ref=job_id
    )
