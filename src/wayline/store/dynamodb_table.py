"""What every DynamoDB port shares: one table behind the low-level client.

``Table`` wraps the few calls the ports make (GetItem, conditional writes, transactions,
Query, BatchGetItem, BatchWriteItem) so that each port states *what* it writes and on
which condition, while error handling lives here, once:

- a condition that does not hold raises ``ConditionFailed`` (carrying the old item when
  the write asked for ``ALL_OLD``): ports turn that into ``False``/``None``, as a lost
  race is data, not an error;
- ``TransactionConflict`` (another transaction was touching the item at that instant) is
  retried here with jittered backoff: it says nothing about who wins, so it must not be
  reported as a lost race;
- anything else becomes a ``StoreError`` naming the operation and the AWS error code.

Bodies (the codec's JSON) go in one ``body`` string attribute, or to S3 when they would
not fit an item: see ``encode_body``.
"""

from __future__ import annotations

import heapq
import itertools
import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from wayline.aws.clients import error_code, translate_errors
from wayline.aws.s3 import BlobStore
from wayline.engine.model import JSON
from wayline.errors import StoreError

from . import keys
from .codec import dumps, loads
from .dynamodb_schema import PK, SK
from .keys import Key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

Item = dict[str, Any]
"""An item in the low-level attribute-value format: ``{"pk": {"S": "RUN#..."}, ...}``."""

Write = dict[str, Any]
"""One write in ``TransactWriteItems`` form: ``{"Put": {...}}``, ``{"Update": ...}`` or
``{"Delete": ...}``. A single write is sent as the matching single-item call."""

INLINE_LIMIT = 350_000
"""Largest body kept in the item itself. DynamoDB's limit is 400 KB per item, attribute
names and keys included; the rest of the budget is for them."""

BODY = "body"
BODY_REF = "body_ref"
BODY_ATTRIBUTES = (BODY, BODY_REF)

_CONFLICT_RETRIES = 8
_BATCH_GET = 100  # BatchGetItem's limit
_BATCH_WRITE = 25  # BatchWriteItem's limit
_NAME = re.compile(r"#(\w+)")
_SINGLE = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def key_item(key: Key) -> Item:
    return {PK: s(key.pk), SK: s(key.sk)}


def key_of(item: Mapping[str, Any]) -> Key:
    return Key(item[PK]["S"], item[SK]["S"])


def text(item: Mapping[str, Any], name: str) -> str:
    return str(item[name]["S"])


def number(item: Mapping[str, Any], name: str) -> int:
    return int(item[name]["N"])


def _names(*expressions: str | None) -> dict[str, str]:
    """``#name`` placeholders for every attribute an expression uses.

    Every attribute is written as ``#name``, so that no name ever clashes with one of
    DynamoDB's several hundred reserved words (``at``, ``name``, ``status``...).
    """
    found = {m for e in expressions if e for m in _NAME.findall(e)}
    return {f"#{name}": name for name in sorted(found)}


def _with_expressions(params: dict[str, Any], values: Item | None) -> dict[str, Any]:
    names = _names(
        params.get("ConditionExpression"),
        params.get("UpdateExpression"),
        params.get("KeyConditionExpression"),
        params.get("FilterExpression"),
        params.get("ProjectionExpression"),
    )
    if names:
        params["ExpressionAttributeNames"] = names
    if values:
        params["ExpressionAttributeValues"] = values
    return params


