"""One SDK call cycle, two drivers: prepare -> call -> renew -> release -> gateway -> complete.

The dev worker (``devserver.worker``, asyncio, aiohttp) and the Lambda dispatcher
(``aws.dispatcher``, threads, httpx) make the same call the same way; what differs between
them is policy, not flow:

=====================  ============================  ==================================
                       dev driver                    Lambda driver
=====================  ============================  ==================================
server kind, timeout   ``dev``, 2 h                  ``cloud``, ``CallTimeoutSeconds``
slot renewal           asyncio task                  thread
blocked item           deferred in the SQLite queue  re-sent to SQS with a delay
failed transport       reachability log (once/app)   a warning per call
gateway requests       private addresses allowed     refused unless the stack allows
                                                     private app URLs; every connection
                                                     pinned (``aws.pinning``)
after the call         next claimed item             the run's next call, while time
                                                     remains (``aws.dispatcher``)
=====================  ============================  ==================================

The flow is written once, as a generator (``CallCycle.flow``): it yields each HTTP request
to make and receives the reply (or ``Unreachable``), so it does no I/O of its own beyond the
service's ports; ``drive_sync`` and ``drive_async`` feed it from a plain transport
(``Transport``: ``send(url, headers, body, timeout_s) -> Reply`` for the SDK call, and
``fetch(Outbound) -> Reply`` for a gateway request). The signed request is built once per
call: the JCS body ``prepare_call`` made, and its headers.

**Gateway ops.** ``step.fetch`` (``Gateway``) and ``step.ai.infer`` (``AIGateway``) ask the
server to make an HTTP request for the SDK; both drivers make it after the call's slots are
released and before the result is saved, so the memo is the answer (``engine.gateway``
holds the rules; the driver's transport only does the HTTP). The request may carry
credentials: only its redacted URL is ever logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from .. import signing
from ..engine import gateway, protocol
from ..engine.gate import SLOT_TTL_MS
from ..engine.gateway import Outbound
from ..engine.model import Run, WorkItem
from ..engine.ports import Clock
from ..engine.protocol import CallResponse, Op, parse_response, redact_url
from ..engine.service import Blocked, PreparedCall, Service
from ..engine.tracecontext import traceparent
from ..errors import ValidationError

__all__ = [
    "AsyncTransport",
    "Call",
    "CallCycle",
    "Fetch",
    "Policy",
    "Reply",
    "Request",
    "Result",
    "Transport",
    "Unreachable",
    "call_response",
    "drive_async",
    "drive_sync",
    "gateway_op",
]

log = logging.getLogger("wayline.calls")

RENEW_EVERY_S = SLOT_TTL_MS / 3000
"""Concurrency slots are renewed three times per lease: one missed renewal never loses one."""


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    headers: Mapping[str, str]
    body: bytes
    timeout_s: float


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class Unreachable(Exception):  # noqa: N818 - an outcome of a send, named for what happened
    """The transport got no HTTP response. ``reason`` is a few words with no secret in
    them (no URL: the cycle adds the redacted one); ``refused`` if the request was never
    sent because the address is not allowed (SSRF rules)."""

    def __init__(self, reason: str, *, kind: str = "", refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind or reason
        self.refused = refused


class Transport(Protocol):
    """A plain HTTP client: POST ``body`` with ``headers``; ``Unreachable`` if no reply.
    ``fetch`` makes a gateway request as it is (method, no redirects, its timeout), its
    body read up to ``max_bytes + 1`` bytes (enough to tell that it is too large)."""

    def send(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Reply: ...

    def fetch(self, request: Outbound) -> Reply: ...


class AsyncTransport(Protocol):
    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Reply: ...

    async def fetch(self, request: Outbound) -> Reply: ...


@dataclass(frozen=True, slots=True)
class Call:
    """A prepared call on its way: the work item, what the service prepared, the request."""

    item: WorkItem
    prepared: PreparedCall
    request: Request
    started_at: int


@dataclass(frozen=True)
class Policy:
    """What the two drivers do differently (module docstring)."""

    server_kind: str
    call_timeout_s: float
    renew_every_s: float = RENEW_EVERY_S
    allow_private: bool = False
    """Gateway requests may go to private addresses (``urls.check_app_url``)."""
    on_unreachable: Callable[[Call, Unreachable], None] = lambda call, exc: None
    on_reached: Callable[[Call], None] = lambda call: None
    acknowledge: Callable[[Service, WorkItem], None] | None = None
    """Remove the item from its queue in the same store commit as the call's result (the
    dev driver: one SQLite transaction per call); None: the driver acknowledges after."""


@dataclass(frozen=True, slots=True)
class Send:
    """What the flow asks its driver to do: send ``request``, renewing the call's
    concurrency slots with ``renew`` while it is in flight (if set)."""

    request: Request
    renew: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    """What the flow asks its driver to do for a gateway op: make ``request``."""

    request: Outbound


@dataclass(frozen=True, slots=True)
class Result:
    """How a cycle ended: ``blocked`` (a limit was full: the driver retries the item),
    ``response`` set (the call was made and its result saved: ``run`` as saved), or
    neither (the item was stale: nothing to do)."""

    blocked: Blocked | None = None
    response: CallResponse | None = None
    run: Run | None = None
    function_id: str | None = None
    acknowledged: bool = False
    """The item was removed from its queue with the result (``Policy.acknowledge``)."""


Step = Send | Fetch
Flow = Generator[Step, Reply | Unreachable, Result]
T = TypeVar("T")


class CallCycle:
    """The flow of one call item (see the module docstring). ``checkpoint(name)`` is called
    at ``before_call`` (prepared, nothing sent), ``after_answer`` (the app answered,
    nothing saved) and ``completed`` (result saved): a seam where tests stop a driver the
    way a dying process would."""

    def __init__(
        self,
        service: Service,
        clock: Clock,
        policy: Policy,
        *,
        signing_key: Callable[[], str | None],
        checkpoint: Callable[[str], None] | None = None,
    ) -> None:
        self.service = service
        self.policy = policy
        self._clock = clock
        self._signing_key = signing_key
        self._checkpoint = checkpoint or (lambda _name: None)

    def request(self, prepared: PreparedCall) -> Request:
        """The signed request: the body ``prepare_call`` encoded, signed once."""
        body = prepared.payload or signing.canonical_json(prepared.body)
        headers = protocol.server_headers(
            kind=self.policy.server_kind,
            body=body,
            signing_key=self._signing_key(),
            now_ms=self._clock.now_ms(),
        )
        headers["x-inngest-req-version"] = str(max(prepared.run.request_version, 2))
        headers["x-run-id"] = prepared.run.id
        headers["traceparent"] = traceparent(prepared.run.id)  # the app's spans join the run
        headers.update(protocol.call_headers(prepared.body))  # x-request-id when checkpointing
        return Request(prepared.url, headers, body, self.policy.call_timeout_s)

    def flow(self, item: WorkItem) -> Flow:
        prepared = self.service.prepare_call(item)
        if prepared is None:
            return Result()
        if isinstance(prepared, Blocked):
            return Result(blocked=prepared)
        call = Call(item, prepared, self.request(prepared), self._clock.now_ms())
        renew = (lambda: self.service.renew_call(prepared, item)) if prepared.slots else None
        self._checkpoint("before_call")
        try:
            reply = yield Send(call.request, renew)
        finally:
            self.service.release_call(prepared, item)
        response = self._response(call, reply)
        if any(gateway.needs_call(op) for op in response.ops or ()):
            ops = []
            for op in response.ops or ():
                ops.append((yield from gateway_op(op, self.policy.allow_private, prepared.run.id)))
            response = replace(response, ops=tuple(ops))
        self._checkpoint("after_answer")
        acknowledge = self.policy.acknowledge
        with self.service.batch():
            run = self.service.complete_call(
                item, response, started_at=call.started_at, run=prepared.run
            )
            if acknowledge is not None:
                acknowledge(self.service, item)
        self._checkpoint("completed")
        return Result(
            response=response,
            run=run,
            function_id=prepared.fn.id,
            acknowledged=acknowledge is not None,
        )

    def _response(self, call: Call, reply: Reply | Unreachable) -> CallResponse:
        if isinstance(reply, Unreachable):
            self.policy.on_unreachable(call, reply)
        else:
            self.policy.on_reached(call)
        return call_response(call.request.url, reply)


def gateway_op(
    op: Op, allow_private: bool, run_id: str
) -> Generator[Fetch, Reply | Unreachable, Op]:
    """``op`` with the outcome of the request a gateway op asks for (other ops, and gateway
    ops already resolved, pass through). ``allow_private``: the policy's."""
    if not gateway.needs_call(op):
        return op
    try:
        request = gateway.outbound(op, allow_private=allow_private)
    except ValidationError as exc:
        return gateway.refused(op, exc)
    reply = yield Fetch(request)
    if not isinstance(reply, Unreachable):
        return gateway.answered(
            op, request, status=reply.status, headers=reply.headers, body=reply.body
        )
    if reply.refused:  # the pinned connection refused a resolved address
        return gateway.refused(op, ValidationError(reply.reason))
    log.warning(
        "gateway request (%s) to %s failed (%s)",
        op.op,
        redact_url(request.url),
        reply.kind,
        extra={"run_id": run_id},
    )
    return gateway.unreachable(op, request, reply.kind)


