"""Checkpointing: several ``step.run``s in one request, each reported to the server as it ends.

The protocol is npm ``inngest`` v4's async checkpointing (research note checkpointing.md §1):
when the server's call request carries ``ctx.fn_id`` and ``ctx.qi_id``, targets no step and
allows immediate execution, the SDK runs consecutive ``step.run``s inline and, after each
body succeeds, POSTs ``{api}/v1/checkpoint/{runId}/async`` with the step's ``StepRun``
opcode. Wayline runs it in *safe* mode (§3.3): the value goes back to user code only after
the server acknowledged it with a 2xx, so a crash loses at most the step in flight.

Answers (§1.3):

* 2xx: saved; the function continues in the same request.
* 409: this dispatch is stale (the server retried it elsewhere, or the run ended): halt.
* another 4xx that judges the request itself (400 bad op, 401/403 after the fallback key,
  404 no such route, 413 over a size limit): retrying the same bytes cannot succeed, so the
  SDK falls back at once to the classic ``206 [StepRun]`` answer (npm ``inngest`` retries
  them; that costs ~1.7 s a step for nothing).
* anything else (5xx, 408, 429, network): retried ``ATTEMPTS`` times with exponential
  backoff plus jitter, then the same classic fallback; nothing is lost, because the server
  stores the step from the 206 instead.

The request flow is sans-I/O (``effects.Flow``), driven blocking for ``def`` functions and on
the event loop for ``async def`` ones, with an injectable sleep so tests do not wait.
"""

from __future__ import annotations

import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from wayline import signing

from . import protocol, serialize
from .acks import Ack
from .effects import (
    Flow,
    HttpFailure,
    HttpRequest,
    HttpResponse,
    Transport,
    drive,
    drive_async,
    http,
    pause,
)
from .options import DEFAULT_MAX_RUNTIME, Checkpointing, as_checkpointing
from .planner import Op

__all__ = [
    "DEFAULT_MAX_RUNTIME",
    "Ack",
    "Checkpointer",
    "Checkpointing",
    "as_checkpointing",
]

ATTEMPTS = 5
BASE_DELAY_S = 0.1
"""Delays 0.1, 0.2, 0.4, 0.8 s (plus up to 0.1 s jitter each): ~1.5-1.9 s before falling back."""
REQUEST_TIMEOUT_S = 10.0
LAMBDA_MARGIN = timedelta(seconds=2)
"""Time kept back from a Lambda's remaining time, for the last answer to get out."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom one call's checkpoints go: facts of the server's call request."""

    api_origin: str
    run_id: str
    fn_id: str
    qi_id: str
    request_id: str
    generation_id: int | None
    started_at_ms: int
    signing_keys: tuple[str, ...]
    env: str | None


def target_of(
    request: protocol.CallRequest,
    headers: Mapping[str, str],
    *,
    api_origin: str | None,
    signing_keys: tuple[str, ...],
    env: str | None,
    now_ms: int,
) -> Target | None:
    """The checkpoint target of a call, or None when the server did not offer checkpointing.

    Both ``fn_id`` and ``qi_id`` are required: JS would try and fail per step without
    ``qi_id``; Wayline simply stays classic.
    """
    if not (request.fn_id and request.qi_id and request.run_id and api_origin):
        return None
    generation = headers.get("x-inngest-generation-id", "")
    return Target(
        api_origin=api_origin,
        run_id=request.run_id,
        fn_id=request.fn_id,
        qi_id=request.qi_id,
        request_id=headers.get("x-request-id", ""),
        generation_id=int(generation) if generation.strip().isdigit() else None,
        started_at_ms=now_ms,
        signing_keys=signing_keys,
        env=env,
    )


