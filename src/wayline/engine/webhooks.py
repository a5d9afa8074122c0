"""Webhooks, pure part: definitions, signature checks and the request-to-event transform.

A webhook turns a third party's HTTP request into one event. Its definition holds CEL
expressions over the request, with the variables ``body`` (the JSON body, or the raw
text when it is not JSON), ``headers`` (lower-case names) and ``query``:

* ``event`` -> the event name (required), e.g. ``"stripe/" + body.type``;
* ``data`` -> the event data, a map (default ``body`` when that is a map);
* ``event_id`` -> the event id (optional), e.g. ``body.id``: a provider retrying the same
  delivery is deduplicated (nothing stored twice, no second run).

Optional signature verification, over the raw body bytes, with a shared secret:

* ``hmac-sha256``: header ``header`` holds HMAC-SHA256(secret, body) as hex or base64
  (with or without a ``sha256=`` prefix);
* ``stripe``: ``Stripe-Signature: t=<unix s>,v1=<hex>[,v1=...]`` over ``"<t>.<body>"``,
  refused when ``t`` is more than ``tolerance_s`` (default 300) away from now;
* ``github``: ``X-Hub-Signature-256: sha256=<hex>`` over the body.

Every refusal is a ``Rejection`` naming the reason; the secret is never part of one, nor of
a definition's view.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from . import expr, json_input
from .model import JSON

SCHEMES = ("hmac-sha256", "stripe", "github")
DEFAULT_HEADERS = {
    "hmac-sha256": "x-signature",
    "stripe": "stripe-signature",
    "github": "x-hub-signature-256",
}
DEFAULT_TOLERANCE_S = 300
DEFAULT_MAX_BYTES = 256 * 1024
MAX_MAX_BYTES = 1024 * 1024
MIN_SECRET_LENGTH = 8
MAX_EXPRESSION_LENGTH = 2_000


@dataclass(frozen=True, slots=True)
class Signature:
    scheme: str
    secret: str = field(repr=False)
    header: str
    tolerance_s: int = DEFAULT_TOLERANCE_S


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    name: str
    event: str
    data: str | None
    event_id: str | None
    max_bytes: int
    signature: Signature | None
    created_at: int


class Rejection(Exception):  # noqa: N818 - a value the API turns into a 4xx
    """A refused webhook request: the HTTP status and the reason, safe to show."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Incoming:
    """The event a request becomes."""

    name: str
    data: Mapping[str, JSON]
    id: str | None


# --------------------------------------------------------------------------- definitions