def call_response(url: str, reply: Reply | Unreachable) -> CallResponse:
    """What the engine is told about a call to ``url``: the SDK's answer, parsed, or a
    transport failure naming the redacted URL (never its query or credentials)."""
    if isinstance(reply, Unreachable):
        if reply.refused:
            return CallResponse.failed_transport(f"refused to call the app: {reply.reason}")
        return CallResponse.failed_transport(f"could not reach {redact_url(url)}: {reply.reason}")
    return parse_response(reply.status, dict(reply.headers), reply.body)


def drive_sync(
    flow: Generator[Step, Reply | Unreachable, T], transport: Transport, *, renew_every_s: float
) -> T:
    """Run ``flow`` to its end over a blocking transport; slots renewed by a thread."""
    try:
        step = next(flow)
        while True:
            step = flow.send(_send_sync(transport, step, renew_every_s))
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        flow.close()  # a send that raised: the flow's slots are released


def _send_sync(transport: Transport, step: Step, renew_every_s: float) -> Reply | Unreachable:
    if isinstance(step, Fetch):
        outbound = step.request
        return _or_unreachable(lambda: transport.fetch(outbound))
    r = step.request
    if step.renew is None:
        return _or_unreachable(lambda: transport.send(r.url, r.headers, r.body, r.timeout_s))
    done = threading.Event()
    renew = step.renew

    def renewing() -> None:
        while not done.wait(renew_every_s):
            renew()

    renewer = threading.Thread(target=renewing, name="renew-slots", daemon=True)
    renewer.start()
    try:
        return _or_unreachable(lambda: transport.send(r.url, r.headers, r.body, r.timeout_s))
    finally:
        done.set()
        renewer.join()


