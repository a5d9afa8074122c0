"""Signed HTTP calls from the server to an app's serve endpoint (real HTTP, aiohttp)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import aiohttp

from .. import signing
from ..engine import protocol
from ..engine.ports import Clock
from ..engine.protocol import CallResponse, parse_response, redact_url
from ..engine.service import PreparedCall
from .lenient_http import lenient_connector

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
        try:
            return await self._post(prepared.url, body, headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            where = redact_url(prepared.url)
            log.warning(
                "SDK call failed: cannot reach %s (%s)",
                where,
                type(exc).__name__,
                extra={"run_id": prepared.run.id},
            )
            return CallResponse.failed_transport(f"could not reach {where}: {type(exc).__name__}")

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


async def _mark_reused(
    _session: aiohttp.ClientSession,
    ctx: SimpleNamespace,
    _params: aiohttp.TraceConnectionReuseconnParams,
) -> None:
    if ctx.trace_request_ctx is not None:
        ctx.trace_request_ctx.reused = True
