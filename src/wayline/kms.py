"""AWS KMS data keys for the encryption middleware (``pip install 'wayline[aws,encryption]'``).

Envelope encryption: ``GenerateDataKey`` (AES-256) gives a plaintext data key, used for a
while then dropped, and its copy wrapped by the KMS key, which travels in each envelope
(``"dk"``). Decrypting calls KMS ``Decrypt`` on the wrapped key, once per data key (cached).
The app's role needs ``kms:GenerateDataKey`` and ``kms:Decrypt`` on the key; rotating the
KMS key is KMS's business (old wrapped keys still decrypt), and moving to a new KMS key only
needs the role to keep ``kms:Decrypt`` on the old one.

Cost: one ``GenerateDataKey`` per ``reuse_s`` seconds (default 5 minutes) per process, and
one ``Decrypt`` per distinct data key a process meets.

Example::

    from wayline.kms import KmsKeys
    from wayline.middleware import Encryption

    client = wayline.Wayline(app_id="shop", middleware=[Encryption(KmsKeys("alias/wayline"))])
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

from .sdk.encryption import DataKey, DecryptionError


class KmsKeys:
    """Keys for ``Encryption`` from AWS KMS data keys.

    Args:
        key_id: The KMS key (id, ARN or ``alias/...``) new data keys are made under.
        client: A boto3 KMS client (default: ``boto3.client("kms")``).
        reuse_s: How long one data key encrypts new values before a new one is made.
        clock: Seconds, for tests.
    """

    def __init__(
        self,
        key_id: str,
        *,
        client: Any = None,
        reuse_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("kms")
        self._key_id = key_id
        self._kms = client
        self._reuse_s = reuse_s
        self._clock = clock
        self._lock = threading.Lock()
        self._current: tuple[float, DataKey] | None = None
        self._unwrapped: dict[str, bytes] = {}

    def encryption_key(self) -> DataKey:
        with self._lock:
            now = self._clock()
            if self._current is None or now - self._current[0] >= self._reuse_s:
                made = self._kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256")
                wrapped = base64.b64encode(made["CiphertextBlob"]).decode("ascii")
                key = DataKey(str(made["KeyId"]), bytes(made["Plaintext"]), wrapped)
                self._unwrapped[wrapped] = key.key
                self._current = (now, key)
            return self._current[1]

    def decryption_key(self, key_id: str, wrapped: str | None) -> bytes:
        if wrapped is None:
            raise DecryptionError(f"a value under KMS key {key_id!r} carries no data key")
        with self._lock:
            known = self._unwrapped.get(wrapped)
        if known is not None:
            return known
        try:
            blob = base64.b64decode(wrapped, validate=True)
            plain = bytes(self._kms.decrypt(CiphertextBlob=blob, KeyId=key_id)["Plaintext"])
        except Exception as exc:  # botocore ClientError, bad base64
            raise DecryptionError(
                f"KMS could not unwrap a data key of {key_id!r}: {type(exc).__name__}"
            ) from exc
        with self._lock:
            self._unwrapped[wrapped] = plain
        return plain
