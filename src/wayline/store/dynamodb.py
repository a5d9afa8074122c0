"""The DynamoDB backend: every engine port on one DynamoDB table (plus S3 for big bodies).

The AWS counterpart of ``wayline.store.sqlite``, held to the same contract suite
(``tests/contract``). Each port is a small class in its own ``dynamodb_*`` module; they
share one ``Table`` (client + table name + optional S3 offload)::

    store = DynamoStore(table_name="wayline").store()
    store.runs.get_run(run_id)

Design rules, all enforced in the port modules:

- every state change is a conditional write; a transaction only where two items must
  change together (a run and its new memo; an app and its functions);
- no Scan anywhere: every read is a GetItem, a BatchGetItem or a Query on the table or
  on one of the sparse indexes in ``dynamodb_schema``;
- no item over the 400 KB limit: run bodies exclude memos, memos are items of their own,
  and any body over ``INLINE_LIMIT`` goes to S3 (or is refused with a ``StoreError``
  naming it and its size when no S3 offload is given);
- errors from AWS surface as ``StoreError`` (operation + AWS error code), lost races as
  ``False``/``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wayline.aws.clients import dynamodb_client
from wayline.aws.s3 import BlobStore
from wayline.engine.ports import Store

from .dynamodb_apps import DynamoAppStore
from .dynamodb_events import DynamoEventStore
from .dynamodb_flow import DynamoCounters, DynamoLeases, DynamoParking
from .dynamodb_memo_appends import DynamoMemoAppends
from .dynamodb_queue import DynamoIdempotency, DynamoWorkQueue
from .dynamodb_runs import DynamoRunStore
from .dynamodb_schema import Retention, create_table
from .dynamodb_table import Table
from .dynamodb_waits import DynamoWaitStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["DynamoStore", "create_table"]


class DynamoStore:
    """The ports on table ``table_name``; ``client`` defaults to ``aws.clients``' factory.

    ``s3`` (e.g. ``wayline.aws.s3.S3Offload``) receives bodies too large for an item.
    ``retention_days``: events and finished runs expire (DynamoDB TTL) after this long,
    in step with the payload bucket's lifecycle (``Retention``); None keeps them forever.
    Instances are cheap and thread-safe; build one per process and share it.
    """

    def __init__(
        self,
        *,
        table_name: str,
        client: DynamoDBClient | None = None,
        s3: BlobStore | None = None,
        retention_days: int | None = None,
    ) -> None:
        retention = Retention(retention_days) if retention_days is not None else None
        table = Table(client or dynamodb_client(), table_name, s3)
        self.table = table
        """For parts outside ``Store`` (``dynamodb_realtime``)."""
        self.events = DynamoEventStore(table, retention)
        self.apps = DynamoAppStore(table)
        self.runs = DynamoRunStore(table, retention)
        self.appends = DynamoMemoAppends(table, retention)
        self.queue = DynamoWorkQueue(table)
        self.waits = DynamoWaitStore(table)
        self.idempotency = DynamoIdempotency(table)
        self.leases = DynamoLeases(table)
        self.counters = DynamoCounters(table)
        self.parked = DynamoParking(table)

    def store(self) -> Store:
        return Store(
            events=self.events,
            apps=self.apps,
            runs=self.runs,
            queue=self.queue,
            waits=self.waits,
            idempotency=self.idempotency,
            leases=self.leases,
            counters=self.counters,
            parked=self.parked,
            appends=self.appends,
        )