def _or_unreachable(send: Callable[[], Reply]) -> Reply | Unreachable:
    try:
        return send()
    except Unreachable as exc:
        return exc


async def drive_async(
    flow: Generator[Step, Reply | Unreachable, T],
    transport: AsyncTransport,
    *,
    renew_every_s: float,
    run_step: StepRunner | None = None,
) -> T:
    """Run ``flow`` to its end over an asyncio transport; slots renewed by a task.

    ``run_step`` runs each of the flow's synchronous steps (its store work between two
    requests) and gives back what it returned: the dev worker's runs the steps of one
    loop turn in one transaction (``turn_batch``); None runs each at once."""
    run = run_step or _run_now
    try:
        step = await run(functools.partial(_advance, flow, None))
        while not isinstance(step, _Done):
            reply = await _send_async(transport, step, renew_every_s)
            step = await run(functools.partial(_advance, flow, reply))
        result: T = step.value
        return result
    finally:
        flow.close()


@dataclass(frozen=True, slots=True)
class _Done:
    """A flow's end, as a step's result (a ``StopIteration`` cannot cross a future)."""

    value: Any


StepRunner = Callable[[Callable[[], "Step | _Done"]], Awaitable["Step | _Done"]]


def _advance(
    flow: Generator[Step, Reply | Unreachable, Any], reply: Reply | Unreachable | None
) -> Step | _Done:
    """The flow's next request after ``reply`` (its first for None), or its end."""
    try:
        return next(flow) if reply is None else flow.send(reply)
    except StopIteration as done:
        return _Done(done.value)


async def _run_now(step: Callable[[], Step | _Done]) -> Step | _Done:
    return step()


async def _send_async(
    transport: AsyncTransport, step: Step, renew_every_s: float
) -> Reply | Unreachable:
    if isinstance(step, Fetch):
        try:
            return await transport.fetch(step.request)
        except Unreachable as exc:
            return exc
    r = step.request
    renewer = asyncio.create_task(_renewing(step.renew, renew_every_s)) if step.renew else None
    try:
        return await transport.send(r.url, r.headers, r.body, r.timeout_s)
    except Unreachable as exc:
        return exc
    finally:
        if renewer is not None:
            renewer.cancel()


async def _renewing(renew: Callable[[], None], every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        renew()
