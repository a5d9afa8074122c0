"""Realtime subscription tokens: a channel and its topics, signed with HMAC, expiring.

A token is ``<base64url JSON claims>.<base64url HMAC-SHA256 of them>``; the claims are
``{"c": channel, "t": [topics], "exp": expiry in ms}``. The server mints one for a caller
holding the signing key (``POST /v1/realtime/token``) and a browser presents it to subscribe
(``GET /v1/realtime/subscribe``), so the browser never sees the signing key. The HMAC key is
derived from the signing key (domain-separated, so a token is never a signature of anything
else); a server without a signing key (``wayline dev`` by default) uses a random key per
process, so its tokens die with it.

Tokens are bearer credentials: never log them (the servers log no query strings).
This module is pure apart from ``random_secret``: the caller passes the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass

from .errors import ValidationError

MAX_TTL_MS = 24 * 3600 * 1000
DEFAULT_TTL_MS = 3600 * 1000
MAX_TOPICS = 32
MAX_NAME_CHARS = 256
_NAME = re.compile(r"[A-Za-z0-9_.:@/\-]+")
_DOMAIN = b"wayline realtime subscription token v1"


class TokenError(Exception):
    """The token is malformed, forged or expired (the message says which; never the token)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token allows: subscribing to ``topics`` of ``channel`` until ``expires_at``."""

    channel: str
    topics: tuple[str, ...]
    expires_at: int


def secret_for(signing_key: str | None) -> bytes:
    """The HMAC key of this server's tokens."""
    if not signing_key:
        return random_secret()
    return hmac.new(signing_key.encode("utf-8"), _DOMAIN, hashlib.sha256).digest()


def random_secret() -> bytes:
    return os.urandom(32)


def check_name(value: object, field: str) -> str:
    """A channel or topic name, or ``ValidationError`` naming ``field`` and the rule."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    if len(value) > MAX_NAME_CHARS or _NAME.fullmatch(value) is None:
        raise ValidationError(
            f"{field} must be at most {MAX_NAME_CHARS} characters of letters, digits and "
            "_ . : @ / -",
            field=field,
        )
    return value


def check_topics(value: object, field: str = "topics") -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValidationError(f"{field} must be a non-empty list of topic names", field=field)
    if len(value) > MAX_TOPICS:
        raise ValidationError(f"{field} may name at most {MAX_TOPICS} topics", field=field)
    return tuple(dict.fromkeys(check_name(t, field) for t in value))


def mint(secret: bytes, grant: Grant) -> str:
    claims = {"c": grant.channel, "t": list(grant.topics), "exp": grant.expires_at}
    body = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    return f"{body}.{_b64(_mac(secret, body))}"


def verify(secret: bytes, token: str, *, now_ms: int) -> Grant:
    """The grant of a valid token; ``TokenError`` otherwise."""
    body, dot, mac = token.partition(".")
    if not dot or not body or not mac:
        raise TokenError("the token is malformed")
    try:
        presented = _unb64(mac)
    except ValueError:
        raise TokenError("the token is malformed") from None
    if not hmac.compare_digest(presented, _mac(secret, body)):
        raise TokenError("the token's signature does not match (forged, or minted elsewhere)")
    claims = json.loads(_unb64(body))
    grant = Grant(str(claims["c"]), tuple(str(t) for t in claims["t"]), int(claims["exp"]))
    if grant.expires_at <= now_ms:
        raise TokenError("the token has expired")
    return grant


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
