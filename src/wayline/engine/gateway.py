"""The ``Gateway`` opcode (``step.fetch``): the server makes an HTTP request for the SDK.

The wire op is the official one (inngest-js ``step.fetch`` / ``fetch`` from ``inngest``):
``{"op": "Gateway", "displayName": "step.fetch: <host>", "opts": {"url", "method",
"headers", "body"}}``. As Inngest's executor does, the server sends the request while it
handles the SDK response that reported the op and memoizes the answer as the step's data,
``{"url", "status_code", "headers", "body"}`` (the body as text), so the app need not be up
while the target answers: it only needs to be up again to use the memo. A request that could
not be sent (connection refused, timeout) is retried by retrying the SDK call that reported
it, and the last failure is memoized as the step's error (``GatewayError``).

Wayline's SDK adds two opts the official ones do not send (so an official SDK's fetch keeps
Inngest's semantics, where any HTTP answer is the result): ``retry_5xx`` (a 5xx answer is
retried like a failed request) and ``timeout_ms``. Responses larger than
``MAX_RESPONSE_BYTES`` fail the step without retry, as do URLs the SSRF rules refuse
(``urls.check_app_url``; on AWS every connection is also pinned to a checked address).

The request's headers carry credentials (``Authorization``): they are never stored (no
request is) and never logged; a log line names the redacted URL only.

This module is pure: ``outbound`` turns an op into a request, the driver does the HTTP, and
``answered`` / ``unreachable`` / ``refused`` put the outcome on the op; the machine's
decision is ``aigateway.apply`` (the two gateway opcodes share it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from ..errors import ValidationError
from . import aigateway
from .protocol import Op, redact_url
from .urls import check_app_url
from .wire import Opcode

OPCODE = Opcode.GATEWAY
OPCODES = frozenset({OPCODE, aigateway.OPCODE})
REFUSED = "InvalidGateway"
"""The error name of a request that was never sent or whose answer is refused: not retried."""
TRANSPORT_ERROR = "GatewayError"
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
"""A response body is memoized as step data, so it has a step output's limit (4 MiB)."""
MAX_REQUEST_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_TIMEOUT_S = 300.0
MAX_TIMEOUT_S = 15 * 60.0
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Outbound:
    """A request ready to send. ``headers`` may hold credentials: never log them."""

    url: str
    method: str
    headers: dict[str, str]
    body: bytes | None
    timeout_s: float
    max_bytes: int
    retry_5xx: bool = False

    def __repr__(self) -> str:  # the default would print the headers
        size = 0 if self.body is None else len(self.body)
        return f"Outbound({self.method} {redact_url(self.url)!r}, body={size} bytes)"


def needs_call(op: Op) -> bool:
    """Whether ``op`` is a gateway op the driver has not resolved yet."""
    return op.op in OPCODES and not op.has_data and op.error is None


def outbound(op: Op, *, allow_private: bool) -> Outbound:
    """The request a gateway op asks for, or ``ValidationError`` naming the bad field."""
    if op.op == aigateway.OPCODE:
        ai = aigateway.build_request(op.opts, allow_private=allow_private)
        return Outbound(
            url=ai.url,
            method="POST",
            headers=ai.headers,
            body=ai.body,
            timeout_s=MAX_TIMEOUT_S,
            max_bytes=MAX_RESPONSE_BYTES,
        )
    opts = op.opts or {}
    url = opts.get("url")
    if not isinstance(url, str) or not url:
        raise ValidationError("step.fetch: opts.url must be the URL to fetch", field="url")
    check_app_url(url, field="step.fetch url", allow_private=allow_private)
    method = str(opts.get("method") or "GET").upper()
    if method not in METHODS:
        raise ValidationError(
            f"step.fetch: opts.method must be one of {', '.join(sorted(METHODS))}, got {method!r}",
            field="method",
        )
    return Outbound(
        url=url,
        method=method,
        headers=_headers(opts.get("headers")),
        body=_body(opts.get("body")),
        timeout_s=_timeout(opts.get("timeout_ms")),
        max_bytes=MAX_RESPONSE_BYTES,
        retry_5xx=opts.get("retry_5xx") is True,
    )


def _headers(raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise ValidationError("step.fetch: opts.headers must map names to strings", field="headers")
    return {str(k).lower(): v for k, v in raw.items()}


def _body(raw: object) -> bytes | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ValidationError("step.fetch: opts.body must be a string", field="body")
    body = raw.encode("utf-8")
    if len(body) > MAX_REQUEST_BODY_BYTES:
        raise ValidationError(
            f"step.fetch: opts.body is {len(body)} bytes; the limit is "
            f"{MAX_REQUEST_BODY_BYTES} bytes",
            field="body",
        )
    return body


def _timeout(raw: object) -> float:
    if raw is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise ValidationError(
            "step.fetch: opts.timeout_ms must be a positive number", field="timeout"
        )
    return min(float(raw) / 1000, MAX_TIMEOUT_S)


def answered(
    op: Op, request: Outbound, *, status: int, headers: Mapping[str, str], body: bytes
) -> Op:
    """``op`` with the target's answer (``body`` read up to ``max_bytes + 1`` bytes)."""
    if op.op == aigateway.OPCODE:
        return aigateway.resolved(op, status=status, body=body)
    if len(body) > request.max_bytes:
        message = (
            f"the response from {_host(request.url)} is larger than the step.fetch limit of "
            f"{request.max_bytes} bytes"
        )
        return replace(op, has_data=False, error={"name": REFUSED, "message": message})
    if request.retry_5xx and status >= 500:
        error = {
            "name": TRANSPORT_ERROR,
            "message": f"{request.method} {_host(request.url)} answered HTTP {status}",
        }
        return replace(op, has_data=False, error=error)
    data = {
        "url": request.url,
        "status_code": status,
        "headers": {k.lower(): v for k, v in headers.items()},
        "body": body.decode("utf-8", "replace"),
    }
    return replace(op, data=data, has_data=True, error=None)


def unreachable(op: Op, request: Outbound, reason: str) -> Op:
    """``op`` whose request failed before an answer (retriable)."""
    if op.op == aigateway.OPCODE:
        return aigateway.failed(op, reason, f"could not reach {redact_url(request.url)}")
    message = f"{request.method} {redact_url(request.url)} failed: {reason}"
    return replace(op, has_data=False, error={"name": TRANSPORT_ERROR, "message": message})


def refused(op: Op, exc: ValidationError) -> Op:
    """``op`` whose request could not be built or was refused by the SSRF rules."""
    if op.op == aigateway.OPCODE:
        return aigateway.refused(op, exc)
    return replace(op, has_data=False, error={"name": REFUSED, "message": str(exc)})


def _host(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]
