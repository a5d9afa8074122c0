"""The encryption middleware: step outputs, function output and event data encrypted in the
app, so the server, its database and its dashboard only ever hold ciphertext.

What is encrypted (as the official ``@inngest/middleware-encryption`` and the Python
``inngest-encryption`` packages do):

* every ``step.run`` result and the function's return value, whole;
* in events the app sends (``client.send``, ``step.send_event``), the field
  ``data["encrypted"]`` (``event_field=``), so the rest of ``data`` stays usable by
  triggers, ``if`` expressions and ``match=``; ``event_field=None`` encrypts all of ``data``;
* the ``data`` a ``step.invoke`` sends, by the same rule as events (the invoked function,
  in this app or another one with the same keys, decrypts it as it decrypts its event).

What is not: step ids, event names, error messages and stacks, sleep and wait options,
``step.fetch`` responses (the server made them), and anything that arrives from outside the
app unencrypted.

Wire format. An encrypted value is replaced by the official middleware's envelope::

    {"__ENCRYPTED__": true, "__STRATEGY__": "wayline/aes-256-gcm",
     "data": "<base64 of 12-byte nonce + AES-256-GCM ciphertext and tag>",
     "kid": "<key id>", "dk": "<base64 KMS-wrapped data key, only with KMS keys>"}

The markers ``__ENCRYPTED__`` / ``__STRATEGY__`` and the ``data`` field are the official
middleware's (its README and source document them); the strategy is ours, because the
official ones use libsodium's secretbox (``inngest/libsodium``) or AES-CBC without a key id,
which this package does not depend on. So an official SDK recognises these values as
encrypted but cannot decrypt them, and this middleware refuses (clearly, naming the strategy)
to decrypt theirs. The plaintext is the value's compact JSON; the key id is the GCM
associated data, so a ciphertext cannot be passed off under another key's id.

Key rotation: encrypt with the current key, decrypt with any key whose id is known
(``StaticKeys(current=..., previous=...)``). On AWS, ``wayline.kms.KmsKeys`` encrypts under
KMS data keys (``GenerateDataKey``; the wrapped key travels in the envelope).

Example::

    keys = StaticKeys(current=("2026-11", key_2026_11), previous={"2026-05": key_2026_05})
    client = wayline.Wayline(app_id="shop", middleware=[Encryption(keys)])
    client.send(wayline.Event(name="user/signed-up",
                              data={"user_id": 7, "encrypted": {"email": "a@b.c"}}))
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wayline.errors import ConfigError

from . import serialize
from .middleware import CallInfo, CallInput, Middleware, StepInfo

ENCRYPTION_MARKER = "__ENCRYPTED__"
STRATEGY_MARKER = "__STRATEGY__"
STRATEGY = "wayline/aes-256-gcm"
KEY_BYTES = 32
NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A value could not be decrypted: unknown key id, another strategy, or tampering."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """A key to encrypt with: its id, its 32 bytes, and (KMS) its wrapped form to store."""

    key_id: str
    key: bytes
    wrapped: str | None = None


class Keys(Protocol):
    """Where the middleware gets its keys (``StaticKeys``, ``wayline.kms.KmsKeys``)."""

    def encryption_key(self) -> DataKey:
        """The key new values are encrypted with."""
        ...

    def decryption_key(self, key_id: str, wrapped: str | None) -> bytes:
        """The key a value was encrypted with; raises ``DecryptionError`` if unknown."""
        ...


class StaticKeys:
    """Keys held by the app (e.g. from a secret store): the current one and older ones.

    Args:
        current: ``(key_id, key)``: new values are encrypted with it. ``key`` is 32 bytes,
            or their base64 / hex text.
        previous: Older keys by id, still accepted for decryption (key rotation).
    """

    def __init__(
        self, current: tuple[str, bytes | str], previous: Mapping[str, bytes | str] | None = None
    ) -> None:
        key_id, key = current
        self._current = DataKey(_key_id(key_id), _key_bytes(key, key_id))
        self._known = {
            _key_id(kid): _key_bytes(value, kid) for kid, value in (previous or {}).items()
        }
        self._known[self._current.key_id] = self._current.key

    def encryption_key(self) -> DataKey:
        return self._current

    def decryption_key(self, key_id: str, wrapped: str | None) -> bytes:
        try:
            return self._known[key_id]
        except KeyError:
            raise DecryptionError(
                f"no key with id {key_id!r} to decrypt with (known: {sorted(self._known)})"
            ) from None


def generate_key() -> str:
    """A new random 256-bit key, as base64 text (store it in your secret store)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