def auth_headers(headers: Mapping[str, str], keys: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    """``headers`` once per key to try, each with ``Authorization: Bearer <hashed key>``
    (the signing key's, then the fallback's); as they are when there is no key."""
    if not keys:
        return (dict(headers),)
    return tuple(
        {**headers, "authorization": f"Bearer {signing.hash_signing_key(key)}"} for key in keys
    )


def authed(request: HttpRequest, keys: tuple[str, ...]) -> Flow[HttpResponse | HttpFailure]:
    """Send with ``Authorization: Bearer <hashed key>``, retrying once with the fallback key."""
    return (yield from send_authed(request, auth_headers(request.headers, keys)))


def send_authed(
    request: HttpRequest, variants: tuple[Mapping[str, str], ...]
) -> Flow[HttpResponse | HttpFailure]:
    """Send ``request`` with each header variant (``auth_headers``) in turn until one is not
    refused with 401/403."""
    result: HttpResponse | HttpFailure = HttpFailure("not sent")
    for headers in variants:
        attempt = (
            request
            if headers is request.headers
            else HttpRequest(request.method, request.url, headers, request.body, request.timeout_s)
        )
        result = yield from http(attempt)
        if not (isinstance(result, HttpResponse) and result.status in (401, 403)):
            return result
    return result


@dataclass(frozen=True, slots=True)
class Wire:
    """What every checkpoint of one call shares: where it is POSTed, the header variants to
    send it with (``auth_headers``), and its body's bytes before the step and after ``ts``."""

    url: str
    headers: tuple[dict[str, str], ...]
    head: bytes
    tail: bytes


def wire_of(target: Target) -> Wire:
    run = urllib.parse.quote(target.run_id, safe="")
    headers = {
        "content-type": "application/json",
        "user-agent": protocol.SDK_NAME,
        "x-inngest-sdk": protocol.SDK_NAME,
    }
    if target.env:
        headers["x-inngest-env"] = target.env
    fields = {
        "run_id": target.run_id,
        "fn_id": target.fn_id,
        "qi_id": target.qi_id,
        "request_id": target.request_id,
        "request_started_at": target.started_at_ms,
    }
    tail = b"}"
    if target.generation_id is not None:
        tail = b',"generation_id":%d}' % target.generation_id
    return Wire(
        url=f"{target.api_origin}/v1/checkpoint/{run}/async",
        headers=auth_headers(headers, target.signing_keys),
        head=serialize.dumps(fields)[:-1] + b',"steps":[',
        tail=tail,
    )


def body_bytes(wire: Wire, op: Op, data: bytes, now_ms: int, body_s: float) -> bytes:
    """The JS v4 checkpoint body for one ``StepRun``: the op exactly as a classic 206 would
    carry it (``data``: ``op.data`` already as JSON), plus ``timing.b``, the body's duration
    in nanoseconds (the server dates the step by it).

    Built from bytes: the call's part once (``wire``), ``op.data`` encoded once for the
    checkpoint and for the value user code gets back. Byte for byte what ``serialize.dumps``
    makes of ``{"run_id", "fn_id", "qi_id", "request_id", "request_started_at",
    "steps": [step], "ts", "generation_id"?}``.
    """
    step = protocol.op_json(op)
    del step["data"]
    error = step.pop("error", None)
    parts = [wire.head, serialize.dumps(step)[:-1], b',"data":', data]
    if error is not None:
        parts += [b',"error":', serialize.dumps(error)]
    nanos = max(0, round(body_s * 1e9))
    parts.append(b',"timing":{"b":%d}}],"ts":%d%s' % (nanos, now_ms, wire.tail))
    return b"".join(parts)


def checkpoint_flow(
    wire: Wire,
    op: Op,
    data: bytes,
    body_s: float,
    *,
    now_ms: Callable[[], int],
    jitter_s: Callable[[], float],
) -> Flow[tuple[Ack, str]]:
    """POST one step (``data``: its ``op.data`` as JSON), retried with backoff; the outcome
    and, on failure, why."""
    problem = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            yield from pause(BASE_DELAY_S * 2 ** (attempt - 1) + jitter_s())
        payload = body_bytes(wire, op, data, now_ms(), body_s)
        request = HttpRequest("POST", wire.url, wire.headers[0], payload, REQUEST_TIMEOUT_S)
        res = yield from send_authed(request, wire.headers)
        if isinstance(res, HttpResponse) and 200 <= res.status < 300:
            return Ack.SAVED, ""
        if isinstance(res, HttpResponse) and res.status == 409:
            return Ack.STALE, _reason(res)
        if isinstance(res, HttpResponse) and _judges_the_request(res.status):
            return Ack.FAILED, _reason(res)
        problem = res.message if isinstance(res, HttpFailure) else _reason(res)
    return Ack.FAILED, problem


def _judges_the_request(status: int) -> bool:
    """A 4xx about the request itself, which the same request again cannot change (not a
    timeout, a conflict or a rate limit)."""
    return 400 <= status < 500 and status not in (408, 409, 425, 429)


def _reason(res: HttpResponse) -> str:
    return f"HTTP {res.status} {res.body[:200].decode('utf-8', 'replace')}".strip()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _jitter() -> float:
    return random.uniform(0, BASE_DELAY_S)


async def _async_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Clocks:
    """Time and randomness for checkpointing, injectable so tests are fast and exact."""

    now_ms: Callable[[], int] = _now_ms
    monotonic_s: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    sleep_async: Callable[[float], Awaitable[None]] = _async_sleep
    jitter_s: Callable[[], float] = _jitter


class Checkpointer:
    """Sends one call's checkpoints (blocking or on the loop) and keeps its runtime budget."""

    def __init__(
        self, target: Target, transport: Transport, *, max_runtime_s: float, clocks: Clocks
    ) -> None:
        self.target = target
        self.clocks = clocks
        self._transport = transport
        self._deadline = clocks.monotonic_s() + max_runtime_s
        self._wire: Wire | None = None

    def expired(self) -> bool:
        """True once the request has run its ``max_runtime``: plan the next step, don't run it."""
        return self.clocks.monotonic_s() >= self._deadline

    def _flow(self, op: Op, data: bytes, body_s: float) -> Flow[tuple[Ack, str]]:
        if self._wire is None:
            self._wire = wire_of(self.target)
        clocks = self.clocks
        return checkpoint_flow(
            self._wire, op, data, body_s, now_ms=clocks.now_ms, jitter_s=clocks.jitter_s
        )

    def send(self, op: Op, data: bytes, body_s: float = 0.0) -> tuple[Ack, str]:
        """Checkpoint ``op`` (``data``: its data as JSON; a step body that ran ``body_s``
        seconds), blocking."""
        transport = self._transport
        return drive(
            self._flow(op, data, body_s),
            transport,
            send=transport.send_checkpoint,
            sleep=self.clocks.sleep,
        )

    async def send_async(self, op: Op, data: bytes, body_s: float = 0.0) -> tuple[Ack, str]:
        """Checkpoint ``op`` on the running loop."""
        transport = self._transport
        return await drive_async(
            self._flow(op, data, body_s),
            transport,
            send=transport.send_checkpoint_async,
            sleep=self.clocks.sleep_async,
        )

    async def aclose(self) -> None:
        """Nothing to close: checkpoint connections are pooled per loop and per thread
        (``lean_http``) and outlive the call."""
