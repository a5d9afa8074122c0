"""Signed HTTP calls from the dispatch function to an app's serve endpoint (sync, httpx).

The same request the dev server's invoker sends (``wayline.devserver.invoker``: JCS body,
``X-Inngest-Signature``, request version, run id), except that a Lambda function handles
one call at a time, so this one is synchronous, and the server kind is ``cloud``: on AWS,
Wayline plays Inngest Cloud to apps running the SDKs in production mode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import httpx

from wayline import signing
from wayline.engine import gateway, protocol
from wayline.engine.ports import Clock
from wayline.engine.protocol import CallResponse, Op, parse_response, redact_url
from wayline.engine.service import PreparedCall
from wayline.engine.tracecontext import traceparent
from wayline.errors import ValidationError

from .pinning import Resolver, pinned_client, system_resolver

__all__ = ["SERVER_KIND", "SyncInvoker", "server_headers"]

log = logging.getLogger("wayline.aws.invoker")

SERVER_KIND = "cloud"


def server_headers(*, signing_key: str | None, body: bytes, clock: Clock) -> dict[str, str]:
    """Headers on every server -> SDK request, with this server's kind."""
    return protocol.server_headers(
        kind=SERVER_KIND, body=body, signing_key=signing_key, now_ms=clock.now_ms()
    )


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The body, or its first ``limit + 1`` bytes: enough to tell that it is too large."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)


class SyncInvoker:
    """One httpx client per container (keep-alive across invocations), no redirects, and
    every connection pinned to an address the SSRF rules allow (``pinning``).

    ``signing_key`` is a callable so that a rotated key (cached from SSM) is picked up
    without a cold start.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        signing_key: Callable[[], str | None],
        timeout_s: float,
        allow_private: bool = False,
        resolve: Resolver = system_resolver,
        client: httpx.Client | None = None,
    ) -> None:
        self._clock = clock
        self._signing_key = signing_key
        self._allow_private = allow_private
        self._client = client or pinned_client(
            allow_private=allow_private,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            resolve=resolve,
        )

    def call(self, prepared: PreparedCall) -> CallResponse:
        body = prepared.payload or signing.canonical_json(prepared.body)
        headers = server_headers(signing_key=self._signing_key(), body=body, clock=self._clock)
        headers["x-inngest-req-version"] = str(max(prepared.run.request_version, 2))
        headers["x-run-id"] = prepared.run.id
        headers["traceparent"] = traceparent(prepared.run.id)  # the app's spans join the run
        headers.update(protocol.call_headers(prepared.body))  # x-request-id when checkpointing
        try:
            response = self._client.post(prepared.url, content=body, headers=headers)
        except ValidationError as exc:
            log.warning("SDK call refused: %s", exc, extra={"run_id": prepared.run.id})
            return CallResponse.failed_transport(f"refused to call the app: {exc}")
        except httpx.HTTPError as exc:
            where = redact_url(prepared.url)
            log.warning(
                "SDK call failed: cannot reach %s (%s)",
                where,
                type(exc).__name__,
                extra={"run_id": prepared.run.id},
            )
            return CallResponse.failed_transport(f"could not reach {where}: {type(exc).__name__}")
        parsed = parse_response(response.status_code, dict(response.headers), response.content)
        if parsed.ops and any(gateway.needs_call(op) for op in parsed.ops):
            ops = tuple(self._gateway(op, prepared.run.id) for op in parsed.ops)
            parsed = replace(parsed, ops=ops)
        return parsed

    def _gateway(self, op: Op, run_id: str) -> Op:
        """Make the request a gateway op (``step.fetch``, ``step.ai.infer``) asks for, as
        the dev server's invoker does (the rules are ``engine.gateway``'s), over the same
        pinned client as app calls: the target passes the same SSRF checks."""
        if not gateway.needs_call(op):
            return op
        try:
            request = gateway.outbound(op, allow_private=self._allow_private)
        except ValidationError as exc:
            return gateway.refused(op, exc)
        try:
            with self._client.stream(
                request.method,
                request.url,
                content=request.body,
                headers=request.headers,
                timeout=httpx.Timeout(request.timeout_s, connect=10.0),
            ) as response:
                body = _read_at_most(response, request.max_bytes)
                return gateway.answered(
                    op, request, status=response.status_code, headers=response.headers, body=body
                )
        except ValidationError as exc:  # the pinned connection refused a resolved address
            return gateway.refused(op, exc)
        except httpx.HTTPError as exc:
            log.warning(
                "gateway request (%s) to %s failed (%s)",
                op.op,
                redact_url(request.url),
                type(exc).__name__,
                extra={"run_id": run_id},
            )
            return gateway.unreachable(op, request, type(exc).__name__)

    def close(self) -> None:
        self._client.close()
