"""The ``AIGateway`` opcode (``step.ai.infer``): the server calls an AI provider for the SDK.

The SDK reports the request it built (``opts``: ``url``, ``format``, ``auth_key``,
``headers``, ``body``); the server POSTs it and memoizes the provider's JSON response as
the step's result, so the app does not wait on the model. As on Inngest, the call is made
while the SDK response that reported it is handled (no request is stored, so the auth key
never is), a failure retries that SDK call, and the last failure is memoized as the step's
error. Provider URLs pass the same SSRF rules as app URLs.

This module is pure: ``build_request`` turns the opts into bytes and headers, the driver
does the HTTP and ``resolved`` / ``refused`` put the outcome on the op; ``apply`` is the
machine's decision for a resolved op.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit, urlunsplit

from ..errors import ValidationError
from .decision import Decision, Env, add_item
from .model import JSON, Run, StepStatus, WorkItem, WorkKind
from .protocol import Op
from .steps import record, save_memo
from .urls import check_app_url
from .wire import Opcode

OPCODE = Opcode.AI_GATEWAY
REFUSED = "InvalidAIGateway"
"""The error name of a request that was never sent (invalid or refused): not retried."""
REFUSED_NAMES = frozenset({REFUSED, "InvalidGateway"})
"""Not retried, for both gateway opcodes (``gateway.REFUSED`` is the other one)."""
MAX_ERROR_MESSAGE_CHARS = 4_096


@dataclass(frozen=True, slots=True)
class AiRequest:
    """A provider request ready to send. ``headers`` hold the auth key: never log them."""

    url: str
    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:  # the default would print the auth key
        return f"AiRequest(url={urlsplit(self.url).netloc!r}, body={len(self.body)} bytes)"


def build_request(opts: Mapping[str, JSON] | None, *, allow_private: bool) -> AiRequest:
    """The provider request an ``AIGateway`` op asks for, or ``ValidationError``.

    Auth goes where each provider format wants it (as Inngest sends it): ``anthropic``
    ``x-api-key``, ``gemini`` a ``key`` query parameter, ``bedrock`` the raw
    ``Authorization`` value, anything else ``Authorization: Bearer``. The op's own headers
    come last and win.
    """
    opts = opts or {}
    url = opts.get("url")
    if not isinstance(url, str) or not url:
        raise ValidationError("step.ai.infer: opts.url must be the provider's URL", field="url")
    check_app_url(url, field="step.ai.infer url", allow_private=allow_private)
    body = opts.get("body")
    if not isinstance(body, Mapping):
        raise ValidationError("step.ai.infer: opts.body must be a JSON object", field="body")
    extra = opts.get("headers") or {}
    if not isinstance(extra, Mapping) or not all(isinstance(v, str) for v in extra.values()):
        raise ValidationError(
            "step.ai.infer: opts.headers must map names to strings", field="headers"
        )
    key = str(opts.get("auth_key") or "")
    fmt = str(opts.get("format") or "")
    headers = {"content-type": "application/json"}
    if fmt == "gemini":
        url = _with_query(url, key=key)
    elif fmt == "bedrock":
        headers["authorization"] = key
    elif fmt == "anthropic":
        headers["x-api-key"] = key
    else:
        headers["authorization"] = f"Bearer {key}"
    headers.update({str(k).lower(): str(v) for k, v in extra.items()})
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return AiRequest(url=url, headers=headers, body=encoded)


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


def resolved(op: Op, *, status: int, body: bytes) -> Op:
    """``op`` with the provider's answer: its JSON as data on a 2xx, else an error."""
    text = body.decode("utf-8", "replace")
    if 200 <= status <= 299:
        try:
            data: JSON = json.loads(text) if text.strip() else None
        except ValueError:
            data = text
        return replace(op, data=data, has_data=True, error=None)
    return failed(op, f"unsuccessful status code: {status}", text)


def failed(op: Op, reason: str, detail: str = "") -> Op:
    """``op`` with a provider call that failed (transport error or non-2xx): retriable."""
    message = (detail or "Error making AI request")[:MAX_ERROR_MESSAGE_CHARS]
    error = {"name": f"Error making AI request: {reason}", "message": message}
    return replace(op, has_data=False, error=error)


def refused(op: Op, exc: ValidationError) -> Op:
    """``op`` whose request could not be built or was refused: not retriable."""
    return replace(op, has_data=False, error={"name": REFUSED, "message": str(exc)})


def apply(
    run: Run,
    item: WorkItem,
    op: Op,
    env: Env,
    *,
    started_at: int,
    retry_at: Callable[[], int | None],
) -> Decision:
    """The machine's decision for a gateway op (``AIGateway``, ``Gateway``) the driver resolved.

    ``retry_at`` says when to retry the SDK call that reported the op, or None when no
    attempt is left. A memoized outcome (data, or the last error) completes the step; the
    caller enqueues discovery as for any completed step.
    """
    if op.id in run.memos:
        return Decision.unchanged(run)
    attempts = item.attempt + 1
    if op.has_data:
        run = save_memo(
            run, op, {"data": op.data}, StepStatus.COMPLETED, attempts, started_at, env.now
        )
        return Decision(run=_as_gateway_step(run, op))
    error = op.error if isinstance(op.error, Mapping) else None
    if error is None:
        message = f"{op.op} ({op.label!r}): this server's driver cannot make gateway calls"
        error = {"name": REFUSED, "message": message}
    if error.get("name") in REFUSED_NAMES:
        return _gateway_failed(run, op, error, env, attempts, started_at)
    at = retry_at()
    if at is None:
        return _gateway_failed(run, op, error, env, attempts, started_at)
    run = record(
        run,
        op.id,
        name=op.label,
        op=op.op,
        status=StepStatus.RUNNING,
        error=dict(error),
        attempts=attempts,
        started_at=started_at,
    )
    # As on Inngest: the SDK call that reported the op runs again, and reports it again.
    run, retry = add_item(run, WorkKind.CALL, at=at, step_id=item.step_id, attempt=attempts)
    return Decision(run=run, enqueue=(retry,))


def _gateway_failed(
    run: Run, op: Op, error: Mapping[str, JSON], env: Env, attempts: int, started_at: int
) -> Decision:
    memo = {"error": dict(error)}
    run = save_memo(run, op, memo, StepStatus.FAILED, attempts, started_at, env.now)
    return Decision(run=_as_gateway_step(run, op))


def _as_gateway_step(run: Run, op: Op) -> Run:
    step = run.step(op.id)
    return run if step is None else run.with_step(replace(step, op=op.op))
