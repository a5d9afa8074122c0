"""Model objects to and from JSON-compatible dicts: the one serialization every store uses.

Storage-agnostic on purpose (SQLite today, DynamoDB later): ``*_to_dict`` returns only
JSON types (dict, list, str, int, float, bool, None), so ``loads(dumps(d)) == d`` and a
body read back from any backend compares equal to a freshly encoded one. ``*_from_dict``
is the exact inverse: enums by value, tuples back to tuples, ``planned`` back to a
frozenset. Fields that have a default in the model are read with ``.get`` so bodies
written before a field was added still decode.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wayline.engine.model import (
    JSON,
    App,
    Attempt,
    Event,
    FunctionDef,
    InvokeParent,
    Outbox,
    Run,
    RunStatus,
    SeededStep,
    StepRecord,
    StepStatus,
    Trigger,
    Wait,
    WaitKind,
    WorkItem,
    WorkKind,
)

Body = dict[str, JSON]
"""An encoded model object."""

Doc = Mapping[str, Any]
"""A decoded body, as ``loads`` or a backend hands it back."""


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every ``dumps``: ``json.dumps`` with options builds a new one per call."""


def dumps(value: JSON) -> str:
    """Compact JSON text; non-ASCII kept as is (the stores hold UTF-8)."""
    return _COMPACT.encode(value)


def loads(text: str | bytes) -> JSON:
    return json.loads(text)


# -- events, apps, functions -------------------------------------------------------------


def event_to_dict(event: Event) -> Body:
    return {
        "internal_id": event.internal_id,
        "name": event.name,
        "data": dict(event.data),
        "user": dict(event.user),
        "id": event.id,
        "ts": event.ts,
        "v": event.v,
        "received_at": event.received_at,
        "replay_of": event.replay_of,
    }


def event_from_dict(d: Doc) -> Event:
    return Event(
        internal_id=d["internal_id"],
        name=d["name"],
        data=dict(d["data"]),
        user=dict(d["user"]),
        id=d["id"],
        ts=d["ts"],
        v=d.get("v"),
        received_at=d.get("received_at", 0),
        replay_of=d.get("replay_of"),
    )


def app_to_dict(app: App) -> Body:
    return {
        "id": app.id,
        "url": app.url,
        "sdk": app.sdk,
        "framework": app.framework,
        "synced_at": app.synced_at,
    }


def app_from_dict(d: Doc) -> App:
    return App(
        id=d["id"],
        url=d["url"],
        sdk=d.get("sdk", ""),
        framework=d.get("framework", ""),
        synced_at=d.get("synced_at", 0),
    )


def _trigger_to_dict(trigger: Trigger) -> Body:
    return {"event": trigger.event, "expression": trigger.expression, "cron": trigger.cron}


def _trigger_from_dict(d: Doc) -> Trigger:
    return Trigger(event=d.get("event"), expression=d.get("expression"), cron=d.get("cron"))


def function_to_dict(fn: FunctionDef) -> Body:
    return {
        "id": fn.id,
        "app_id": fn.app_id,
        "name": fn.name,
        "url": fn.url,
        "triggers": [_trigger_to_dict(t) for t in fn.triggers],
        "retries": fn.retries,
        "config": dict(fn.config),
    }


def function_from_dict(d: Doc) -> FunctionDef:
    return FunctionDef(
        id=d["id"],
        app_id=d["app_id"],
        name=d["name"],
        url=d["url"],
        triggers=tuple(_trigger_from_dict(t) for t in d["triggers"]),
        retries=d["retries"],
        config=dict(d.get("config", {})),
    )


# -- queue and waits ---------------------------------------------------------------------


def work_item_to_dict(item: WorkItem) -> Body:
    return {
        "id": item.id,
        "run_id": item.run_id,
        "kind": item.kind.value,
        "at": item.at,
        "step_id": item.step_id,
        "attempt": item.attempt,
        "function_id": item.function_id,
        "cron": item.cron,
        "ref": item.ref,
    }


def work_item_from_dict(d: Doc) -> WorkItem:
    return WorkItem(
        id=d["id"],
        run_id=d["run_id"],
        kind=WorkKind(d["kind"]),
        at=d["at"],
        step_id=d.get("step_id"),
        attempt=d.get("attempt", 0),
        function_id=d.get("function_id"),
        cron=d.get("cron"),
        ref=d.get("ref"),
    )


def wait_to_dict(wait: Wait) -> Body:
    return {
        "id": wait.id,
        "run_id": wait.run_id,
        "step_id": wait.step_id,
        "kind": wait.kind.value,
        "event": wait.event,
        "expression": wait.expression,
        "expires_at": wait.expires_at,
        "created_at": wait.created_at,
    }


