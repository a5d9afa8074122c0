"""Identifiers: ULIDs, Inngest's seeded event ids, and hashed step ids.

Nothing here draws randomness: callers pass the entropy so the engine stays replayable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {char: value for value, char in enumerate(_CROCKFORD)}
_ULID_LENGTH = 26
_TIME_CHARS = 10
_ENTROPY_BYTES = 10
_MAX_TIME_MS = 2**48 - 1
_UINT32 = 2**32
# Go's strconv.ParseInt(s, 10, 64): optional sign, ASCII digits only (no spaces, no "_").
_GO_INT = re.compile(r"[+-]?[0-9]+")


def ulid(ms: int, entropy: bytes) -> str:
    """A 26-char Crockford base32 ULID from a 48-bit ms timestamp and 10 bytes of entropy."""
    if not 0 <= ms <= _MAX_TIME_MS:
        raise ValueError(f"ULID time must be in [0, 2^48), got {ms}")
    if len(entropy) != _ENTROPY_BYTES:
        raise ValueError(f"ULID entropy must be 10 bytes, got {len(entropy)}")
    # 128 bits read as one integer, emitted as 26 five-bit digits (the top 2 bits are zero).
    value = (ms << 80) | int.from_bytes(entropy, "big")
    digits = [_CROCKFORD[(value >> shift) & 0x1F] for shift in range(125, -1, -5)]
    return "".join(digits)


def next_ulid(previous: str | None, ms: int, entropy: bytes) -> str:
    """A ULID that sorts after ``previous``: ids made one after another keep their order.

    Random ULIDs made in the same millisecond sort by chance, and so did anything ordered
    by them: runs started together were claimed in a random order (issue 12, item 9). In a
    new millisecond this is ``ulid(ms, entropy)``; in the same one (or if the clock went
    back) it is ``previous`` plus a random step of 1..2^32, not plus one, so two threads
    that raced on the same ``previous`` still get different ids.
    """
    fresh = ulid(ms, entropy)
    if previous is None or fresh > previous:
        return fresh
    step = 1 + int.from_bytes(entropy[:4], "big")
    value = _ulid_value(previous) + step
    if value >> 80 != _ulid_value(previous) >> 80:
        return fresh  # the entropy overflowed (one chance in 2^48): order is lost, not ids
    return "".join(_CROCKFORD[(value >> shift) & 0x1F] for shift in range(125, -1, -5))


def _ulid_value(text: str) -> int:
    value = 0
    for char in text.upper():
        value = (value << 5) | _DECODE[char]
    return value


def ulid_time_ms(ulid: str) -> int:
    """The ms timestamp embedded in a ULID (case-insensitive)."""
    text = ulid.upper()
    if len(text) != _ULID_LENGTH or any(char not in _DECODE for char in text):
        raise ValueError(f"not a ULID: {ulid!r}")
    if _DECODE[text[0]] > 7:
        raise ValueError(f"ULID overflows 128 bits: {ulid!r}")
    value = 0
    for char in text[:_TIME_CHARS]:
        value = (value << 5) | _DECODE[char]
    return value


def _seed_parts(seed_header: str) -> tuple[int, bytes] | None:
    parts = seed_header.split(",")
    if len(parts) != 2 or _GO_INT.fullmatch(parts[0]) is None:
        return None
    millis = int(parts[0])
    if not 0 < millis <= _MAX_TIME_MS:
        return None
    try:
        entropy = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(entropy) != _ENTROPY_BYTES:
        return None
    return millis, entropy


def seeded_event_id(seed_header: str, index: int) -> str | None:
    """The event id an Inngest server derives from ``x-inngest-event-id-seed``.

    The header is ``"<unix ms>,<base64 of 10 bytes>"``. ``index`` (1 for the first event of a
    request, as Inngest's event API counts) is added to the last 4 entropy bytes so every
    event in a batch gets its own id, and a retried request gets the same ids again. Returns
    None for a malformed seed so the caller falls back to a random id, as Inngest does.
    """
    parsed = _seed_parts(seed_header)
    if parsed is None:
        return None
    millis, entropy = parsed
    # Go adds with uint32 overflow, so the tail wraps rather than carrying into byte 5.
    tail = (int.from_bytes(entropy[6:10], "big") + index) % _UINT32
    return ulid(millis, entropy[:6] + tail.to_bytes(4, "big"))


def hash_step_id(user_id: str) -> str:
    """The hashed step id SDKs use as the memo key: sha1 hex of the user-facing id."""
    # SHA-1 is Inngest's wire format here, an identifier not a security boundary.
    return hashlib.sha1(user_id.encode("utf-8"), usedforsecurity=False).hexdigest()
