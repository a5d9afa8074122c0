"""``step.fetch``: a durable HTTP request the server makes, memoized as the step's result.

The op is the official ``Gateway`` op (inngest-js ``step.fetch``), so the request is sent by
the server while the app waits for nothing: the app may even be down until the answer is
memoized. Wayline's server also honours two opts the official SDKs do not send:
``retry_5xx`` (a 5xx answer is retried with the function's retry policy, then fails the
step) and ``timeout_ms``. The memo is ``{"url", "status_code", "headers", "body"}``.

Request headers (with any ``Authorization``) travel in the op only: the server neither
stores nor logs them. The response is memoized as the server received it: the encryption
middleware does not see it, since the app never produced it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from . import serialize
from .intents import duration_ms
from .planner import Intent

GATEWAY = "Gateway"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """What the target answered: ``status``, lower-case ``headers``, ``body`` text."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    url: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not JSON)."""
        return json.loads(self.body)


def intent(
    step_id: str,
    url: str,
    *,
    method: str,
    headers: Mapping[str, str] | None,
    body: str | bytes | None,
    json_body: object,
    timeout: float | timedelta | None,
    retry_5xx: bool,
) -> Intent:
    """The ``Gateway`` op of a ``step.fetch`` call; ``ValueError`` for a bad argument."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"step.fetch {step_id!r}: url must be an http(s) URL, got {url!r}")
    verb = method.upper()
    if verb not in METHODS:
        raise ValueError(f"step.fetch {step_id!r}: method must be one of {sorted(METHODS)}")
    sent = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    if body is not None and json_body is not None:
        raise ValueError(f"step.fetch {step_id!r}: pass body= or json=, not both")
    text: str | None
    if json_body is not None:
        text = serialize.dumps(json_body).decode("utf-8")
        sent.setdefault("content-type", "application/json")
    elif isinstance(body, bytes):
        text = body.decode("utf-8")
    else:
        text = body
    opts: dict[str, Any] = {"url": url, "method": verb, "headers": sent, "retry_5xx": retry_5xx}
    if text is not None:
        opts["body"] = text
    if timeout is not None:
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        opts["timeout_ms"] = duration_ms(timedelta(seconds=seconds), "step.fetch timeout")
    return Intent(step_id, GATEWAY, opts=opts)


def response(data: object) -> FetchResponse:
    """The memo of a ``Gateway`` step as a ``FetchResponse``."""
    memo = data if isinstance(data, Mapping) else {}
    headers = memo.get("headers")
    return FetchResponse(
        status=int(memo.get("status_code") or 0),
        headers={str(k): str(v) for k, v in headers.items()}
        if isinstance(headers, Mapping)
        else {},
        body=str(memo.get("body") or ""),
        url=str(memo.get("url") or ""),
    )
