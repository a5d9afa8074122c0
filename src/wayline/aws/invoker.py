"""The dispatch function's transport to apps' serve endpoints (sync httpx), and its policy
for the call cycle (``wayline.calls.cycle``).

The same request the dev server sends (JCS body, ``X-Inngest-Signature``, request version,
run id), with server kind ``cloud``: on AWS, Wayline plays Inngest Cloud to apps running
the SDKs in production mode. Gateway requests (``step.fetch``, ``step.ai.infer``) go over
the same client. Every connection is pinned to an address the SSRF rules allow
(``pinning``); one refused is ``Unreachable(refused=True)``, never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx

from wayline.calls.cycle import Call, Policy, Reply, Unreachable
from wayline.engine import protocol
from wayline.engine.gateway import Outbound
from wayline.engine.ports import Clock
from wayline.engine.protocol import redact_url
from wayline.errors import ValidationError

from .pinning import Resolver, pinned_client, system_resolver

__all__ = ["SERVER_KIND", "HttpxTransport", "lambda_policy", "server_headers"]

log = logging.getLogger("wayline.aws.invoker")

SERVER_KIND = "cloud"


def server_headers(*, signing_key: str | None, body: bytes, clock: Clock) -> dict[str, str]:
    """Headers on every server -> SDK request, with this server's kind."""
    return protocol.server_headers(
        kind=SERVER_KIND, body=body, signing_key=signing_key, now_ms=clock.now_ms()
    )


def _unreachable(call: Call, exc: Unreachable) -> None:
    if exc.refused:
        log.warning("SDK call refused: %s", exc.reason, extra={"run_id": call.prepared.run.id})
        return
    log.warning(
        "SDK call failed: cannot reach %s (%s)",
        redact_url(call.request.url),
        exc.reason,
        extra={"run_id": call.prepared.run.id},
    )


def lambda_policy(*, call_timeout_s: float, allow_private: bool = False) -> Policy:
    """The Lambda driver's policy: ``cloud``, the stack's call timeout, a warning per
    failed call (each container sees few), gateway requests to private addresses refused
    unless the stack allows private app URLs (``WAYLINE_ALLOW_PRIVATE_APP_URLS``)."""
    return Policy(
        server_kind=SERVER_KIND,
        call_timeout_s=call_timeout_s,
        allow_private=allow_private,
        on_unreachable=_unreachable,
    )


MAX_CALL_TIMEOUT_S = 840
"""``CallTimeoutSeconds``' ceiling in template.yaml: a call and its save must fit in one
15-minute dispatch invocation."""


class HttpxTransport:
    """One httpx client per container (keep-alive across invocations), no redirects, and
    every connection pinned to an address the SSRF rules allow (``pinning``). Thread-safe:
    the dispatcher sends the records of a batch from several threads."""

    def __init__(
        self,
        *,
        timeout_s: float,
        allow_private: bool = False,
        resolve: Resolver = system_resolver,
        client: httpx.Client | None = None,
    ) -> None:
        self._client = client or pinned_client(
            allow_private=allow_private,
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            resolve=resolve,
        )

    def send(self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float) -> Reply:
        try:
            response = self._client.post(
                url, content=body, headers=headers, timeout=httpx.Timeout(timeout_s, connect=10.0)
            )
        except ValidationError as exc:
            raise Unreachable(str(exc), kind="ValidationError", refused=True) from exc
        except httpx.ReadTimeout as exc:
            # A step must finish inside one call: say which limit it ran into.
            reason = (
                f"no answer within the call timeout of {timeout_s:g} s (the stack's "
                f"CallTimeoutSeconds, at most {MAX_CALL_TIMEOUT_S} s: split longer work into "
                "steps, or sleep and poll)"
            )
            raise Unreachable(reason, kind="ReadTimeout") from exc
        except httpx.HTTPError as exc:
            raise Unreachable(type(exc).__name__) from exc
        return Reply(response.status_code, dict(response.headers), response.content)

    def fetch(self, request: Outbound) -> Reply:
        """Make a gateway request as it is, over the same pinned client: the target passes
        the same SSRF checks as apps. The body is read up to ``max_bytes + 1`` bytes."""
        try:
            with self._client.stream(
                request.method,
                request.url,
                content=request.body,
                headers=request.headers,
                timeout=httpx.Timeout(request.timeout_s, connect=10.0),
            ) as response:
                body = _read_at_most(response, request.max_bytes)
                return Reply(response.status_code, dict(response.headers), body)
        except ValidationError as exc:  # the pinned connection refused a resolved address
            raise Unreachable(str(exc), kind="ValidationError", refused=True) from exc
        except httpx.HTTPError as exc:
            raise Unreachable(type(exc).__name__) from exc

    def close(self) -> None:
        self._client.close()


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
