from __future__ import annotations

import hashlib
import hmac
import importlib
import json
from collections.abc import Sequence
from types import ModuleType

import pytest

from wayline.errors import AuthError
from wayline.signing import (
    bearer_matches,
    canonical_json,
    hash_signing_key,
    sign,
    strip_key_prefix,
    verify,
)

KEY = "signkey-prod-" + "ab" * 32
FALLBACK = "signkey-prod-" + "cd" * 32
OTHER = "signkey-test-" + "ef" * 32
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z, in seconds
BODY = b'{"event":{"name":"app/user.created"},"steps":{}}'


def expected_sig(body: bytes, bare_key: str, t: int) -> str:
    return hmac.new(bare_key.encode(), body + str(t).encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"b": 1, "a": 2}, b'{"a":2,"b":1}'),
        ([1, "x", None, True, False], b'[1,"x",null,true,false]'),
        ({"z": {"y": [1.0, 2.5]}}, b'{"z":{"y":[1,2.5]}}'),
        ("é", '"é"'.encode()),
        ({"\u20ac": 1, "a": 1}, '{"a":1,"\u20ac":1}'.encode()),
        (1e21, b"1e+21"),
        ({}, b"{}"),
    ],
)
def test_canonical_json(value: object, expected: bytes) -> None:
    assert canonical_json(value) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("signkey-prod-12345678", "12345678"),
        ("signkey-test-abc", "abc"),
        ("signkey-branch_1-abc", "abc"),
        ("12345678", "12345678"),
        ("signkey-prod-signkey-prod-ab", "signkey-prod-ab"),  # only one prefix
        ("xsignkey-prod-ab", "xsignkey-prod-ab"),  # anchored at the start
        ("signkey--ab", "signkey--ab"),  # the env part must be non-empty
        ("", ""),
    ],
)
def test_strip_key_prefix(key: str, expected: str) -> None:
    assert strip_key_prefix(key) == expected


@pytest.mark.parametrize(
    ("key", "bare"),
    [(KEY, "ab" * 32), ("signkey-test-not-hex", "not-hex"), ("plainkey", "plainkey")],
)
@pytest.mark.parametrize("t", [0, 1, NOW])
def test_sign_format(key: str, bare: str, t: int) -> None:
    # The HMAC key is the UTF-8 of the bare key text, not its hex-decoded bytes.
    assert sign(BODY, key, unix_s=t) == f"t={t}&s={expected_sig(BODY, bare, t)}"


@pytest.mark.parametrize(
    ("keys", "signed_with", "delta"),
    [
        ([KEY], KEY, 0),
        ([KEY, FALLBACK], KEY, 0),
        ([KEY, FALLBACK], FALLBACK, 0),  # rotated: the fallback still verifies
        ([FALLBACK, KEY], KEY, 0),
        ([KEY], KEY, 300),  # the skew window is inclusive
        ([KEY], KEY, -300),
        (["ab" * 32], KEY, 0),  # prefix is irrelevant to the signature
        ([KEY], "ab" * 32, 0),
    ],
)
def test_verify_accepts(keys: list[str], signed_with: str, delta: int) -> None:
    header = sign(BODY, signed_with, unix_s=NOW + delta)
    matched = verify(header, BODY, keys, now_s=NOW)
    assert strip_key_prefix(matched) == strip_key_prefix(signed_with)
    assert matched in keys


def _tamper_t(header: str) -> str:
    return header.replace(f"t={NOW}", f"t={NOW + 1}")


def _drop_s(header: str) -> str:
    return header.split("&")[0]


