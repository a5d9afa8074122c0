"""A scripted SDK for service tests: a sequential function of named steps, answered the
way the official SDKs answer a call request (memos replayed, ``disable_immediate_execution``
honoured, a targeted step run alone), plus a worker loop that drives the service with it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wayline.engine.ids import hash_step_id
from wayline.engine.ports import Store
from wayline.engine.protocol import CallResponse, Op
from wayline.engine.service import PreparedCall, Service

Body = Callable[[str], Any]
"""Runs one step: gets its name, returns its output or raises."""


@dataclass
class ScriptedSdk:
    steps: Sequence[str]
    body: Body
    executed: Counter[str] = field(default_factory=Counter)

    def answer(self, call: PreparedCall) -> CallResponse:
        request = call.body
        memos: dict[str, Any] = dict(request["steps"])
        ctx: dict[str, Any] = request["ctx"]
        target = parse_qs(urlsplit(call.url).query).get("stepId", ["step"])[0]
        outputs = []
        for name in self.steps:
            step_id = hash_step_id(name)
            if step_id in memos:
                memo = memos[step_id]
                if "error" in memo:
                    return CallResponse(status=500, body=memo["error"], no_retry=True)
                outputs.append(memo["data"])
                continue
            if target not in ("step", step_id):
                return CallResponse(status=500, body={"message": "step_unexpected"})
            if ctx["disable_immediate_execution"] and target != step_id:
                return CallResponse(status=206, ops=(Op(op="StepPlanned", id=step_id, name=name),))
            return CallResponse(status=206, ops=(self._run(name, step_id),))
        return CallResponse(status=200, body=outputs)

    def _run(self, name: str, step_id: str) -> Op:
        self.executed[name] += 1
        try:
            return Op(op="StepRun", id=step_id, name=name, data=self.body(name), has_data=True)
        except Exception as exc:
            error = {"name": type(exc).__name__, "message": str(exc)}
            return Op(op="StepFailed", id=step_id, name=name, error=error)


def drive(service: Service, store: Store, sdk: ScriptedSdk, *, now: int, rounds: int = 50) -> None:
    """Work the queue until no call is due: prepare, answer with ``sdk``, complete."""
    for _ in range(rounds):
        items = store.queue.claim(now=now, lease_ms=1_000, limit=100)
        if not items:
            return
        for item in items:
            call = service.prepare_call(item)
            if isinstance(call, PreparedCall):
                service.complete_call(item, sdk.answer(call), started_at=now)
                service.release_call(call, item)
            store.queue.ack(item.id)
    raise AssertionError("the queue did not drain")