class Encryption(Middleware):
    """Encrypts step outputs, function output and event data (see the module doc).

    Args:
        keys: Where keys come from: ``StaticKeys`` or ``wayline.kms.KmsKeys``.
        event_field: The field of ``data`` encrypted in events sent; None: all of ``data``.
        decrypt_only: Decrypt what arrives but encrypt nothing (rolling encryption out or
            back: deploy this first everywhere, then turn encryption on).
    """

    def __init__(
        self, keys: Keys, *, event_field: str | None = "encrypted", decrypt_only: bool = False
    ) -> None:
        self.keys = keys
        self.event_field = event_field
        self.decrypt_only = decrypt_only

    @classmethod
    def from_key(cls, key: bytes | str, key_id: str = "default") -> Encryption:
        """One static key: ``Encryption.from_key(os.environ["ENCRYPTION_KEY"])``."""
        return cls(StaticKeys((key_id, key)))

    # ------------------------------------------------------------------ values

    def encrypt(self, value: Any) -> dict[str, Any]:
        """The envelope of a JSON value."""
        data_key = self.keys.encryption_key()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(data_key.key).encrypt(
            nonce, serialize.dumps(value), data_key.key_id.encode("utf-8")
        )
        envelope: dict[str, Any] = {
            ENCRYPTION_MARKER: True,
            STRATEGY_MARKER: STRATEGY,
            "data": base64.b64encode(nonce + sealed).decode("ascii"),
            "kid": data_key.key_id,
        }
        if data_key.wrapped is not None:
            envelope["dk"] = data_key.wrapped
        return envelope

    def decrypt(self, envelope: Mapping[str, Any]) -> Any:
        """The JSON value in an envelope. Raises ``DecryptionError``."""
        strategy = envelope.get(STRATEGY_MARKER)
        if strategy != STRATEGY:
            raise DecryptionError(
                f"a value encrypted with strategy {strategy!r} cannot be decrypted by "
                f"wayline's Encryption middleware ({STRATEGY})"
            )
        key_id, data, wrapped = envelope.get("kid"), envelope.get("data"), envelope.get("dk")
        if not isinstance(key_id, str) or not isinstance(data, str):
            raise DecryptionError("an encrypted value has no key id or no data")
        key = self.keys.decryption_key(key_id, wrapped if isinstance(wrapped, str) else None)
        try:
            raw = base64.b64decode(data, validate=True)
            plain = AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], key_id.encode("utf-8")
            )
        except Exception as exc:  # binascii.Error, InvalidTag: corrupted or the wrong key
            raise DecryptionError(
                f"an encrypted value under key {key_id!r} failed to decrypt: it was altered "
                "or the key is not the one it was encrypted with"
            ) from exc
        return json.loads(plain)

    def decrypt_all(self, value: Any) -> Any:
        """``value`` with every envelope inside it (at any depth) decrypted."""
        if isinstance(value, Mapping):
            if is_encrypted(value):
                return self.decrypt(value)
            return {k: self.decrypt_all(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.decrypt_all(v) for v in value]
        return value

    def _encrypt_event(self, event: dict[str, Any]) -> dict[str, Any]:
        data = event.get("data")
        if not isinstance(data, Mapping):
            return event
        if self.event_field is None:
            return {**event, "data": data if is_encrypted(data) else self.encrypt(data)}
        if self.event_field not in data or is_encrypted(data[self.event_field]):
            return event
        sealed = self.encrypt(data[self.event_field])
        return {**event, "data": {**data, self.event_field: sealed}}

    # ------------------------------------------------------------------ hooks

    def transform_input(self, call: CallInfo, data: CallInput) -> CallInput:
        return CallInput(
            events=[self.decrypt_all(e) for e in data.events],
            steps={k: self.decrypt_all(v) for k, v in data.steps.items()},
        )

    def transform_step_output(self, call: CallInfo, step: StepInfo, data: Any) -> Any:
        return data if self.decrypt_only else self.encrypt(data)

    def transform_output(self, call: CallInfo, data: Any) -> Any:
        return data if self.decrypt_only else self.encrypt(data)

    def transform_send(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return events if self.decrypt_only else [self._encrypt_event(e) for e in events]

    def transform_invoke(self, call: CallInfo, function_id: str, data: Any) -> Any:
        # The invoked function receives ``data`` as its event's data: seal it the same way.
        return data if self.decrypt_only else self._encrypt_event({"data": data})["data"]


def is_encrypted(value: object) -> bool:
    """Whether ``value`` is an encryption envelope (of any strategy)."""
    return isinstance(value, Mapping) and value.get(ENCRYPTION_MARKER) is True


def _key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not key_id.strip():
        raise ConfigError("an encryption key id must be a non-empty string")
    return key_id


def _key_bytes(key: bytes | str, key_id: str) -> bytes:
    raw: bytes | None = key if isinstance(key, bytes) else None
    if isinstance(key, str):
        for decode in (bytes.fromhex, base64.b64decode):
            try:
                raw = decode(key)
            except ValueError:
                continue
            if len(raw) == KEY_BYTES:
                break
    if raw is None or len(raw) != KEY_BYTES:
        raise ConfigError(
            f"encryption key {key_id!r} must be {KEY_BYTES} bytes (or their base64 or hex "
            "text); make one with wayline.middleware.generate_key()"
        )
    return raw
