"""Payloads too large for a DynamoDB item, kept in S3 by key.

The DynamoDB store calls ``put`` before it writes the item that points at the object and
``get`` when it reads such an item back. Keys are content-addressed by the caller
(``wayline.store.keys.blob``), so every object is written once and never changes: a
retried ``put`` rewrites the same bytes. Objects whose item was never written (the writer
lost a race or crashed in between) are orphans; a bucket lifecycle rule that expires
objects after the longest run retention removes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .clients import s3_client, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["BlobStore", "S3Offload"]


class BlobStore(Protocol):
    """Where the DynamoDB store puts bodies over its item budget."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class S3Offload:
    """A ``BlobStore`` on one S3 bucket, under an optional key prefix."""

    def __init__(self, *, bucket: str, client: S3Client | None = None, prefix: str = "") -> None:
        self._client = client or s3_client()
        self._bucket = bucket
        self._prefix = prefix

    def put(self, key: str, data: bytes) -> None:
        with translate_errors("S3", "PutObject"):
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._prefix + key,
                Body=data,
                ContentType="application/json",
            )

    def get(self, key: str) -> bytes:
        with translate_errors("S3", "GetObject"):
            response = self._client.get_object(Bucket=self._bucket, Key=self._prefix + key)
            return response["Body"].read()