@pytest.mark.parametrize(
    ("header", "body", "keys", "fragment"),
    [
        (None, BODY, [KEY], "missing"),
        ("", BODY, [KEY], "missing"),
        ("   ", BODY, [KEY], "missing"),
        (sign(BODY, OTHER, unix_s=NOW), BODY, [KEY], "does not match"),
        (sign(BODY, OTHER, unix_s=NOW), BODY, [KEY, FALLBACK], "does not match"),
        (sign(BODY, KEY, unix_s=NOW), BODY + b" ", [KEY], "does not match"),
        (sign(BODY, KEY, unix_s=NOW), b"", [KEY], "does not match"),
        (_tamper_t(sign(BODY, KEY, unix_s=NOW)), BODY, [KEY], "does not match"),
        (sign(BODY, KEY, unix_s=NOW - 301), BODY, [KEY], "more than 300s"),
        (sign(BODY, KEY, unix_s=NOW + 301), BODY, [KEY], "more than 300s"),
        (sign(BODY, KEY, unix_s=0), BODY, [KEY], "more than 300s"),
        (f"t=abc&s={'0' * 64}", BODY, [KEY], "t is not a unix timestamp"),
        (f"t=-5&s={'0' * 64}", BODY, [KEY], "t is not a unix timestamp"),
        (f"t=1.5&s={'0' * 64}", BODY, [KEY], "t is not a unix timestamp"),
        (f"t=&s={'0' * 64}", BODY, [KEY], "t is not a unix timestamp"),
        (f"t={NOW}&s=xyz", BODY, [KEY], "s is not a SHA-256 hex digest"),
        (f"t={NOW}&s={'0' * 63}", BODY, [KEY], "s is not a SHA-256 hex digest"),
        (_drop_s(sign(BODY, KEY, unix_s=NOW)), BODY, [KEY], "malformed"),
        (f"s={'0' * 64}", BODY, [KEY], "malformed"),
        (f"t={NOW}&t={NOW}&s={'0' * 64}", BODY, [KEY], "malformed"),
        ("garbage", BODY, [KEY], "malformed"),
        (sign(BODY, KEY, unix_s=NOW), BODY, [], "no signing key"),
    ],
)
def test_verify_rejects(
    header: str | None, body: bytes, keys: Sequence[str], fragment: str
) -> None:
    with pytest.raises(AuthError) as info:
        verify(header, body, keys, now_s=NOW)
    message = str(info.value)
    assert fragment in message
    for key in (KEY, FALLBACK, OTHER):
        assert strip_key_prefix(key) not in message
        assert expected_sig(body, strip_key_prefix(key), NOW) not in message


@pytest.mark.parametrize(("delta", "ok"), [(10, True), (11, False), (-10, True), (-11, False)])
def test_verify_custom_skew(delta: int, ok: bool) -> None:
    header = sign(BODY, KEY, unix_s=NOW + delta)
    if ok:
        assert verify(header, BODY, [KEY], now_s=NOW, max_skew_s=10) == KEY
    else:
        with pytest.raises(AuthError, match="more than 10s"):
            verify(header, BODY, [KEY], now_s=NOW, max_skew_s=10)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # The SDK spec's example; checked in full against the Python SDK below.
        (
            "signkey-prod-12345678",
            "b2ed992186a5cb19f6668aade821f502c1d00970dfd0e35128d51bac4649916c",
        ),
        ("12345678", "b2ed992186a5cb19f6668aade821f502c1d00970dfd0e35128d51bac4649916c"),
        ("signkey-test-ABCDEF", hashlib.sha256(bytes.fromhex("abcdef")).hexdigest()),
    ],
)
def test_hash_signing_key(key: str, expected: str) -> None:
    assert hash_signing_key(key) == expected


def test_hash_signing_key_spec_example() -> None:
    hashed = hash_signing_key("signkey-prod-12345678")
    assert hashed.startswith("b2ed9921")
    assert hashed.endswith("916c")


@pytest.mark.parametrize(
    "key", ["signkey-prod-not-hex", "signkey-prod-123", "xyz", "", "signkey-prod-", "12 34"]
)
def test_hash_signing_key_rejects_non_hex(key: str) -> None:
    with pytest.raises(AuthError) as info:
        hash_signing_key(key)
    assert str(info.value) == "signing key is not valid hex"


HASHED = hash_signing_key(KEY)
HASHED_FALLBACK = hash_signing_key(FALLBACK)


@pytest.mark.parametrize(
    ("header", "keys", "expected"),
    [
        (f"Bearer {HASHED}", [KEY], True),
        (f"Bearer signkey-prod-{HASHED}", [KEY], True),  # JS SDK keeps the prefix
        (f"Bearer {KEY}", [KEY], True),
        (f"Bearer {'ab' * 32}", [KEY], True),
        (f"Bearer {HASHED}", ["ab" * 32], True),
        (f"bearer {HASHED}", [KEY], True),
        (f"  Bearer {HASHED}  ", [KEY], True),
        (f"Bearer {HASHED_FALLBACK}", [KEY, FALLBACK], True),
        (f"Bearer {FALLBACK}", [KEY, FALLBACK], True),
        ("Bearer plain-secret", ["plain-secret"], True),  # non-hex keys match as themselves
        (f"Bearer {HASHED_FALLBACK}", [KEY], False),
        (f"Bearer {hash_signing_key(OTHER)}", [KEY, FALLBACK], False),
        (f"Bearer {HASHED[:-1]}", [KEY], False),
        (f"Bearer {HASHED}x", [KEY], False),
        (f"Basic {HASHED}", [KEY], False),
        (HASHED, [KEY], False),
        ("Bearer", [KEY], False),
        ("Bearer ", [KEY], False),
        ("", [KEY], False),
        (None, [KEY], False),
        (f"Bearer {HASHED}", [], False),
        ("Bearer ", [""], False),
    ],
)
def test_bearer_matches(header: str | None, keys: list[str], expected: bool) -> None:
    assert bearer_matches(header, keys) is expected


