"""Run a Wayline function to completion in-process: no server, no network, virtual time.

``run`` plays the server's part with the SDK's real replay code: every request goes
through the same planner, serialization and outcome rules as over HTTP, with the same
memo round-trips (so a step result comes back exactly as it would from a memo). Steps run
(or are replaced by a mock, called once with the step's arguments), sleeps and waits pass
at once in virtual time, ``wait_for_event`` returns the event you inject (or times out),
``send_event`` is recorded instead of sent, and ``invoke`` runs the target in-process.

Example::

    import wayline.testing

    result = wayline.testing.run(
        send_welcome,
        wayline.Event(name="user/signed-up", data={"email": "ada@example.com"}),
        mocks={"send": lambda email: {"id": "msg-1"}},
        events={"verified": wayline.Event(name="user/verified", data={"userId": 1})},
    )
    assert result.status == "completed"
    assert result.steps == ["send", "wait-48h", "verified", "fan-out", "child", "a", "b"]
    assert result.step_calls[0].args == ("ada@example.com",)

``TestEngine`` (from ``wayline.testing_engine``) runs a whole app instead, on the real
engine over in-memory SQLite: retries with their backoff, flow control, ``on_failure``
handlers and the events steps send behave exactly as on ``wayline dev``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .engine.durations import parse_duration, parse_time
from .sdk import planner
from .sdk.call import PreparedCall
from .sdk.events import Event, from_wire, to_wire
from .sdk.execution import CallResult, Hooks, run_blocking
from .sdk.execution import StepCall as _BodyCall
from .sdk.function import Function, Handler
from .sdk.protocol import CallRequest
from .testing_engine import TestEngine

__all__ = ["StepCall", "TestEngine", "TestResult", "run"]

MAX_REQUESTS = 10_000
INVOKED_EVENT = "inngest/function.invoked"


@dataclass(frozen=True, slots=True)
class StepCall:
    """One execution of a step body (or of its mock), with the arguments it got."""

    step_id: str
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    mocked: bool


@dataclass(slots=True)
class TestResult:
    """How a test run ended.

    Attributes:
        status: ``"completed"`` or ``"failed"``.
        output: The function's return value as the server would store it (JSON).
        error: The failure body (``{code, message, name, stack}``) when it failed.
        steps: Step ids in the order the steps finished (sleeps and waits included).
        step_calls: Every step body or mock executed, in order, with its arguments.
        sent_events: Events sent with ``ctx.step.send_event`` (by this run and invoked ones).
        published: Realtime messages ``ctx.publish`` sent, as ``(channel, topic, data)``.
        requests: How many times the server would have called the function.
        elapsed: Virtual time the run took (its sleeps and waits).
    """

    __test__ = False  # not a pytest test class, despite its name

    status: Literal["completed", "failed"] = "completed"
    output: Any = None
    error: dict[str, Any] | None = None
    steps: list[str] = field(default_factory=list)
    step_calls: list[StepCall] = field(default_factory=list)
    sent_events: list[Event[Any]] = field(default_factory=list)
    published: list[tuple[str, str, Any]] = field(default_factory=list)
    requests: int = 0
    elapsed: timedelta = timedelta(0)


@dataclass(slots=True)
class _Item:
    target: str | None  # None: a discovery request
    attempt: int = 0


class _Runner:
    def __init__(
        self,
        fn: Function[Any, Any],
        event: Event[Any],
        *,
        mocks: Mapping[str, Callable[..., Any]],
        events: Mapping[str, Event[Any] | None],
        functions: list[Function[Any, Any]],
        start: datetime,
        signals: Mapping[str, Any] | None = None,
        result: TestResult,
    ) -> None:
        self.handler: Handler = fn.handlers()[0]
        self.fn = fn
        self.mocks, self.events, self.functions = mocks, events, functions
        self.signals = dict(signals or {})
        self.start = self.now = start
        self.result = result
        self.event = to_wire(event, now_ms=int(start.timestamp() * 1000))
        self.event.setdefault("id", "test-event")
        self.memos: dict[str, Any] = {}
        self.planned: set[str] = set()
        self.queue: deque[_Item] = deque([_Item(None)])
        self.disable_immediate = False
        self.race = False
        self.hooks = Hooks(
            execute=self._execute,
            send=self._send,
            send_async=self._send_async,
            now=lambda: self.now,
            invoking=self._remember,
            publish=self._publish,
            publish_async=self._publish_async,
        )
        if fn.check_events:
            self.hooks = replace(self.hooks, check_events=fn.check_events)

    # ------------------------------------------------------------------ hooks

    def _publish(self, channel: str, topic: str, data: Any, run_id: str) -> None:
        self.result.published.append((channel, topic, data))

    async def _publish_async(self, channel: str, topic: str, data: Any, run_id: str) -> None:
        self._publish(channel, topic, data, run_id)

    def _execute(self, call: _BodyCall) -> object:
        mock = self.mocks.get(call.step_id)
        self.result.step_calls.append(
            StepCall(call.step_id, call.args, dict(call.kwargs), mocked=mock is not None)
        )
        return (mock or call.fn)(*call.args, **call.kwargs)

    def _send(self, events: list[dict[str, Any]]) -> list[str]:
        ids = [f"test-event-{len(self.result.sent_events) + i + 1}" for i in range(len(events))]
        self.result.sent_events.extend(from_wire(e) for e in events)
        return ids

    async def _send_async(self, events: list[dict[str, Any]]) -> list[str]:
        return self._send(events)

    def _remember(self, function: Function[Any, Any]) -> None:
        if all(f.id != function.id for f in self.functions):
            self.functions.append(function)

    # ------------------------------------------------------------------ the server's loop

    def run(self) -> TestResult:
        result = self.result
        while self.queue:
            item = self.queue.popleft()
            result.requests += 1
            if result.requests > MAX_REQUESTS:
                raise RuntimeError(f"{self.fn.id} did not finish after {MAX_REQUESTS} requests")
            outcome = self._call(item)
            if outcome.status == 200:
                return self._end("completed", output=outcome.body)
            if outcome.status != 206:
                if outcome.no_retry or not self._can_retry(item):
                    return self._end("failed", error=outcome.body)
                self.queue.appendleft(_Item(item.target, item.attempt + 1))
                continue
            self._apply(item, outcome)
        return self._end("failed", error={"code": "stalled", "message": "nothing left to run"})

    def _call(self, item: _Item) -> CallResult:
        request = CallRequest(
            event=self.event,
            events=[self.event],
            steps=dict(self.memos),
            run_id="test-run",
            attempt=item.attempt,
            max_attempts=self.handler.max_attempts,
            disable_immediate_execution=self.disable_immediate,
            use_api=False,
        )
        call = PreparedCall(
            self.handler,
            request,
            item.target,
            self.hooks,
            logging.getLogger("wayline"),
            middleware=self.fn.client_middleware,
        )
        return run_blocking(call.run_async()) if call.is_async else call.run_sync()

    def _can_retry(self, item: _Item) -> bool:
        return item.attempt + 1 < self.handler.max_attempts

    def _apply(self, item: _Item, outcome: CallResult) -> None:
        ops: list[dict[str, Any]] = outcome.body
        completed = False
        for op in ops:
            kind, hashed, name = op["op"], op["id"], op["displayName"]
            if kind == planner.STEP_PLANNED:
                self.planned.add(hashed)
                self.race = self.race or (op.get("opts") or {}).get("parallelMode") == "race"
                self.queue.append(_Item(hashed))
                continue
            if kind == planner.STEP_ERROR and not outcome.no_retry and self._can_retry(item):
                self.queue.appendleft(_Item(hashed, item.attempt + 1))
                continue
            self.memos[hashed] = self._resolve(op)
            self.planned.discard(hashed)
            self.result.steps.append(name)
            completed = True
        if len(ops) > 1:
            self.disable_immediate = True  # the server's "force step plan"
        pending_discovery = any(i.target is None for i in self.queue)
        if completed and (not self.planned or self.race) and not pending_discovery:
            if not self.planned:
                self.disable_immediate, self.race = False, False
            self.queue.append(_Item(None))

    def _resolve(self, op: Mapping[str, Any]) -> Any:
        kind, name = op["op"], op["displayName"]
        if kind == planner.STEP_RUN:
            return {"data": op.get("data")}
        if kind in (planner.STEP_ERROR, planner.STEP_FAILED):
            return {"error": op.get("error")}
        if kind == planner.SLEEP:
            # A duration from the virtual now (``sleep``), or an absolute time (``sleep_until``).
            duration = (op.get("opts") or {}).get("duration")
            if duration:
                wake = self.now + timedelta(milliseconds=parse_duration(str(duration)))
            else:
                wake = datetime.fromtimestamp(parse_time(op["name"]) / 1000, UTC)
            self.now = max(self.now, wake)
            return None
        if kind == planner.WAIT_FOR_EVENT:
            event = self.events.get(name)
            if event is None:
                self.now += timedelta(milliseconds=_timeout_ms(op))
                return None
            wire = to_wire(event, now_ms=int(self.now.timestamp() * 1000))
            wire.setdefault("id", f"test-{name}")
            return wire
        if kind == planner.WAIT_FOR_SIGNAL:
            if name not in self.signals:
                self.now += timedelta(milliseconds=_timeout_ms(op))
                return None
            return {"data": {"signal": op.get("name"), "data": self.signals[name]}}
        if kind == planner.INVOKE:
            return self._invoke(op)
        raise RuntimeError(f"opcode {kind} is not supported by wayline.testing")

    def _invoke(self, op: Mapping[str, Any]) -> Any:
        opts = op.get("opts") or {}
        data = (opts.get("payload") or {}).get("data") or {}
        mock = self.mocks.get(op["displayName"])
        if mock is not None:
            self.result.step_calls.append(StepCall(op["displayName"], (data,), {}, mocked=True))
            return {"data": mock(data)}
        target = next((f for f in self.functions if f.id == opts.get("function_id")), None)
        if target is None:
            raise LookupError(
                f'invoke step "{op["displayName"]}" targets {opts.get("function_id")!r}, which is '
                "not defined here: pass it in functions=[...] or mock the step"
            )
        child = TestResult(sent_events=self.result.sent_events)
        _Runner(
            target,
            Event(name=INVOKED_EVENT, data=data),
            mocks=self.mocks,
            events=self.events,
            signals=self.signals,
            functions=self.functions,
            start=self.now,
            result=child,
        ).run()
        self.now += child.elapsed
        if child.status == "completed":
            return {"data": child.output}
        return {"error": child.error}

    def _end(
        self, status: Literal["completed", "failed"], *, output: Any = None, error: Any = None
    ) -> TestResult:
        self.result.status, self.result.output, self.result.error = status, output, error
        self.result.elapsed = self.now - self.start
        return self.result


def _timeout_ms(op: Mapping[str, Any]) -> int:
    from .engine.durations import parse_duration

    timeout = (op.get("opts") or {}).get("timeout")
    return parse_duration(timeout) if isinstance(timeout, str) else 0


def run(
    fn: Function[Any, Any],
    event: Event[Any] | None = None,
    *,
    mocks: Mapping[str, Callable[..., Any]] | None = None,
    events: Mapping[str, Event[Any] | None] | None = None,
    functions: Sequence[Function[Any, Any]] = (),
    now: datetime | None = None,
    signals: Mapping[str, Any] | None = None,
) -> TestResult:
    """Run ``fn`` for ``event`` to completion (or failure), in-process, in virtual time.

    Args:
        fn: The function to run.
        event: The triggering event (default: an empty event named after the first trigger).
        mocks: Step id -> replacement callable for ``step.run`` / ``send_event`` bodies (called
            once, with the step's arguments) or for ``invoke`` steps (called with the data).
        events: Step id of a ``wait_for_event`` -> the event that arrives (missing or None:
            the wait times out).
        functions: Functions ``invoke_by_id`` may run in-process (``invoke`` finds its own).
        signals: Step id of a ``wait_for_signal`` -> the data the signal carries (missing:
            the wait times out).
        now: The virtual start time (default: the real current time).

    Returns:
        A ``TestResult``; a failed run is a result with ``status == "failed"``, not an error.

    Example::

        result = wayline.testing.run(fn, wayline.Event(name="order/placed", data={"id": 1}))
        assert result.output == {"ok": True}
    """
    if event is None:
        names = [getattr(t, "event", None) for t in fn.triggers]
        event = Event(name=next((n for n in names if n), "wayline/test"))
    runner = _Runner(
        fn,
        event,
        mocks=dict(mocks or {}),
        events=dict(events or {}),
        signals=signals,
        functions=[fn, *functions],
        start=now or datetime.now(UTC).replace(microsecond=0),
        result=TestResult(),
    )
    return runner.run()
