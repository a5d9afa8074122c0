"""Inngest request signing, shared by the server (signing calls to SDKs) and the SDK side.

Wire format, as Inngest and its SDKs use it:

* ``X-Inngest-Signature: t=<unix seconds>&s=<hex HMAC-SHA256(key, body || str(t))>``, where
  the HMAC key is the UTF-8 of the signing key with its ``signkey-<env>-`` prefix removed
  (the hex text itself, not the bytes it spells).
* ``Authorization: Bearer <sha256 hex of the hex-decoded key>``, so SDKs can prove they hold
  the key to the server without sending it.

SDKs canonicalize (RFC 8785) a request body before verifying it, so a server must send the
canonical bytes it signed: ``canonical_json`` produces them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
from collections.abc import Sequence
from urllib.parse import parse_qs

import jcs

from wayline.errors import AuthError

SIGNATURE_HEADER = "x-inngest-signature"
DEFAULT_MAX_SKEW_S = 300

_KEY_PREFIX = re.compile(r"^signkey-\w+-")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_HEX_KEY = re.compile(r"(?:[0-9a-fA-F]{2})+")


def canonical_json(value: object) -> bytes:
    """RFC 8785 (JCS) bytes for a JSON value: sorted keys, no whitespace, ES6 numbers."""
    result: bytes = jcs.canonicalize(value)
    return result


def strip_key_prefix(key: str) -> str:
    """Drop a ``signkey-<env>-`` prefix; every signature and hash is over the bare key."""
    return _KEY_PREFIX.sub("", key, count=1)


def _mac(body: bytes, key: str, unix_s: int) -> str:
    digest = hmac.new(strip_key_prefix(key).encode("utf-8"), body, hashlib.sha256)
    digest.update(str(unix_s).encode("utf-8"))
    return digest.hexdigest()


def sign(body: bytes, key: str, *, unix_s: int) -> str:
    """The ``X-Inngest-Signature`` value for ``body`` signed at ``unix_s``."""
    # t before s: Inngest Cloud compares the header as a string in places.
    return f"t={unix_s}&s={_mac(body, key, unix_s)}"


def _parse_header(header: str | None) -> tuple[int, str]:
    if header is None or not header.strip():
        raise AuthError(f"missing {SIGNATURE_HEADER} header")
    fields = parse_qs(header.strip(), keep_blank_values=True)
    stamps, sigs = fields.get("t", []), fields.get("s", [])
    if len(stamps) != 1 or len(sigs) != 1:
        raise AuthError(f"malformed {SIGNATURE_HEADER} header: expected t=<unix seconds>&s=<hex>")
    if not stamps[0].isascii() or not stamps[0].isdigit():
        raise AuthError(f"malformed {SIGNATURE_HEADER} header: t is not a unix timestamp")
    if _HEX_DIGEST.fullmatch(sigs[0]) is None:
        raise AuthError(f"malformed {SIGNATURE_HEADER} header: s is not a SHA-256 hex digest")
    return int(stamps[0]), sigs[0]


def verify(
    header: str | None,
    body: bytes,
    keys: Sequence[str],
    *,
    now_s: int,
    max_skew_s: int = DEFAULT_MAX_SKEW_S,
) -> str:
    """Check a signature header against ``keys`` in order; return the key that matched.

    Keys are tried in order so a rotation can list the new key first and the old one as the
    fallback. Error messages never include a key or an expected signature.
    """
    unix_s, signature = _parse_header(header)
    if abs(now_s - unix_s) > max_skew_s:
        raise AuthError(
            f"{SIGNATURE_HEADER} timestamp is more than {max_skew_s}s from the server clock"
        )
    if not keys:
        raise AuthError("no signing key is configured to verify the signature")
    for key in keys:
        if hmac.compare_digest(_mac(body, key, unix_s), signature):
            return key
    raise AuthError(f"{SIGNATURE_HEADER} does not match any configured signing key")


def hash_signing_key(key: str) -> str:
    """The bearer token SDKs send: sha256 hex of the bytes the (prefix-less) hex key spells."""
    bare = strip_key_prefix(key)
    # Stricter than bytes.fromhex (which skips spaces), matching Go's hex.DecodeString.
    if _HEX_KEY.fullmatch(bare) is None:
        raise AuthError("signing key is not valid hex")
    return hashlib.sha256(bytes.fromhex(bare)).hexdigest()


def _accepted_tokens(key: str) -> list[str]:
    tokens = [strip_key_prefix(key)]
    # A non-hex key can still be presented as itself, just not as a hash.
    with contextlib.suppress(AuthError):
        tokens.append(hash_signing_key(key))
    return tokens


def bearer_matches(authorization_header: str | None, keys: Sequence[str]) -> bool:
    """True if ``Authorization: Bearer <token>`` carries a configured key or its hash."""
    if authorization_header is None:
        return False
    scheme, _, token = authorization_header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    presented = strip_key_prefix(token.strip()).encode("utf-8")
    matched = False
    for key in keys:
        for accepted in _accepted_tokens(key):
            # No early exit: the time taken must not reveal which key (if any) matched.
            matched |= hmac.compare_digest(presented, accepted.encode("utf-8"))
    return matched
