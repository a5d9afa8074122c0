"""The dev server's transport to apps' serve endpoints (real HTTP, aiohttp), and its policy
for the call cycle (``wayline.calls.cycle``): ``dev`` server kind, 2 h calls, gateway
requests (``step.fetch``, ``step.ai.infer``) to private addresses allowed, an unreachable
app reported once (``reachability``)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from contextvars import ContextVar

import aiohttp
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from yarl import URL

from ..calls.cycle import Call, Policy, Reply, Unreachable
from ..engine import protocol
from ..engine.gateway import Outbound
from ..engine.ports import Clock
from ..engine.protocol import redact_url
from ..engine.service import PreparedCall
from .lenient_http import lenient_connector
from .reachability import Reachability, describe

log = logging.getLogger("wayline.invoker")

SERVER_KIND = "dev"
CALL_TIMEOUT_S = 2 * 3600.0
"""A single function or step request may last at most 2 h, as on Inngest."""
KEEPALIVE_S = 2.0
"""How long an idle connection to an app is kept: shorter than common servers' own idle
timeouts (uvicorn 5 s, gunicorn 2 s is equal, Node 5 s), so the app rarely closes one
first. When it does anyway (the close races a new request), the call is retried once."""
STALE_CONNECTION_ERRORS = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
"""What a pooled connection the app already closed fails with, before any response byte."""


class _Attempt:
    """What ``send`` must know of its request when it fails: was the connection a pooled
    one, had a response begun."""

    __slots__ = ("responded", "reused")

    def __init__(self) -> None:
        self.reused = False
        self.responded = False


_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("wayline_invoker_attempt", default=None)
"""The ``send`` in progress in this task (aiohttp connects inside the caller's task)."""


class _ReuseNoticingConnector(aiohttp.TCPConnector):
    """Marks the ``send`` in progress when it is handed a pooled connection (one that has
    already carried a response). An ``aiohttp.TraceConfig`` did this before; with one
    configured, every request awaits every trace signal, about 1 % of the dev server's
    CPU in the W2 bench for one bit of information."""

    async def connect(
        self, req: aiohttp.ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        attempt = _ATTEMPT.get()
        if attempt is not None and getattr(conn.protocol, "served", False):
            attempt.reused = True
        return conn


@functools.lru_cache(maxsize=16)
def _timeout(total_s: float) -> aiohttp.ClientTimeout:
    """The timeout of a request to the app (or a gateway request): ``total_s`` in all, 10 s
    to connect. One (immutable) object per duration, not one per call."""
    return aiohttp.ClientTimeout(total=total_s, sock_connect=10.0)


@functools.lru_cache(maxsize=256)
def _parsed(url: str) -> URL:
    """An app's URL parsed once, not on every call to it (immutable)."""
    return URL(url)


def server_headers(*, signing_key: str | None, body: bytes, clock: Clock) -> dict[str, str]:
    """Headers on every server -> SDK request, with this server's kind."""
    return protocol.server_headers(
        kind=SERVER_KIND, body=body, signing_key=signing_key, now_ms=clock.now_ms()
    )


def dev_policy(reachability: Reachability | None = None) -> Policy:
    """The dev driver's policy: an app that is down is said once, loudly (``reachability``);
    gateway requests may go to private addresses, as calls to apps may (``wayline dev``
    serves local apps and their local fakes)."""
    reachability = reachability or Reachability(log)

    def unreachable(call: Call, exc: Unreachable) -> None:
        reachability.failed(call.request.url, exc.reason, call_context(call.prepared))

    return Policy(
        server_kind=SERVER_KIND,
        call_timeout_s=CALL_TIMEOUT_S,
        allow_private=True,
        on_unreachable=unreachable,
        on_reached=lambda call: reachability.reached(call.request.url),
        acknowledge=lambda service, item: service.store.queue.ack(item.id),
    )


class AiohttpTransport:
    """aiohttp, not httpx, on this hot path: measured in bench/ at about half the CPU per
    call. ``Unreachable`` when no response came (its reason: ``reachability.describe``)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None

    def _fresh_client(self) -> aiohttp.ClientSession:
        """A session that never reuses a connection, for the retry of a stale one."""
        if self._fresh is None:
            self._fresh = aiohttp.ClientSession(
                timeout=_timeout(CALL_TIMEOUT_S),
                connector=lenient_connector(force_close=True),
                auto_decompress=True,
            )
        return self._fresh

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=_timeout(CALL_TIMEOUT_S),
                connector=lenient_connector(
                    _ReuseNoticingConnector, limit=256, keepalive_timeout=KEEPALIVE_S
                ),
                auto_decompress=True,
            )
        return self._session

    async def send(
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Reply:
        """POST once; again on a new connection if a reused one was already dead.

        The app never saw a request that died that way (it had closed the connection
        before the request reached it), so the retry is not a second attempt of the step:
        counting it as one failed ``retries=0`` functions across an idle gap (issue 12,
        item 5). A fresh connection that dies is a real failure and is not retried.
        """
        attempt = _Attempt()
        timeout = _timeout(timeout_s)
        token = _ATTEMPT.set(attempt)
        try:
            try:
                return await self._post(url, body, headers, attempt, timeout, fresh=False)
            except STALE_CONNECTION_ERRORS:
                if not attempt.reused or attempt.responded:
                    raise
                log.info(
                    "connection to %s was closed by the app while idle: retrying on a new one",
                    redact_url(url),
                )
                return await self._post(url, body, headers, attempt, timeout, fresh=True)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(describe(exc), kind=type(exc).__name__) from exc
        finally:
            _ATTEMPT.reset(token)

    async def _post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        attempt: _Attempt,
        timeout: aiohttp.ClientTimeout,
        *,
        fresh: bool,
    ) -> Reply:
        session = self._fresh_client() if fresh else self._client()
        async with session.post(
            _parsed(url), data=body, headers=headers, allow_redirects=False, timeout=timeout
        ) as resp:
            attempt.responded = True
            content = await resp.read()
            return Reply(resp.status, dict(resp.headers), content)

    async def fetch(self, request: Outbound) -> Reply:
        """Make a gateway request as it is (its method, no redirects, its timeout); the
        body read up to ``max_bytes + 1`` bytes."""
        try:
            async with self._client().request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                timeout=_timeout(request.timeout_s),
            ) as resp:
                body = await _read_at_most(resp, request.max_bytes)
                return Reply(resp.status, dict(resp.headers), body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unreachable(describe(exc), kind=type(exc).__name__) from exc

    async def close(self) -> None:
        for session in (self._session, self._fresh):
            if session is not None:
                await session.close()


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first ``limit + 1`` bytes: enough to tell that it is too large."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


def call_context(prepared: PreparedCall) -> dict[str, object]:
    """What a log line about this call is about: the run, its function and the step (none
    for a discovery call, which runs the function to find its next step)."""
    ctx = prepared.body.get("ctx")
    step_id = ctx.get("step_id") if isinstance(ctx, dict) else None
    if step_id == protocol.STEP_QUERY_DISCOVERY:
        step_id = None
    return {"run_id": prepared.run.id, "function_id": prepared.fn.id, "step_id": step_id}
