"""The wire protocol as the SDK sees it: call requests in, opcodes and results out.

Parse leniently (a missing optional field is a default, not an error), emit exactly what the
official Python SDK emits: the same opcode fields, status codes and headers (research note
§1.5-1.8), so the server cannot tell the two SDKs apart except by ``x-inngest-sdk``.
"""

from __future__ import annotations

import importlib.metadata
import json
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .planner import Op

try:
    SDK_VERSION = importlib.metadata.version("wayline")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
    SDK_VERSION = "0.0.0"

SDK_NAME = f"wayline-py:v{SDK_VERSION}"
"""``x-inngest-sdk``, ``user-agent`` and the sync body's ``sdk`` on everything the SDK sends."""
REQUEST_VERSION = "2"
"""The execution version both official SDKs speak (``x-inngest-req-version``)."""
DISCOVERY_STEP_ID = "step"
CAPABILITIES = {"in_band_sync": "v1", "trust_probe": "v1"}
"""Advertised at sync. Unlike the official SDK, not ``connect``: Wayline has no Connect."""

# Error codes, as the official SDK names them in 500 bodies and step errors.
CODE_UNKNOWN = "unknown"
CODE_NON_RETRIABLE = "non_retriable_error"
CODE_RETRY_AFTER = "retry_after_error"
CODE_STEP_ERRORED = "step_errored"
CODE_STEP_NESTED = "step_nested"
CODE_STEP_UNEXPECTED = "step_unexpected"
CODE_UNSERIALIZABLE = "output_unserializable"
CODE_FUNCTION_NOT_FOUND = "function_not_found"
CODE_BODY_INVALID = "body_invalid"
CODE_QUERY_PARAM_MISSING = "query_param_missing"
CODE_REGISTRATION_FAILED = "registration_failed"
CODE_SERVER_KIND_MISMATCH = "server_kind_mismatch"
CODE_STALE_DISPATCH = "stale_dispatch"
"""A checkpoint was refused with 409: another dispatch owns the run (JS StaleDispatchError)."""


@dataclass(frozen=True, slots=True)
class CallRequest:
    """The parts of a call request body the SDK acts on."""

    event: Mapping[str, Any]
    events: list[Mapping[str, Any]]
    steps: Mapping[str, Any]
    run_id: str
    attempt: int
    max_attempts: int | None
    disable_immediate_execution: bool
    use_api: bool
    fn_id: str = ""
    """``ctx.fn_id``: the server offers checkpointing (with ``qi_id``), echoed verbatim."""
    qi_id: str = ""
    """``ctx.qi_id``: the server's opaque id of the dispatched work item, echoed verbatim."""


def parse_call_request(body: bytes) -> CallRequest:
    """Read a call request body.

    Raises:
        ValueError: the body is not a JSON object or has no usable ``event``.
    """
    try:
        raw = json.loads(body or b"null")
    except ValueError:
        raise ValueError("the request body is not JSON") from None
    if not isinstance(raw, Mapping):
        raise ValueError("the request body is not a JSON object")
    raw_ctx = raw.get("ctx")
    ctx: Mapping[str, Any] = raw_ctx if isinstance(raw_ctx, Mapping) else {}
    event = raw.get("event")
    events = [e for e in raw.get("events") or [] if isinstance(e, Mapping)]
    if not isinstance(event, Mapping):
        event = events[0] if events else None
    if event is None:
        raise ValueError("the request body has no event")
    use_api = bool(raw.get("use_api") or ctx.get("use_api"))
    steps = raw.get("steps")
    return CallRequest(
        event=event,
        events=events or [event],
        steps=steps if isinstance(steps, Mapping) else {},
        run_id=str(ctx.get("run_id") or ""),
        attempt=_int(ctx.get("attempt"), 0),
        max_attempts=_int(ctx.get("max_attempts"), None),
        disable_immediate_execution=bool(ctx.get("disable_immediate_execution")),
        use_api=use_api,
        fn_id=_text(ctx.get("fn_id")),
        qi_id=_text(ctx.get("qi_id")),
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object, default: int | None) -> Any:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def op_json(op: Op) -> dict[str, Any]:
    """An opcode exactly as the official SDK serializes it (``data`` is always present)."""
    body: dict[str, Any] = {
        "displayName": op.step.user_id,
        "id": op.step.hashed,
        "name": op.name,
        "op": op.op,
        "opts": dict(op.opts) if op.opts is not None else None,
        "userland": {"id": op.step.user_id, "index": op.step.index},
        "data": op.data,
    }
    if op.error is not None:
        body["error"] = dict(op.error)
    return body


def error_json(
    exc: BaseException, *, code: str, name: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """``{code, message, name, stack}`` for an exception, as 500 bodies and step errors carry."""
    return {
        "code": code,
        "message": str(exc) if message is None else message,
        "name": name or type(exc).__name__,
        "stack": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def base_headers(*, framework: str, mode: str, env: str | None) -> dict[str, str]:
    """Headers on every SDK response (and, minus framework, every outbound SDK request)."""
    headers = {
        "content-type": "application/json",
        "x-inngest-sdk": SDK_NAME,
        "x-inngest-req-version": REQUEST_VERSION,
        "user-agent": SDK_NAME,
        "x-inngest-framework": framework,
        "x-inngest-expected-server-kind": mode,
    }
    if env:
        headers["x-inngest-env"] = env
    return headers


def parse_query(query: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters as single strings (frameworks hand over lists or strings)."""
    out: dict[str, str] = {}
    for key, value in query.items():
        if isinstance(value, list | tuple):
            if value:
                out[key] = str(value[0])
        elif value is not None:
            out[key] = str(value)
    return out


def lower_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        if isinstance(value, list | tuple):
            if value:
                out[key.lower()] = str(value[0])
        else:
            out[key.lower()] = str(value)
    return out