# Cross-checks against the official Python SDK (installed as a dev dependency).


@pytest.fixture
def sdk() -> tuple[ModuleType, ModuleType, ModuleType]:
    net = importlib.import_module("inngest._internal.net")
    transforms = importlib.import_module("inngest._internal.transforms")
    server_lib = importlib.import_module("inngest._internal.server_lib")
    return net, transforms, server_lib


SDK_BODIES = [
    {"event": {"name": "app/x", "data": {"b": 2, "a": 1}}, "steps": {}},
    {"ctx": {"run_id": "01J0000000000000000000000", "attempt": 0}, "n": 1.5},
    {"unicode": "h\u00e9llo \u20ac", "list": [3, 2, 1]},
]


@pytest.mark.parametrize("payload", SDK_BODIES)
@pytest.mark.parametrize("key", [KEY, FALLBACK])
def test_sdk_request_signature_verifies_with_ours(
    sdk: tuple[ModuleType, ModuleType, ModuleType], payload: object, key: str
) -> None:
    net, _, _ = sdk
    raw = json.dumps(payload, indent=2).encode()  # deliberately not canonical
    header = net.sign_request(raw, key, unix_ms=NOW)  # the SDK passes seconds despite the name
    # The SDK signs the canonical form of the body, which is what a server sends.
    assert verify(header, canonical_json(payload), [KEY, FALLBACK], now_s=NOW) == key


@pytest.mark.parametrize("payload", SDK_BODIES)
def test_sdk_response_signature_verifies_with_ours(
    sdk: tuple[ModuleType, ModuleType, ModuleType], payload: object
) -> None:
    net, _, _ = sdk
    raw = json.dumps(payload).encode()
    header = net.sign_response(raw, KEY, unix_ms=NOW)
    assert header == sign(raw, KEY, unix_s=NOW)
    assert verify(header, raw, [KEY], now_s=NOW) == KEY


@pytest.mark.parametrize("payload", SDK_BODIES)
@pytest.mark.parametrize(("signed_with", "ok"), [(KEY, True), (FALLBACK, True), (OTHER, False)])
def test_our_signature_verifies_with_sdk(
    sdk: tuple[ModuleType, ModuleType, ModuleType], payload: object, signed_with: str, ok: bool
) -> None:
    net, _, server_lib = sdk
    body = canonical_json(payload)
    header = sign(body, signed_with, unix_s=NOW)
    result = net.validate_request_sig(
        body=body,
        headers={server_lib.HeaderKey.SIGNATURE.value: header},
        mode=server_lib.ServerKind.CLOUD,
        signing_key=KEY,
        signing_key_fallback=FALLBACK,
    )
    if ok:
        assert result == signed_with
    else:
        assert isinstance(result, Exception)


def test_sdk_rejects_our_signature_over_tampered_body(
    sdk: tuple[ModuleType, ModuleType, ModuleType],
) -> None:
    net, _, server_lib = sdk
    header = sign(canonical_json({"a": 1}), KEY, unix_s=NOW)
    result = net.validate_request_sig(
        body=canonical_json({"a": 2}),
        headers={server_lib.HeaderKey.SIGNATURE.value: header},
        mode=server_lib.ServerKind.CLOUD,
        signing_key=KEY,
        signing_key_fallback=None,
    )
    assert isinstance(result, Exception)


@pytest.mark.parametrize("key", [KEY, FALLBACK, "signkey-prod-12345678", "deadbeef"])
def test_key_hash_matches_sdk(sdk: tuple[ModuleType, ModuleType, ModuleType], key: str) -> None:
    _, transforms, _ = sdk
    assert hash_signing_key(key) == transforms.hash_signing_key(key)
    assert strip_key_prefix(key) == transforms.remove_signing_key_prefix(key)
    assert bearer_matches(f"Bearer {transforms.hash_signing_key(key)}", [key])


@pytest.mark.parametrize("payload", SDK_BODIES)
def test_canonical_json_matches_sdk(
    sdk: tuple[ModuleType, ModuleType, ModuleType], payload: object
) -> None:
    _, transforms, _ = sdk
    assert canonical_json(payload) == transforms.canonicalize(json.dumps(payload).encode())