def wait_from_dict(d: Doc) -> Wait:
    return Wait(
        id=d["id"],
        run_id=d["run_id"],
        step_id=d["step_id"],
        kind=WaitKind(d["kind"]),
        event=d["event"],
        expression=d.get("expression"),
        expires_at=d["expires_at"],
        created_at=d.get("created_at", 0),
    )


# -- runs --------------------------------------------------------------------------------


def _attempt_to_dict(attempt: Attempt) -> Body:
    body: Body = {
        "number": attempt.number,
        "started_at": attempt.started_at,
        "ended_at": attempt.ended_at,
        "status": attempt.status.value,
    }
    # Left out when unset: a run body is rewritten on every save, so bytes here are paid
    # again and again (the decoder reads them with defaults).
    if attempt.error is not None:
        body["error"] = attempt.error
    if attempt.retry_at is not None:
        body["retry_at"] = attempt.retry_at
    return body


def _attempt_from_dict(d: Doc) -> Attempt:
    return Attempt(
        number=d["number"],
        started_at=d["started_at"],
        ended_at=d["ended_at"],
        status=StepStatus(d["status"]),
        error=d.get("error"),
        retry_at=d.get("retry_at"),
    )


def step_to_dict(step: StepRecord) -> Body:
    body: Body = {
        "id": step.id,
        "name": step.name,
        "op": step.op,
        "status": step.status.value,
        "attempts": step.attempts,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
        "output": step.output,
        "error": step.error,
        "seeded": step.seeded,
    }
    if step.history:  # most steps succeed at once: no key at all, on every save
        body["history"] = [_attempt_to_dict(a) for a in step.history]
    return body


def _step_from_dict(d: Doc) -> StepRecord:
    return StepRecord(
        id=d["id"],
        name=d["name"],
        op=d["op"],
        status=StepStatus(d["status"]),
        attempts=d.get("attempts", 0),
        started_at=d.get("started_at", 0),
        ended_at=d.get("ended_at"),
        output=d.get("output"),
        error=d.get("error"),
        history=tuple(_attempt_from_dict(a) for a in d.get("history", ())),
        seeded=d.get("seeded", False),
    )


def _seed_to_dict(seed: SeededStep) -> Body:
    return {"name": seed.name, "op": seed.op, "memo": seed.memo}


def _seed_from_dict(d: Doc) -> SeededStep:
    return SeededStep(name=d["name"], op=d["op"], memo=d.get("memo"))


def _parent_to_dict(parent: InvokeParent | None) -> Body | None:
    if parent is None:
        return None
    return {"correlation_id": parent.correlation_id, "run_id": parent.run_id, "fn_id": parent.fn_id}


def _parent_from_dict(d: Doc | None) -> InvokeParent | None:
    if d is None:
        return None
    return InvokeParent(correlation_id=d["correlation_id"], run_id=d["run_id"], fn_id=d["fn_id"])


def run_to_dict(run: Run) -> Body:
    """Encode a run, memos included (a store may split ``"memos"`` off and keep it apart)."""
    body = run_head_to_dict(run)
    body["events"] = [dict(e) for e in run.events]
    body["memos"] = dict(run.memos)
    body["steps"] = [step_to_dict(s) for s in run.steps]
    return body


def run_head_to_dict(run: Run) -> Body:
    """``run_to_dict`` without the parts that only grow, ``"events"``, ``"memos"`` and
    ``"steps"``: a store that encodes those itself, piece by piece, adds them."""
    body: Body = {
        "id": run.id,
        "function_id": run.function_id,
        "app_id": run.app_id,
        "status": run.status.value,
        "event_ids": list(run.event_ids),
        "created_at": run.created_at,
        "version": run.version,
        "stack": list(run.stack),
        "pending": {k: work_item_to_dict(v) for k, v in run.pending.items()},
        "waiting": {k: wait_to_dict(v) for k, v in run.waiting.items()},
        "cancel_waits": [wait_to_dict(w) for w in run.cancel_waits],
        # Sorted so that equal runs always encode to equal text.
        "planned": sorted(run.planned),
        "race": run.race,
        "force_step_plan": run.force_step_plan,
        "request_version": run.request_version,
        "seq": run.seq,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "output": run.output,
        "cron": run.cron,
        "parent": _parent_to_dict(run.parent),
        "cancel_reason": run.cancel_reason,
        "outbox": outbox_to_dict(run.outbox),
        "rerun_of": run.rerun_of,
        "reruns": list(run.reruns),
        "seeds": {k: _seed_to_dict(v) for k, v in run.seeds.items()},
    }
    if run.call_failures:
        body["call_failures"] = [_attempt_to_dict(a) for a in run.call_failures]
    return body


