"""Signed HTTP calls from the server to an app's serve endpoint (real HTTP, aiohttp)."""

from __future__ import annotations

import logging
from dataclasses import replace
from types import SimpleNamespace

import aiohttp

from .. import signing
from ..engine import gateway, protocol
from ..engine.ports import Clock
from ..engine.protocol import CallResponse, Op, parse_response, redact_url
from ..engine.service import PreparedCall
from ..engine.tracecontext import traceparent
from ..errors import ValidationError
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


def server_headers(*, signing_key: str | None, body: bytes, clock: Clock) -> dict[str, str]:
    """Headers on every server -> SDK request, with this server's kind."""
    return protocol.server_headers(
        kind=SERVER_KIND, body=body, signing_key=signing_key, now_ms=clock.now_ms()
    )


class HttpInvoker:
    """aiohttp, not httpx, on this hot path: measured in bench/ at about half the CPU per call."""

    def __init__(self, *, clock: Clock, signing_key: str | None = None) -> None:
        self._clock = clock
        self._signing_key = signing_key
        self._session: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None
        self.reachability = Reachability(log)

    def _fresh_client(self) -> aiohttp.ClientSession:
        """A session that never reuses a connection, for the retry of a stale one."""
        if self._fresh is None:
            self._fresh = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S, sock_connect=10.0),
                connector=lenient_connector(force_close=True),
                auto_decompress=True,
            )
        return self._fresh

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            trace = aiohttp.TraceConfig()
            trace.on_connection_reuseconn.append(_mark_reused)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S, sock_connect=10.0),
                connector=lenient_connector(limit=256, keepalive_timeout=KEEPALIVE_S),
                auto_decompress=True,
                trace_configs=[trace],
            )
        return self._session

    async def call(self, prepared: PreparedCall) -> CallResponse:
        body = prepared.payload or signing.canonical_json(prepared.body)
        headers = server_headers(signing_key=self._signing_key, body=body, clock=self._clock)
        headers["x-inngest-req-version"] = str(max(prepared.run.request_version, 2))
        headers["x-run-id"] = prepared.run.id
        headers["traceparent"] = traceparent(prepared.run.id)  # the app's spans join the run
        headers.update(protocol.call_headers(prepared.body))  # x-request-id when checkpointing
        try:
            response = await self._post(prepared.url, body, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            where = redact_url(prepared.url)
            reason = describe(exc)
            self.reachability.failed(prepared.url, reason, call_context(prepared))
            return CallResponse.failed_transport(f"could not reach {where}: {reason}")
        self.reachability.reached(prepared.url)
        if response.ops and any(gateway.needs_call(op) for op in response.ops):
            ops = tuple([await self._gateway(op, prepared.run.id) for op in response.ops])
            response = replace(response, ops=ops)
        return response

    async def _gateway(self, op: Op, run_id: str) -> Op:
        """Make the request a gateway op (``AIGateway``, ``Gateway``) asks for; other ops
        pass through. The rules are ``engine.gateway``'s; this is only the transport.

        Private addresses are allowed, as for apps (``wayline dev -u`` allows them): the dev
        server serves local apps and their local fakes. The request may carry credentials,
        so only its redacted URL is ever logged.
        """
        if not gateway.needs_call(op):
            return op
        try:
            request = gateway.outbound(op, allow_private=True)
        except ValidationError as exc:
            return gateway.refused(op, exc)
        try:
            async with self._client().request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=request.timeout_s, sock_connect=10.0),
            ) as resp:
                body = await _read_at_most(resp, request.max_bytes)
                return gateway.answered(
                    op, request, status=resp.status, headers=dict(resp.headers), body=body
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "gateway request (%s) to %s failed (%s)",
                op.op,
                redact_url(request.url),
                type(exc).__name__,
                extra={"run_id": run_id},
            )
            return gateway.unreachable(op, request, type(exc).__name__)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> CallResponse:
        """POST once; again on a new connection if a reused one was already dead.

        The app never saw a request that died that way (it had closed the connection
        before the request reached it), so the retry is not a second attempt of the step:
        counting it as one failed ``retries=0`` functions across an idle gap (issue 12,
        item 5). A fresh connection that dies is a real failure and is not retried.
        """
        ctx = SimpleNamespace(reused=False, responded=False)
        try:
            return await self._post_with(url, body, headers, ctx, fresh=False)
        except STALE_CONNECTION_ERRORS:
            if not ctx.reused or ctx.responded:
                raise
            log.info(
                "connection to %s was closed by the app while idle: retrying on a new one",
                redact_url(url),
            )
            return await self._post_with(url, body, headers, ctx, fresh=True)

    async def _post_with(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        ctx: SimpleNamespace,
        *,
        fresh: bool,
    ) -> CallResponse:
        session = self._fresh_client() if fresh else self._client()
        async with session.post(
            url, data=body, headers=headers, allow_redirects=False, trace_request_ctx=ctx
        ) as resp:
            ctx.responded = True
            content = await resp.read()
            return parse_response(resp.status, dict(resp.headers), content)

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


async def _mark_reused(
    _session: aiohttp.ClientSession,
    ctx: SimpleNamespace,
    _params: aiohttp.TraceConnectionReuseconnParams,
) -> None:
    if ctx.trace_request_ctx is not None:
        ctx.trace_request_ctx.reused = True


def call_context(prepared: PreparedCall) -> dict[str, object]:
    """What a log line about this call is about: the run, its function and the step (none
    for a discovery call, which runs the function to find its next step)."""
    ctx = prepared.body.get("ctx")
    step_id = ctx.get("step_id") if isinstance(ctx, dict) else None
    if step_id == protocol.STEP_QUERY_DISCOVERY:
        step_id = None
    return {"run_id": prepared.run.id, "function_id": prepared.fn.id, "step_id": step_id}
