"""The core of one function call, shared by the async and the sync step shells.

The shells (``steps.py``) only differ in ``await``: everything else, the planner state, how a
step body's outcome becomes an opcode, how the function's outcome becomes a response, lives
here once. Control flow that user code must not swallow (a step that ends the request, a
skipped step, a nested step, an abort) derives from ``BaseException``, so a user's
``except Exception`` cannot catch it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import logging
import math
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from wayline.errors import (
    NonDeterminismError,
    NonRetriableError,
    RetryAfterError,
    SerializationError,
    StepError,
)

from . import planner, protocol, serialize
from .middleware import CallInfo, Stack, StepInfo
from .planner import (
    Execute,
    Intent,
    Memo,
    Op,
    PlannerState,
    Replay,
    Report,
    Scope,
    Skip,
    StepRef,
)

if TYPE_CHECKING:
    from .checkpoint import Checkpointer

ParallelMode = Literal["wait", "race"]
T = TypeVar("T")


class ControlFlow(BaseException):
    """Base of the SDK's interrupts: not an ``Exception``, so ``except Exception`` passes it."""


class Interrupt(ControlFlow):
    """Stop the function: report these opcodes (a 206)."""

    def __init__(self, ops: list[Op]) -> None:
        super().__init__(f"{len(ops)} step(s) to report")
        self.ops = ops


class SkipInterrupt(ControlFlow):
    """A step that is not the targeted one: skipped inside a group, fatal outside."""

    def __init__(self, step: StepRef) -> None:
        super().__init__(step.user_id)
        self.step = step


class NestedStepInterrupt(ControlFlow):
    """A step was called inside a ``step.run`` body."""


class HaltInterrupt(ControlFlow):
    """The server refused a checkpoint as stale (409): stop, run nothing more, answer 400."""