def run_from_dict(d: Doc) -> Run:
    """Decode a run; a body without ``"memos"`` decodes with no memos."""
    return Run(
        id=d["id"],
        function_id=d["function_id"],
        app_id=d["app_id"],
        status=RunStatus(d["status"]),
        events=tuple(dict(e) for e in d["events"]),
        event_ids=tuple(d["event_ids"]),
        created_at=d["created_at"],
        version=d.get("version", 0),
        memos=dict(d.get("memos", {})),
        stack=tuple(d.get("stack", ())),
        steps=tuple(_step_from_dict(s) for s in d.get("steps", ())),
        pending={k: work_item_from_dict(v) for k, v in d.get("pending", {}).items()},
        waiting={k: wait_from_dict(v) for k, v in d.get("waiting", {}).items()},
        cancel_waits=tuple(wait_from_dict(w) for w in d.get("cancel_waits", [])),
        planned=frozenset(d.get("planned", ())),
        race=d.get("race", False),
        force_step_plan=d.get("force_step_plan", False),
        request_version=d.get("request_version", -1),
        seq=d.get("seq", 0),
        started_at=d.get("started_at"),
        ended_at=d.get("ended_at"),
        output=d.get("output"),
        cron=d.get("cron"),
        parent=_parent_from_dict(d.get("parent")),
        cancel_reason=d.get("cancel_reason"),
        outbox=_outbox_from_dict(d.get("outbox")),
        call_failures=tuple(_attempt_from_dict(a) for a in d.get("call_failures", ())),
        rerun_of=d.get("rerun_of"),
        reruns=tuple(d.get("reruns", ())),
        seeds={k: _seed_from_dict(v) for k, v in d.get("seeds", {}).items()},
    )


def outbox_to_dict(outbox: Outbox) -> Body | None:
    if not outbox:
        return None  # the common case after an acknowledgement: nothing stored
    return {
        "enqueue": [work_item_to_dict(i) for i in outbox.enqueue],
        "waits": [wait_to_dict(w) for w in outbox.waits],
        "drop_waits": list(outbox.drop_waits),
        "publish": [event_to_dict(e) for e in outbox.publish],
    }


def _outbox_from_dict(d: Doc | None) -> Outbox:
    if not d:
        return Outbox()
    return Outbox(
        enqueue=tuple(work_item_from_dict(i) for i in d.get("enqueue", ())),
        waits=tuple(wait_from_dict(w) for w in d.get("waits", ())),
        drop_waits=tuple(d.get("drop_waits", ())),
        publish=tuple(event_from_dict(e) for e in d.get("publish", ())),
    )


# -- step outputs stored once ------------------------------------------------------------

_DERIVED = (("output", "data"), ("error", "error"))
"""Step record fields the engine copies from the step's memo (record field, memo key)."""
FROM_MEMO = "from_memo"


def strip_outputs(doc: dict[str, Any], memos: Mapping[str, JSON]) -> None:
    """Replace step outputs that ARE (identity, not equality) their memo's value by a
    reference to it, for a store that keeps memos apart from the run body. Identity is
    exact: ``1 == True`` but ``1 is not True``; and it holds on the engine's path, which
    builds the record from the memo object, and after a load, since ``restore_outputs``
    puts the memo's object back."""
    for step in doc.get("steps", ()):
        strip_step_outputs(step, memos.get(step["id"]))


def strip_step_outputs(step: dict[str, Any], memo: JSON) -> None:
    """``strip_outputs`` for one encoded step record and its memo (None if it has none)."""
    if not isinstance(memo, Mapping):
        return
    derived = [f for f, k in _DERIVED if step[f] is not None and step[f] is memo.get(k)]
    for name in derived:
        step[name] = None
    if derived:
        step[FROM_MEMO] = derived


def restore_outputs(doc: dict[str, Any]) -> None:
    """Undo ``strip_outputs`` with the memos in ``doc["memos"]`` (write-once: the stored
    memo is what the record refers to)."""
    memo_key = dict(_DERIVED)
    for step in doc.get("steps", ()):
        for name in step.pop(FROM_MEMO, ()):
            memo = doc["memos"].get(step["id"])
            step[name] = memo.get(memo_key[name]) if isinstance(memo, Mapping) else None