def _expression(body: Mapping[str, JSON], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a CEL expression string", field=name)
    if len(value) > MAX_EXPRESSION_LENGTH:
        raise ValidationError(
            f"{name} is {len(value)} characters; the limit is {MAX_EXPRESSION_LENGTH}", field=name
        )
    expr.validate(value, field=name)
    return value


def _signature(raw: JSON) -> Signature | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValidationError("signature must be an object", field="signature")
    scheme = raw.get("scheme")
    if scheme not in SCHEMES:
        raise ValidationError(
            f"signature.scheme must be one of {', '.join(SCHEMES)}", field="signature.scheme"
        )
    secret = raw.get("secret")
    if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
        raise ValidationError(
            f"signature.secret must be a string of at least {MIN_SECRET_LENGTH} characters",
            field="signature.secret",
        )
    header = raw.get("header") or DEFAULT_HEADERS[str(scheme)]
    if not isinstance(header, str):
        raise ValidationError("signature.header must be a header name", field="signature.header")
    tolerance = raw.get("tolerance_s", DEFAULT_TOLERANCE_S)
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 1 <= tolerance <= 3600:
        raise ValidationError(
            "signature.tolerance_s must be an integer from 1 to 3600", field="signature.tolerance_s"
        )
    return Signature(str(scheme), secret, header.lower(), tolerance)


def parse_definition(body: Mapping[str, JSON], *, webhook_id: str, now: int) -> Webhook:
    """Validate ``POST /v1/webhooks``; every refusal names the field."""
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise ValidationError("name must be a string of at most 200 characters", field="name")
    max_bytes = body.get("max_bytes", DEFAULT_MAX_BYTES)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise ValidationError("max_bytes must be an integer", field="max_bytes")
    if not 1 <= max_bytes <= MAX_MAX_BYTES:
        raise ValidationError(
            f"max_bytes must be from 1 to {MAX_MAX_BYTES} (got {max_bytes})", field="max_bytes"
        )
    return Webhook(
        id=webhook_id,
        name=name,
        event=str(_expression(body, "event", required=True)),
        data=_expression(body, "data", required=False),
        event_id=_expression(body, "event_id", required=False),
        max_bytes=max_bytes,
        signature=_signature(body.get("signature")),
        created_at=now,
    )


def to_stored(hook: Webhook) -> dict[str, JSON]:
    """The definition as stored (with its secret: the store is the one place it lives)."""
    stored = view(hook)
    if hook.signature is not None:
        stored["signature"] = {**stored["signature"], "secret": hook.signature.secret}
    return stored


def from_stored(d: Mapping[str, Any]) -> Webhook:
    sig = d.get("signature")
    return Webhook(
        id=d["id"],
        name=d.get("name", ""),
        event=d["event"],
        data=d.get("data"),
        event_id=d.get("event_id"),
        max_bytes=d.get("max_bytes", DEFAULT_MAX_BYTES),
        signature=(
            Signature(sig["scheme"], sig["secret"], sig["header"], sig["tolerance_s"])
            if sig
            else None
        ),
        created_at=d.get("created_at", 0),
    )


def view(hook: Webhook) -> dict[str, Any]:
    """The definition as the API shows it: never the secret."""
    signature = None
    if hook.signature is not None:
        signature = {
            "scheme": hook.signature.scheme,
            "header": hook.signature.header,
            "tolerance_s": hook.signature.tolerance_s,
            "secret_set": True,
        }
    return {
        "id": hook.id,
        "name": hook.name,
        "url": f"/webhooks/{hook.id}",
        "event": hook.event,
        "data": hook.data,
        "event_id": hook.event_id,
        "max_bytes": hook.max_bytes,
        "signature": signature,
        "created_at": hook.created_at,
    }


# --------------------------------------------------------------------------- signatures


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _same(expected: bytes, given: str) -> bool:
    given = given.strip().removeprefix("sha256=")
    candidates = (expected.hex(), base64.b64encode(expected).decode())
    return any(hmac.compare_digest(c.encode(), given.encode()) for c in candidates)


def verify(sig: Signature, body: bytes, headers: Mapping[str, str], *, now_ms: int) -> None:
    """Raise ``Rejection(401, reason)`` unless the request is signed with the secret."""
    value = headers.get(sig.header)
    if not value:
        raise Rejection(401, f"signature header {sig.header!r} is missing")
    if sig.scheme == "stripe":
        _verify_stripe(sig, body, value, now_ms)
    elif sig.scheme == "github" and not value.startswith("sha256="):
        raise Rejection(401, f"signature header {sig.header!r} must start with 'sha256='")
    elif not _same(_hmac(sig.secret, body), value):
        raise Rejection(401, "signature does not match the body")


def _verify_stripe(sig: Signature, body: bytes, value: str, now_ms: int) -> None:
    parts = [p.partition("=") for p in value.split(",")]
    stamps = [v for k, _, v in parts if k.strip() == "t"]
    signatures = [v for k, _, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        raise Rejection(401, f"signature header {sig.header!r} is not 't=<time>,v1=<hex>'")
    stamp = int(stamps[0])
    if abs(now_ms // 1000 - stamp) > sig.tolerance_s:
        raise Rejection(
            401, f"signature timestamp is outside the {sig.tolerance_s} s tolerance (stale)"
        )
    expected = _hmac(sig.secret, f"{stamp}.".encode() + body).hex()
    if not any(hmac.compare_digest(expected.encode(), s.strip().encode()) for s in signatures):
        raise Rejection(401, "signature does not match the body")


# --------------------------------------------------------------------------- transform


def parse_body(body: bytes) -> JSON:
    """The JSON body, or its text when it is not JSON (a form post, plain text). JSON that
    no event could carry (NaN, nesting past the limit, lone surrogates) is refused."""
    try:
        return json_input.parse(body, field="body") if body else None
    except json_input.NotJsonError:
        return body.decode("utf-8", errors="replace")
    except ValidationError as exc:
        raise Rejection(400, str(exc)) from None


def transform(
    hook: Webhook,
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    *,
    now_ms: int,
) -> Incoming:
    """Verify and turn a request into its event; ``Rejection`` names what is wrong."""
    if len(body) > hook.max_bytes:
        raise Rejection(
            413, f"body is {len(body)} bytes; this webhook takes at most {hook.max_bytes}"
        )
    if hook.signature is not None:
        verify(hook.signature, body, headers, now_ms=now_ms)
    variables = {"body": parse_body(body), "headers": dict(headers), "query": dict(query)}
    name = _evaluate(hook.event, variables, "event", now_ms)
    if not isinstance(name, str) or not name:
        raise Rejection(400, f"event expression gave {name!r}, not an event name")
    source = hook.data or "body"
    data = _evaluate(source, variables, "data", now_ms)
    if data is None and hook.data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise Rejection(400, f"data expression gave a {type(data).__name__}, not a map")
    event_id = _evaluate(hook.event_id, variables, "event_id", now_ms) if hook.event_id else None
    if event_id is not None and not isinstance(event_id, (str, int)):
        raise Rejection(400, f"event_id expression gave {event_id!r}, not a string")
    return Incoming(name=name, data=data, id=None if event_id is None else str(event_id))


def _evaluate(source: str, variables: Mapping[str, JSON], what: str, now_ms: int) -> JSON:
    try:
        return expr.evaluate_vars(source, variables, now_ms=now_ms)
    except expr.ExpressionEvalError as exc:
        raise Rejection(400, f"{what} expression failed on this request: {exc}") from None
