"""The SDK wire protocol, as pure data: call request bodies and parsed call responses.

Parse leniently, emit exactly (research note §8): opcodes may arrive as an array or a
single object, Sleep / WaitForEvent carry their argument in ``name`` or ``opts``, and a
201 response is a stream whose last JSON object wraps the real status, headers and body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .. import signing
from ..errors import ValidationError
from . import json_input, wire
from .canonical import EncodedValues, canonical_json, encode_key, utf16_order
from .model import JSON, FunctionDef, Run, WorkItem
from .wire import Opcode

USER_AGENT = "wayline/0.1.0"
MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Above this the server sends ``use_api: true`` and the SDK fetches state itself."""

STEP_QUERY_DISCOVERY = "step"


@dataclass(frozen=True, slots=True)
class Op:
    """One generator opcode reported by the SDK in a 206 response."""

    op: str
    id: str
    name: str = ""
    display_name: str = ""
    opts: Mapping[str, JSON] | None = None
    data: JSON = None
    has_data: bool = False
    error: JSON = None
    timing: Mapping[str, JSON] | None = None
    """JS v4: ``{"a": start, "b": duration}`` of the step body, in nanoseconds."""

    @property
    def label(self) -> str:
        """The user-facing step id, for timelines."""
        return self.display_name or self.name or self.id


@dataclass(frozen=True, slots=True)
class CallResponse:
    """What one SDK call returned, reduced to the facts the state machine needs."""

    status: int
    body: JSON = None
    ops: tuple[Op, ...] | None = None
    no_retry: bool = False
    retry_after: str | None = None
    is_sdk: bool = True
    request_version: int | None = None
    transport_error: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def failed_transport(cls, message: str) -> CallResponse:
        return cls(status=0, is_sdk=False, transport_error=message)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def parse_op(raw: Mapping[str, JSON]) -> Op:
    """One opcode object as the SDK sent it (unknown keys ignored)."""
    if raw.get("op") in (Opcode.AI_GATEWAY, Opcode.GATEWAY):
        # Its result comes from the provider, never from the SDK (which sends "data": null).
        raw = {k: v for k, v in raw.items() if k not in ("data", "error")}
    return Op(
        op=str(raw.get("op", "")),
        id=str(raw.get("id", "")),
        name=str(raw.get("name") or ""),
        display_name=str(raw.get("displayName") or raw.get("display_name") or ""),
        opts=raw.get("opts") if isinstance(raw.get("opts"), Mapping) else None,
        data=raw.get("data"),
        has_data="data" in raw,
        error=raw.get("error"),
        timing=raw.get("timing") if isinstance(raw.get("timing"), Mapping) else None,
    )


