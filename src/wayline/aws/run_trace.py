"""One X-Ray trace per run, across every Lambda invocation that works on it.

Lambda gives each invocation its own trace; a run spans many (ingest starts it, each
dispatch makes a call, a Scheduler wake-up ends a sleep, the api function applies an
async checkpoint). ``RunSegments`` is a ``Service`` observer that, after each saved run
change, sends one X-Ray *segment* into the run's own trace, whose id every container
derives from the run id alone (``engine.tracecontext.xray_trace_id``, the same id as the
W3C ``traceparent`` the app receives, so the app's spans join it too)::

    trace 1-<run created, epoch s>-<hash of run id>
      segment  wayline-ingest    run started            (annotations: run_id, function_id)
      segment  wayline-dispatch  call                   subsegment "step a"
      segment  wayline-timers    sleep ended            subsegment "step nap" (the sleep)
      segment  wayline-dispatch  call, run Completed    subsegment "step b"

Each segment covers the steps that ended in that change (a subsegment per step, from its
start to its end) up to the time of the save, and carries the invocation's own trace id
(``metadata.wayline.invocation_trace``); the invocation's segment is annotated with the
run's trace id (``run_trace_id``), so each leads to the other. Segment ids are derived
from (run id, run version): a change is saved once, so its segment is sent once per save;
a checkpoint's memos, appended without a new version, add the first step's id.

Segments go to the X-Ray daemon Lambda runs beside each function (UDP,
``AWS_XRAY_DAEMON_ADDRESS``): no API call, no added latency. Limits: X-Ray keeps traces
30 days and refuses segments of a trace whose time part is older, so a run that lives
longer (a long sleep) loses the segments of its later invocations; a daemon datagram
holds 64 KB, so at most ``MAX_STEPS_PER_SEGMENT`` steps are attached to one segment
(the rest are counted in its metadata).

An observer must never fail a transition that is already saved: errors are logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

from wayline.engine.model import Run, StepRecord
from wayline.engine.tracecontext import xray_trace_id

from .observability import Annotator

__all__ = ["DaemonSender", "RunSegments"]

log = logging.getLogger("wayline.aws")

MAX_STEPS_PER_SEGMENT = 100
DAEMON_HEADER = b'{"format": "json", "version": 1}\n'
DEFAULT_DAEMON = "127.0.0.1:2000"

Segment = dict[str, Any]


class RunSegments:
    def __init__(
        self,
        send: Callable[[Segment], None],
        *,
        now_ms: Callable[[], int],
        function_name: str = "wayline",
        invocation_trace: Callable[[], str | None] = lambda: None,
        tracer: Annotator | None = None,
    ) -> None:
        """``send``: delivers a segment document (``DaemonSender``); ``function_name``:
        the segment's name (the Lambda function's); ``invocation_trace``: the current
        invocation's ``_X_AMZN_TRACE_ID``; ``tracer``: annotates the invocation segment."""
        self._send = send
        self._now_ms = now_ms
        self._name = function_name
        self._invocation_trace = invocation_trace
        self._tracer = tracer

    def __call__(self, before: Run | None, after: Run) -> None:
        try:
            self._send(self.segment(before, after))
            if self._tracer is not None:
                self._tracer.put_annotation("run_trace_id", xray_trace_id(after.id))
        except Exception:  # never fail a saved transition over its trace
            log.exception("run trace segment failed", extra={"run_id": after.id})

    def segment(self, before: Run | None, after: Run) -> Segment:
        """The segment for one saved change of ``after``'s run."""
        now = self._now_ms()
        earlier = {} if before is None else {step.id: step for step in before.steps}
        ended = [
            step
            for step in after.steps
            if step.ended_at is not None
            and (step.id not in earlier or earlier[step.id].ended_at is None)
        ]
        start = min([now, *(step.started_at for step in ended)])
        trace_id = xray_trace_id(after.id)
        metadata: dict[str, Any] = {
            "version": after.version,
            "change": _change(before, after),
            "invocation_trace": self._invocation_trace(),
        }
        if len(ended) > MAX_STEPS_PER_SEGMENT:
            metadata["steps_omitted"] = len(ended) - MAX_STEPS_PER_SEGMENT
        return {
            "name": self._name[:200],
            "id": _segment_id(after.id, after.version, _appended(before, after, ended)),
            "trace_id": trace_id,
            "start_time": start / 1000,
            "end_time": max(now, start) / 1000,
            "origin": "AWS::Lambda::Function",
            "annotations": _annotations(after),
            "metadata": {"wayline": metadata},
            "subsegments": [
                _step_subsegment(after, step) for step in ended[:MAX_STEPS_PER_SEGMENT]
            ],
        }


def _appended(before: Run | None, after: Run, ended: list[StepRecord]) -> str:
    """What tells this change's segment apart from the save of the same version: nothing
    for a save; for memos a checkpoint appended without a new version
    (``engine.checkpoint_append``), the first step it added."""
    if before is None or before.version != after.version or not ended:
        return ""
    return f"append:{ended[0].id}"


def _change(before: Run | None, after: Run) -> str:
    if before is None:
        return "run created"
    if before.status is not after.status:
        return f"run {before.status.value} -> {after.status.value}"
    return "run updated"


def _annotations(run: Run) -> dict[str, str]:
    return {"run_id": run.id, "function_id": run.function_id, "status": run.status.value}


def _step_subsegment(run: Run, step: StepRecord) -> Segment:
    assert step.ended_at is not None
    return {
        "name": f"step {step.name}"[:200],
        "id": _segment_id(run.id, 0, step.id),
        "start_time": step.started_at / 1000,
        "end_time": max(step.ended_at, step.started_at) / 1000,
        "annotations": {**_annotations(run), "step_id": step.id},
        "metadata": {"wayline": {"status": step.status.value, "attempts": step.attempts}},
    }


def _segment_id(run_id: str, version: int, step_id: str) -> str:
    """16 hex digits, the same in every container for the same change (or step)."""
    digest = hashlib.sha256(f"{run_id}:{version}:{step_id}".encode()).hexdigest()
    return digest[:16]


class DaemonSender:
    """Sends segment documents to the X-Ray daemon over UDP (what the X-Ray SDK does)."""

    def __init__(self, address: str = DEFAULT_DAEMON) -> None:
        self._address = _udp_address(address)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DaemonSender:
        return cls(environ.get("AWS_XRAY_DAEMON_ADDRESS") or DEFAULT_DAEMON)

    def __call__(self, segment: Segment) -> None:
        body = json.dumps(segment, separators=(",", ":")).encode()
        self._socket.sendto(DAEMON_HEADER + body, self._address)

    def close(self) -> None:
        self._socket.close()


def _udp_address(address: str) -> tuple[str, int]:
    """``host:port``, or the daemon's two-address form ``tcp:h:p udp:h:p``."""
    for part in address.split():
        if part.startswith("udp:"):
            address = part.removeprefix("udp:")
            break
    else:
        address = address.split()[0].removeprefix("tcp:")
    host, _, port = address.rpartition(":")
    return host, int(port)