class AbortInterrupt(ControlFlow):
    """End the call with this error at function level, whatever the user code catches."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class CallResult:
    """How a call ended, before it becomes an HTTP response."""

    status: int
    body: Any
    no_retry: bool = False
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class StepCall:
    """A step body about to run (what ``wayline.testing`` mocks intercept)."""

    step_id: str
    fn: Callable[..., object]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


_SDK_DIR = str(Path(__file__).resolve().parent) + os.sep


def user_traceback(exc: BaseException) -> BaseException:
    """Drop the SDK's own frames from the top of a user error's traceback (logs show the
    user's code first), and return the error."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_SDK_DIR):
        tb = tb.tb_next
    if tb is not None:
        exc.__traceback__ = tb
    return exc


def _run_body(call: StepCall) -> object:
    return call.fn(*call.args, **call.kwargs)


def _no_sender(events: list[dict[str, Any]]) -> list[str]:
    raise RuntimeError("no event sender configured")


async def _no_async_sender(events: list[dict[str, Any]]) -> list[str]:
    raise RuntimeError("no event sender configured")


def _unchecked(events: list[Any]) -> list[Any]:
    return events


def memo_from_json(step: StepRef, data: bytes) -> Memo:
    """The memo a later request would carry for ``data`` (a step's data as JSON bytes)."""
    return Memo(data=json.loads(data))


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ignore(function: object) -> None:
    return None


def _no_publisher(channel: str, topic: str, data: Any, run_id: str) -> None:
    raise RuntimeError("this context has no realtime publisher")


async def _no_async_publisher(channel: str, topic: str, data: Any, run_id: str) -> None:
    raise RuntimeError("this context has no realtime publisher")


@dataclass(frozen=True, slots=True)
class Hooks:
    """The core's only ways out: run a step body, send events, read the clock."""

    execute: Callable[[StepCall], object] = _run_body
    send: Callable[[list[dict[str, Any]]], list[str]] = _no_sender
    send_async: Callable[[list[dict[str, Any]]], Awaitable[list[str]]] = _no_async_sender
    now: Callable[[], datetime] = _utc_now
    invoking: Callable[[Any], None] = _ignore
    """Told of every ``Function`` passed to ``step.invoke`` (the test runner runs them)."""
    check_events: Callable[[list[Any]], list[Any]] = _unchecked
    """Validates ``Event``s against the client's registered event types (ValidationError)."""
    publish: Callable[[str, str, Any, str], None] = _no_publisher
    """Publishes a realtime message (channel, topic, data, run id): ``ctx.publish``."""
    publish_async: Callable[[str, str, Any, str], Awaitable[None]] = _no_async_publisher


@dataclass(slots=True)
class ParallelGroup:
    """Collects a group's branch results and the opcodes its branches reported."""

    ops: list[Op] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    skipped: SkipInterrupt | None = None

    @contextlib.contextmanager
    def branch(self) -> Iterator[None]:
        try:
            yield
        except Interrupt as interrupt:
            self.ops.extend(interrupt.ops)
        except SkipInterrupt as skip:
            self.skipped = self.skipped or skip

    def finish(self) -> tuple[Any, ...]:
        if self.ops:
            raise Interrupt(self.ops)
        if self.skipped is not None:
            # Targeting, yet no branch reached the target: these steps are new to the run.
            raise self.skipped
        return tuple(self.outputs)


class _Executing:
    """``StepCore.executing``: a plain context manager (a generator-based one cost ~2 % of
    an app's CPU per step)."""

    __slots__ = ("_clock", "_core", "_started")

    def __init__(self, core: StepCore) -> None:
        self._core = core
        self._clock = core.checkpointer.clocks.monotonic_s if core.checkpointer else None

    def __enter__(self) -> None:
        self._core._executing = True
        self._started = self._clock() if self._clock else 0.0

    def __exit__(self, *exc: object) -> None:
        self._core._executing = False
        self._core.body_seconds = self._clock() - self._started if self._clock else 0.0


class StepCore:
    """Planner state and outcome rules for one call (one request) of one function."""

    def __init__(
        self,
        *,
        fn_id: str,
        state: PlannerState,
        attempt: int,
        max_attempts: int,
        hooks: Hooks,
        logger: logging.Logger,
        middleware: Stack | None = None,
        checkpointer: Checkpointer | None = None,
        replayed: Callable[[StepRef, bytes], Memo] = memo_from_json,
    ) -> None:
        self.fn_id = fn_id
        self.attempt = attempt
        self.max_attempts = max_attempts
        self.hooks = hooks
        self.logger = logger
        self.middleware = middleware or Stack(
            (), CallInfo(fn_id, "", attempt, max_attempts, ""), logger
        )
        self.checkpointer = checkpointer
        """Set when this call checkpoints its steps (see ``checkpoint.py``)."""
        self.replayed = replayed
        """How a later request would carry a step's data (JSON bytes): what a checkpointed
        step returns."""
        self.body_seconds = 0.0
        """How long the last step body took (with its step hooks), when checkpointing."""
        self._state = state
        self._races: list[bool] = []
        self._executing = False

    @property
    def replaying(self) -> bool:
        return self._state.replaying

    # ------------------------------------------------------------------ steps

    def plan(self, intent: Intent) -> Replay | Execute:
        """Plan a step; raises the interrupt when the step ends or skips the request."""
        if self._executing:
            raise NestedStepInterrupt()
        races = self._races
        scope = Scope(parallel=True, race=any(races)) if races else planner.SEQUENTIAL
        decided = planner.plan(self._state, intent, scope)
        if isinstance(decided, Report):
            raise Interrupt([decided.op])
        if isinstance(decided, Skip):
            raise SkipInterrupt(decided.step)
        if isinstance(decided, Execute) and self.checkpointer and self.checkpointer.expired():
            # Past max_runtime: hand the step back planned; the server runs it in a new request.
            name = intent.name or intent.user_id
            raise Interrupt([Op(planner.STEP_PLANNED, decided.step, name, opts=intent.opts)])
        return decided

    def plan_deferred(self, intent: Intent) -> Replay:
        """Plan a step that never runs inline (sleep, wait, invoke): it replays or reports."""
        decided = self.plan(intent)
        if not isinstance(decided, Replay):  # the planner only executes step.run
            raise RuntimeError(f"step {intent.user_id!r} ({intent.op}) cannot run inline")
        return decided

    def replay(self, decided: Replay, annotated: object | None) -> Any:
        """A memoized result, rebuilt into ``annotated``; a memoized error raises StepError."""
        memo, step = decided.memo, decided.step
        if memo.error is not None:
            error = memo.error
            raise StepError(
                str(error.get("message") or ""),
                name=str(error.get("name") or "Error"),
                stack=error.get("stack") if isinstance(error.get("stack"), str) else None,
                step_id=step.user_id,
            )
        try:
            return serialize.from_json(memo.data, annotated, what=f'step "{step.user_id}"')
        except SerializationError as exc:
            raise AbortInterrupt(exc) from None

    def execute(
        self,
        decided: Execute,
        fn: Callable[..., object],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> object:
        """Start a step body (the shell awaits the result when it is awaitable)."""
        return self.hooks.execute(StepCall(decided.step.user_id, fn, args, kwargs))

    @staticmethod
    def step_info(decided: Execute) -> StepInfo:
        return StepInfo(decided.step.user_id, decided.step.hashed)

    def executing(self) -> _Executing:
        """Mark a step body as running, so a step called inside it is caught as nested
        (and, when checkpointing, time it: the server dates the step by it)."""
        return _Executing(self)

    def body_returned(
        self, decided: Execute, value: object, annotated: object | None
    ) -> Op | BaseException:
        """The ``StepRun`` that reports a step body's result, or what to raise instead
        (``acks.checkpointable`` turns either into what the shell does next)."""
        step = decided.step
        what = f'step "{step.user_id}"'
        try:
            data = serialize.to_json(value, what=what)
            serialize.requires_type(value, annotated, what=what)
        except SerializationError as exc:
            return AbortInterrupt(exc)
        if self.middleware:
            try:
                data = self.middleware.transform_step_output(self.step_info(decided), data)
            except Exception as exc:
                return self.body_raised(decided, exc)
        opts = planner.race_opts(None, decided.race)
        return Op(planner.STEP_RUN, step, step.user_id, opts=opts, data=data)

    def body_raised(self, decided: Execute, exc: BaseException) -> BaseException:
        """What to raise after a step body raised ``exc``."""
        step = decided.step
        if isinstance(exc, NestedStepInterrupt):
            error = {
                "code": protocol.CODE_STEP_NESTED,
                "message": "Nested steps are not supported.",
                "name": "NestedStepError",
                "stack": None,
            }
            self.logger.error('step "%s" called another step inside its body', step.user_id)
            op = Op(
                op=planner.STEP_ERROR,
                step=step,
                name=step.user_id,
                opts=planner.race_opts(None, decided.race),
                error=error,
                retriable=False,
            )
            return Interrupt([op])
        if isinstance(exc, NonRetriableError | RetryAfterError):
            # These speak for the whole function, as in the official SDK: a 500, not a step error.
            return AbortInterrupt(exc)
        if isinstance(exc, ControlFlow) or not isinstance(exc, Exception):
            return exc
        user_traceback(exc)
        final = self.attempt + 1 >= self.max_attempts
        self.logger.error(
            'step "%s" of function "%s" failed on attempt %d of %d%s',
            step.user_id,
            self.fn_id,
            self.attempt + 1,
            self.max_attempts,
            "; no retries left" if final else "; it will be retried",
            exc_info=exc,
        )
        op = Op(
            op=planner.STEP_FAILED if final else planner.STEP_ERROR,
            step=step,
            name=step.user_id,
            opts=planner.race_opts(None, decided.race),
            error=protocol.error_json(exc, code=protocol.CODE_UNKNOWN),
        )
        return Interrupt([op])

    @contextlib.contextmanager
    def parallel(self, mode: ParallelMode, callables: Sequence[object]) -> Iterator[ParallelGroup]:
        if mode not in ("wait", "race"):
            raise ValueError(f"parallel mode must be 'wait' or 'race', got {mode!r}")
        _check_branches(callables)
        if self._executing:
            raise NestedStepInterrupt()
        self._races.append(mode == "race")
        try:
            yield ParallelGroup()
        finally:
            self._races.pop()

    # --------------------------------------------------------------- function

    def function_returned(self, value: object) -> CallResult:
        problem = planner.unmet_target(self._state)
        if problem is not None:
            return self._failed(NonDeterminismError(problem))
        try:
            data = serialize.to_json(value, what=f'function "{self.fn_id}"')
        except SerializationError as exc:
            return self._failed(exc)
        try:
            return CallResult(200, self.middleware.transform_output(data))
        except Exception as exc:
            return self._failed(exc)

    def function_raised(self, exc: BaseException) -> CallResult:
        if isinstance(exc, Interrupt):
            body = [protocol.op_json(op) for op in exc.ops]
            return CallResult(206, body, no_retry=any(not op.retriable for op in exc.ops))
        if isinstance(exc, SkipInterrupt):
            message = f'found step "{exc.step.user_id}" when targeting a different step'
            return self._failed(NonDeterminismError(message))
        if isinstance(exc, AbortInterrupt):
            return self._failed(exc.error)
        if isinstance(exc, HaltInterrupt):
            stale = {"code": protocol.CODE_STALE_DISPATCH, "message": str(exc), "name": "Error"}
            return CallResult(400, stale, no_retry=True)
        if isinstance(exc, Exception):
            return self._failed(exc)
        raise exc  # KeyboardInterrupt, SystemExit, CancelledError: not ours to turn into a 500

    def _failed(self, exc: Exception) -> CallResult:
        user_traceback(exc)
        where = f'function "{self.fn_id}" (attempt {self.attempt + 1} of {self.max_attempts})'
        if isinstance(exc, StepError):
            self.logger.error(
                '%s failed: step "%s" failed: %s: %s', where, exc.step_id, exc.name, exc.message
            )
            body = {
                "code": protocol.CODE_STEP_ERRORED,
                "message": exc.message,
                "name": exc.name,
                "stack": exc.stack,
            }
            return CallResult(500, body, no_retry=True)
        if isinstance(exc, RetryAfterError):
            self.logger.warning(
                "%s asked to be retried after %s: %s",
                where,
                exc.retry_at.isoformat(),
                exc,
                exc_info=exc,
            )
            body = protocol.error_json(exc, code=protocol.CODE_RETRY_AFTER)
            return CallResult(500, body, retry_after=retry_after_header(exc))
        if isinstance(exc, NonDeterminismError):
            self.logger.error("%s is non-deterministic: %s", where, exc)
            body = {**protocol.error_json(exc, code=protocol.CODE_STEP_UNEXPECTED), "stack": None}
            return CallResult(500, body)
        self.logger.error("%s failed", where, exc_info=exc)
        if isinstance(exc, NonRetriableError):
            return CallResult(
                500, protocol.error_json(exc, code=protocol.CODE_NON_RETRIABLE), no_retry=True
            )
        if isinstance(exc, SerializationError):
            return CallResult(
                500, protocol.error_json(exc, code=protocol.CODE_UNSERIALIZABLE), no_retry=True
            )
        return CallResult(500, protocol.error_json(exc, code=protocol.CODE_UNKNOWN))


def _check_branches(callables: Sequence[object]) -> None:
    """Refuse awaited or called steps: a group needs callables so it can run them in turn."""
    for branch in callables:
        if not callable(branch):
            if inspect.iscoroutine(branch):
                branch.close()  # it will never run: close it rather than warn at exit
            raise TypeError(
                "group.parallel takes callables, e.g. [lambda: ctx.step.run('a', fa), ...]; "
                f"got a {type(branch).__name__}"
            )


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even if this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def retry_after_header(exc: RetryAfterError) -> str:
    """Delta seconds (rounded up) for a delay, so the server's clock measures it; an
    absolute time as the official SDK sends it."""
    if exc.delay is not None:
        return str(math.ceil(exc.delay.total_seconds()))
    return iso_utc(exc.retry_at)


def iso_utc(value: datetime) -> str:
    """``2026-01-01T00:00:00.000Z``: the official SDK's ``retry-after`` format."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