def _unwrap_stream(body: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """A 201 stream is keep-alive whitespace then ``{"status", "headers", "body"}``."""
    try:
        outer = json_input.decode(body.strip() or b"null")
    except ValidationError:
        return None
    if not isinstance(outer, Mapping) or not isinstance(outer.get("status"), int):
        return None
    inner = outer.get("body")
    inner_bytes = inner.encode() if isinstance(inner, str) else json.dumps(inner).encode()
    raw_headers = outer.get("headers")
    headers = (
        {str(k): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, Mapping) else {}
    )
    return outer["status"], headers, inner_bytes


def parse_response(status: int, headers: Mapping[str, str], body: bytes) -> CallResponse:
    """Turn an HTTP response from a serve endpoint into a ``CallResponse``."""
    lowered = _lower(headers)
    if status == 201:
        unwrapped = _unwrap_stream(body)
        if unwrapped is not None:
            status, inner_headers, body = unwrapped
            lowered = {**lowered, **_lower(inner_headers)}
    try:
        decoded: JSON = json_input.parse(body, field="response body") if body.strip() else None
    except json_input.NotJsonError:
        decoded = body.decode("utf-8", "replace")
    except ValidationError as exc:
        return _unusable(status, lowered, str(exc))
    version_header = lowered.get(wire.REQ_VERSION, "")
    ops: tuple[Op, ...] | None = None
    if status == 206:
        raw_ops = decoded if isinstance(decoded, list) else [decoded] if decoded else []
        ops = tuple(parse_op(o) for o in raw_ops if isinstance(o, Mapping))
    return CallResponse(
        status=status,
        body=decoded,
        ops=ops,
        no_retry=lowered.get(wire.NO_RETRY, "").lower() == "true",
        retry_after=lowered.get(wire.RETRY_AFTER),
        is_sdk=wire.SDK in lowered,
        request_version=int(version_header) if version_header.lstrip("-").isdigit() else None,
        headers=lowered,
    )


def _unusable(status: int, headers: Mapping[str, str], problem: str) -> CallResponse:
    """A response holding values JSON cannot carry (``NaN``, a lone surrogate...): storing
    them would break every later call and read, so the attempt fails, not retried (the
    same code would send the same value again)."""
    return CallResponse(
        status=status,
        is_sdk=False,
        no_retry=True,
        transport_error=f"the SDK sent a value Wayline cannot store: {problem}",
        headers=headers,
    )


def call_url(fn: FunctionDef, item: WorkItem) -> str:
    """The serve URL with ``fnId`` and ``stepId`` (``step`` for discovery) set."""
    base = fn.url
    step = item.step_id or STEP_QUERY_DISCOVERY
    sep = "&" if "?" in base else "?"
    if "fnId=" not in base:
        base = f"{base}{sep}fnId={fn.id}"
        sep = "&"
    if "stepId=" in base:
        prefix, _, rest = base.partition("stepId=")
        _, amp, tail = rest.partition("&")
        return f"{prefix}stepId={step}{amp}{tail}"
    return f"{base}{sep}stepId={step}"


def build_request(
    run: Run,
    fn: FunctionDef,
    item: WorkItem,
    *,
    disable_immediate_execution: bool,
    checkpointing: bool = False,
) -> dict[str, JSON]:
    """The JSON body of a call request, as the Inngest executor builds it.

    When the events and memos would make the body larger than ``MAX_REQUEST_BYTES`` they
    are left out and ``use_api`` tells the SDK to fetch them from ``/v0/runs/{id}/...``.
    With ``checkpointing``, a call that may run steps inline carries ``ctx.fn_id`` and
    ``ctx.qi_id`` (see ``checkpoints``): the JS SDK v4 then reports each finished step to
    ``POST /v1/checkpoint/{run}/async`` while the call stays open.
    """
    ids = checkpoint_ids(
        fn, item, checkpointing=checkpointing, plan_only=disable_immediate_execution
    )
    body = _request(run, fn, item, disable_immediate_execution, use_api=False, ids=ids)
    if state_size(run) > MAX_REQUEST_BYTES:
        body = _request(run, fn, item, disable_immediate_execution, use_api=True, ids=ids)
    return body


def checkpoint_ids(
    fn: FunctionDef, item: WorkItem, *, checkpointing: bool, plan_only: bool
) -> dict[str, JSON]:
    """``ctx.fn_id`` and ``ctx.qi_id``, both or neither (the JS SDK falls back step by step
    when only ``fn_id`` comes): only on a discovery call that may run steps inline. A
    targeted step call or a plan-only call (parallelism, redrive) never checkpoints. The
    item id is the fence: a checkpoint whose item is no longer pending is refused."""
    if not checkpointing or plan_only or item.step_id is not None:
        return {}
    return {"fn_id": fn.id, "qi_id": item.id}


def call_headers(body: Mapping[str, JSON]) -> dict[str, str]:
    """Headers a call carries besides the signed ones: ``x-request-id`` on a call that
    may checkpoint (JS v4 echoes it as ``request_id``)."""
    ctx = body.get("ctx")
    qi_id = ctx.get("qi_id") if isinstance(ctx, Mapping) else None
    return {wire.REQUEST_ID: qi_id} if isinstance(qi_id, str) else {}


def state_size(run: Run) -> int:
    """Bytes the run's events and memos take as compact JSON.

    Exact, and incremental in practice: ``json.dumps`` of the memos map is ``{`` + the
    ``"key":value`` pairs joined by ``,`` + ``}``, so it is summed from each event's and memo's
    own size, which ``_json_size`` remembers. Every checkpoint checks the state limit, and
    encoding the whole run each time made a checkpoint O(run length); the total is also
    remembered per memos map (``state_size_with`` gives a checkpoint's new one from the
    old by its new memos alone), so summing is O(1) for a run a checkpoint saved."""
    known = _STATE_SIZES.get(id(run.memos))
    if known is not None and known[0] is run.memos and known[1] is run.events:
        return known[2]
    events = sum(_json_size(e) for e in run.events)
    pairs = sum(_json_size(k) + 1 + _json_size(v) for k, v in run.memos.items())
    return _remember_state(run, run.memos, events * 2 + 2 + pairs + max(len(run.memos) - 1, 0))


def state_size_with(run: Run, memos: Mapping[str, JSON]) -> int:
    """``state_size`` of ``run`` with ``memos`` in place of its memos, where ``memos`` is
    ``run.memos`` with new entries added at its end: counted from ``run``'s size and the
    new entries only, and remembered for ``memos``."""
    added = len(memos) - len(run.memos)
    new = list(memos.items())[len(run.memos) :] if added > 0 else []
    pairs = sum(_json_size(k) + 1 + _json_size(v) for k, v in new)
    commas = added if run.memos else max(added - 1, 0)
    return _remember_state(run, memos, state_size(run) + pairs + commas)


_STATE_SIZES: dict[int, tuple[Mapping[str, JSON], tuple[object, ...], int]] = {}
_STATE_SIZES_MAX = 8192
"""Runs' memos maps whose state size is remembered (each entry holds its map, so its
``id`` is not reused while remembered); dropped whole when full."""


def _remember_state(run: Run, memos: Mapping[str, JSON], size: int) -> int:
    if len(_STATE_SIZES) >= _STATE_SIZES_MAX:
        _STATE_SIZES.clear()  # a pure memo: dropping it changes no result
    _STATE_SIZES[id(memos)] = (memos, run.events, size)
    return size


_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""``json.dumps(value, separators=(",", ":"))`` without building an encoder per call."""


def json_size(value: object) -> int:
    """``len(json.dumps(value, separators=(",", ":")))``: the size the limits count."""
    return len(_COMPACT.encode(value))


_SIZES: dict[int, tuple[object, int]] = {}
_SIZES_MAX_BYTES = 64 * 1024 * 1024
_sizes_bytes = 0


def remembered_size(value: object, *, keep_up_to: int) -> int:
    """``json_size(value)``, remembered per object (``_json_size``) when it is at most
    ``keep_up_to`` bytes: for a value about to be kept in a run, so that ``state_size``
    finds it (and not a payload about to be refused for its size)."""
    hit = _SIZES.get(id(value))
    if hit is not None and hit[0] is value:
        return hit[1]
    size = json_size(value)
    if size <= keep_up_to:
        _keep_size(value, size)
    return size


def _json_size(value: object) -> int:
    """``len(json.dumps(value, separators=(",", ":")))``, remembered per object: events and
    memos are never mutated once in a run, and live runs keep the same objects between
    calls. The entry holds the object, so its ``id`` cannot be reused while cached; the
    cache is dropped whole past ``_SIZES_MAX_BYTES`` of remembered values (a pure memo: it
    changes no result)."""
    if isinstance(value, str) and len(value) < 256:
        # Keys (hashed step ids): counted, not remembered. Printable ASCII with no quote
        # or backslash is encoded as itself between quotes; anything else is encoded.
        plain = value.isascii() and value.isprintable() and '"' not in value
        return len(value) + 2 if plain and "\\" not in value else json_size(value)
    return remembered_size(value, keep_up_to=_SIZES_MAX_BYTES)


def _keep_size(value: object, size: int) -> None:
    global _sizes_bytes
    if _sizes_bytes + size > _SIZES_MAX_BYTES:
        _SIZES.clear()
        _sizes_bytes = 0
    _SIZES[id(value)] = (value, size)
    _sizes_bytes += size


def _request(
    run: Run,
    fn: FunctionDef,
    item: WorkItem,
    disable_immediate_execution: bool,
    *,
    use_api: bool,
    ids: Mapping[str, JSON],
) -> dict[str, JSON]:
    events = [] if use_api else [dict(e) for e in run.events]
    steps = {} if use_api else dict(run.memos)
    return {
        "event": dict(run.events[0]) if run.events else {},
        "events": events,
        "steps": steps,
        "version": run.request_version,
        "use_api": use_api,
        "ctx": {
            "run_id": run.id,
            "attempt": item.attempt,
            "max_attempts": fn.max_attempts,
            "env": "dev",
            "step_id": item.step_id or STEP_QUERY_DISCOVERY,
            "disable_immediate_execution": disable_immediate_execution,
            "use_api": use_api,
            "stack": {"stack": list(run.stack), "current": len(run.stack)},
            **ids,
        },
    }


def encode_request(body: Mapping[str, JSON], run: Run, cache: EncodedValues) -> bytes:
    """The JCS bytes of ``body`` = ``build_request(run, ...)``, equal to
    ``signing.canonical_json(body)``, made from parts: each memo's bytes and the run's
    events' bytes come from ``cache`` (they never change once written), so a call encodes
    only what is new since the last one. An object's JCS form is its members sorted by
    UTF-16 name, each ``"name":value``; the parts are spliced in that order."""
    members = []
    for name in sorted(body, key=utf16_order):
        value = body[name]
        if name == "steps" and isinstance(value, Mapping) and value:
            encoded = _encode_memos(run.id, value, cache)
        elif name == "events" and value:
            encoded = cache.encode((run.id, "events"), run.events)
        elif name == "event" and value and run.events:
            encoded = cache.encode((run.id, "event"), run.events[0])
        else:
            encoded = canonical_json(value)
        members.append(encode_key(name) + b":" + encoded)
    return b"{" + b",".join(members) + b"}"


def _encode_memos(run_id: str, memos: Mapping[str, JSON], cache: EncodedValues) -> bytes:
    members = (
        encode_key(step_id) + b":" + cache.encode((run_id, "memo", step_id), memos[step_id])
        for step_id in sorted(memos, key=utf16_order)
    )
    return b"{" + b",".join(members) + b"}"


def server_headers(
    *, kind: str, body: bytes, signing_key: str | None, now_ms: int
) -> dict[str, str]:
    """Headers the server sends on every request to an SDK (calls and sync PUTs), signed
    over exactly ``body`` (which must be the JCS bytes the SDK will verify)."""
    headers = {
        wire.CONTENT_TYPE: "application/json",
        wire.USER_AGENT: USER_AGENT,
        wire.SERVER_KIND: kind,
    }
    if signing_key:
        headers[wire.SIGNATURE] = signing.sign(body, signing_key, unix_s=now_ms // 1000)
    return headers


def redact_url(url: str) -> str:
    """Scheme, host, port and path only, for logs and errors: query strings may carry
    tokens, and ``user:password@`` is replaced by ``***@``. Never raises, whatever the text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    _userinfo, at, host = parts.netloc.rpartition("@")
    netloc = f"***@{host}" if at else host
    return f"{parts.scheme}://{netloc}{parts.path}"