def item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB bills it (attribute names and values; numbers roughly)."""
    size = 0
    for name, value in item.items():
        ((kind, v),) = value.items()
        size += len(name.encode())
        if kind == "S":
            size += len(str(v).encode())
        elif kind == "N":
            size += len(str(v).lstrip("-").replace(".", "")) // 2 + 1
        else:
            size += len(dumps(v))
    return size


class ConditionFailed(Exception):  # noqa: N818 - control flow inside the store, not an error
    """A conditional write did not apply: a lost race.

    ``old`` is the item as it stood, when the write asked for it (``ALL_OLD``; None if
    there was no item); ``index`` is which write of a transaction failed.
    """

    def __init__(self, old: Item | None = None, index: int = 0) -> None:
        super().__init__("condition failed")
        self.old = old
        self.index = index


def translate(operation: str) -> AbstractContextManager[None]:
    """Any boto3 failure inside the block becomes a ``StoreError`` naming ``operation``."""
    return translate_errors("DynamoDB", operation)


class Table:
    """One Wayline table: the client, its name and the optional S3 offload."""

    def __init__(self, client: DynamoDBClient, name: str, blobs: BlobStore | None) -> None:
        self._client = client
        self.name = name
        self._blobs = blobs

    # -- write actions (built here so that they all carry the table name) -----------

    def put(self, item: Item, *, condition: str | None = None, values: Item | None = None) -> Write:
        params = {"TableName": self.name, "Item": item}
        if condition:
            params["ConditionExpression"] = condition
        return {"Put": _with_expressions(params, values)}

    def update(
        self,
        key: Key,
        expression: str,
        *,
        condition: str | None = None,
        values: Item | None = None,
    ) -> Write:
        params = {"TableName": self.name, "Key": key_item(key), "UpdateExpression": expression}
        if condition:
            params["ConditionExpression"] = condition
        return {"Update": _with_expressions(params, values)}

    def delete(
        self, key: Key, *, condition: str | None = None, values: Item | None = None
    ) -> Write:
        params: dict[str, Any] = {"TableName": self.name, "Key": key_item(key)}
        if condition:
            params["ConditionExpression"] = condition
        return {"Delete": _with_expressions(params, values)}

    # -- writes ------------------------------------------------------------------

    def write(
        self, action: Write, *, returns: str | None = None, old_on_fail: bool = False
    ) -> Item:
        """Send one write; returns the attributes ``returns`` (``ReturnValues``) asked for.

        Raises ``ConditionFailed`` (with the old item if ``old_on_fail``) when its
        condition did not hold.
        """
        ((kind, params),) = action.items()
        call = dict(params)
        if returns:
            call["ReturnValues"] = returns
        if old_on_fail:
            call["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        operation = _SINGLE[kind]
        for attempt in range(_CONFLICT_RETRIES):
            try:
                written = getattr(self._client, operation)(**call)
                return dict(written.get("Attributes", {}))
            except ClientError as exc:
                code = error_code(exc)
                response: Mapping[str, Any] = exc.response
                if code == "ConditionalCheckFailedException":
                    raise ConditionFailed(response.get("Item")) from None
                if code != "TransactionConflictException":
                    with translate(kind + "Item"):  # re-raised inside: becomes a StoreError
                        raise
            backoff(attempt)
        raise StoreError(f"DynamoDB {kind}Item failed: TransactionConflict persisted")

    def write_all(self, actions: Sequence[Write], *, old_on_fail: bool = False) -> None:
        """Apply ``actions`` all or nothing: one single-item call, or one transaction.

        A transaction (up to 100 writes, 4 MB) costs twice the write units of the same
        writes made one by one, so it is only used when there is more than one write.
        """
        if len(actions) == 1:
            self.write(actions[0], old_on_fail=old_on_fail)
            return
        items = [_mark_old(a) for a in actions] if old_on_fail else list(actions)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self._client.transact_write_items(TransactItems=cast(Any, items))
                return
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    with translate("TransactWriteItems"):
                        raise
                response: Mapping[str, Any] = exc.response
                reasons = response.get("CancellationReasons", [])
                _raise_if_condition_failed(reasons)
                if not any(r.get("Code") == "TransactionConflict" for r in reasons):
                    with translate("TransactWriteItems"):
                        raise
            backoff(attempt)
        raise StoreError("DynamoDB TransactWriteItems failed: TransactionConflict persisted")

    def batch_put(self, items: Sequence[Item]) -> None:
        """Unconditional puts of idempotent items (same key, same content), 25 per call."""
        for start in range(0, len(items), _BATCH_WRITE):
            chunk = items[start : start + _BATCH_WRITE]
            pending: Any = {self.name: [{"PutRequest": {"Item": item}} for item in chunk]}
            for attempt in range(_CONFLICT_RETRIES):
                with translate("BatchWriteItem"):
                    pending = self._client.batch_write_item(RequestItems=pending).get(
                        "UnprocessedItems"
                    )
                if not pending:
                    break
                backoff(attempt)
            else:
                raise StoreError("DynamoDB BatchWriteItem failed: items left unprocessed")

    # -- reads -------------------------------------------------------------------

    def get(self, key: Key, *, consistent: bool = True) -> Item | None:
        """A read of one item, strongly consistent unless ``consistent=False`` (half the
        read units; it may miss a write of the last second or so)."""
        with translate("GetItem"):
            response = self._client.get_item(
                TableName=self.name, Key=key_item(key), ConsistentRead=consistent
            )
        item = response.get("Item")
        return None if item is None else dict(item)

    def query(
        self,
        key_condition: str,
        values: Item,
        *,
        index: str | None = None,
        forward: bool = True,
        page_size: int | None = None,
        filter_expression: str | None = None,
        projection: str | None = None,
    ) -> Iterator[Item]:
        """Every item a Query matches, page by page, lazily.

        On the table itself reads are strongly consistent; an index can only be read
        eventually consistently (DynamoDB has no other kind of GSI read).
        """
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": key_condition,
            "ScanIndexForward": forward,
        }
        if index is None:
            params["ConsistentRead"] = True
        else:
            params["IndexName"] = index
        if page_size is not None:
            params["Limit"] = page_size
        if filter_expression:
            params["FilterExpression"] = filter_expression
        if projection:
            params["ProjectionExpression"] = projection
        _with_expressions(params, values)
        while True:
            with translate("Query"):
                page = self._client.query(**params)
            yield from (dict(item) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    def batch_get(self, wanted: Sequence[Key]) -> dict[Key, Item]:
        """The items that exist among ``wanted`` (strongly consistent), by key."""
        found: dict[Key, Item] = {}
        unique = list(dict.fromkeys(wanted))
        for start in range(0, len(unique), _BATCH_GET):
            chunk = unique[start : start + _BATCH_GET]
            pending: Any = {
                self.name: {"Keys": [key_item(k) for k in chunk], "ConsistentRead": True}
            }
            for attempt in range(_CONFLICT_RETRIES):
                with translate("BatchGetItem"):
                    response = self._client.batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self.name, []):
                    found[key_of(item)] = dict(item)
                pending = response.get("UnprocessedKeys")
                if not pending:
                    break
                backoff(attempt)
            else:
                raise StoreError("DynamoDB BatchGetItem failed: keys left unprocessed")
        return found

    # -- bodies ------------------------------------------------------------------

    def encode_body(self, doc: JSON, *, kind: str, owner: str, what: str) -> Item:
        """The attributes that hold ``doc``: inline, or a pointer to an S3 object.

        Raises ``StoreError`` naming ``what`` and the size when the body is too large for
        an item and no S3 offload is configured: nothing is ever truncated.
        """
        body = dumps(doc)
        data = body.encode("utf-8")
        if len(data) <= INLINE_LIMIT:
            return {BODY: s(body)}
        if self._blobs is None:
            raise StoreError(
                f"{what} is {len(data)} bytes, over the {INLINE_LIMIT}-byte DynamoDB item"
                " budget, and this store has no S3 offload configured"
            )
        ref = keys.blob(kind, owner, data)
        self._blobs.put(ref, data)
        return {BODY_REF: s(ref)}

    def decode_body(self, item: Mapping[str, Any]) -> Any:
        if BODY in item:
            return loads(item[BODY]["S"])
        ref = text(item, BODY_REF)
        if self._blobs is None:
            raise StoreError(
                f"item {item[PK]['S']!r} holds its body in S3 ({ref}), and this store has no"
                " S3 offload configured"
            )
        return loads(self._blobs.get(ref))


def merge_iter(
    streams: Sequence[Iterator[Item]], attribute: str, *, descending: bool
) -> Iterator[Item]:
    """Several Query results, each sorted on ``attribute`` (a string), merged lazily."""
    return heapq.merge(*streams, key=lambda item: text(item, attribute), reverse=descending)


def merge_sorted(
    streams: Sequence[Iterator[Item]], attribute: str, *, descending: bool, limit: int
) -> list[Item]:
    """The first ``limit`` items of several Query results, each sorted on ``attribute``
    (a string), merged in that order: how a sharded index is read."""
    merged = heapq.merge(*streams, key=lambda item: text(item, attribute), reverse=descending)
    return list(itertools.islice(merged, limit))


def backoff(attempt: int) -> None:
    # Full jitter: racers that collided once must not collide again in lockstep.
    time.sleep(random.uniform(0, 0.005 * 2**attempt))


def _mark_old(action: Write) -> Write:
    ((kind, params),) = action.items()
    if "ConditionExpression" not in params:
        return action
    return {kind: {**params, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}


def _raise_if_condition_failed(reasons: Sequence[Mapping[str, Any]]) -> None:
    for index, reason in enumerate(reasons):
        if reason.get("Code") == "ConditionalCheckFailed":
            old = reason.get("Item")
            raise ConditionFailed(None if old is None else dict(old), index)
