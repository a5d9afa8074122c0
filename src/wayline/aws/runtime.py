"""The Lambda functions' composition: settings from the environment, boto3 clients built
once per container, and the engine service wired to DynamoDB, SQS and Scheduler.

Everything that touches the outside world is injected through ``Deps`` (environment,
clock, entropy, secrets, the AWS endpoint), so tests build the same runtime on moto with
a virtual clock, and the handlers stay composition roots of a few lines::

    runtime = build_runtime(Deps())          # once per container
    runtime.service.send_events(...)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

from wayline.clock import OsEntropy, SystemClock
from wayline.engine.model import App, FunctionDef, Run
from wayline.engine.ports import Clock, IdSource, Store
from wayline.engine.service import Service
from wayline.errors import ConfigError
from wayline.store.dynamodb import DynamoStore
from wayline.store.dynamodb_realtime import DynamoRealtimeLog

from .backoff import Backoff
from .clients import dynamodb_client, events_client, s3_client, scheduler_client, sqs_client
from .dispatcher import Dispatcher
from .eventbridge import EventBus
from .invoker import HttpxTransport
from .observability import RunMetrics
from .s3 import S3Offload
from .scheduler import Schedules, cron_schedules
from .sqs import WorkSender
from .work_queue import AwsWorkQueue

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events.client import EventBridgeClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_scheduler.client import EventBridgeSchedulerClient
    from mypy_boto3_sqs.client import SQSClient

__all__ = ["AwsService", "Deps", "Runtime", "Settings", "build_runtime", "ssm_secret"]

log = logging.getLogger("wayline.aws")

SECRET_MAX_AGE_S = 300
"""Keys are re-read from SSM at most every 5 minutes: a rotation needs no redeploy."""


def ssm_secret(name: str) -> str:
    """An SSM SecureString, decrypted, cached by Powertools for ``SECRET_MAX_AGE_S``."""
    from aws_lambda_powertools.utilities.parameters import get_parameter

    return get_parameter(name, decrypt=True, max_age=SECRET_MAX_AGE_S)


def _required(getenv: Callable[[str], str | None], name: str) -> str:
    value = getenv(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set (template.yaml sets it)")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """What template.yaml puts in a function's environment."""

    table: str
    work_queue_url: str
    work_queue_arn: str
    schedule_group: str
    scheduler_role_arn: str
    bucket: str | None = None
    scheduler_dlq_arn: str | None = None
    event_bus: str | None = None
    timers_function_arn: str | None = None
    signing_key_parameter: str | None = None
    signing_key_fallback_parameter: str | None = None
    event_key_parameter: str | None = None
    allow_private_app_urls: bool = False
    call_timeout_s: float = 300.0
    retention_days: int | None = None
    """Events and finished runs expire after this long (template: PayloadRetentionDays)."""
    checkpointing: bool = True
    """``WAYLINE_CHECKPOINTING=0`` turns SDK checkpoints off (``engine.checkpoint``)."""

    @classmethod
    def from_env(cls, getenv: Callable[[str], str | None]) -> Settings:
        def optional(name: str) -> str | None:
            return getenv(name) or None

        return cls(
            table=_required(getenv, "WAYLINE_TABLE"),
            work_queue_url=_required(getenv, "WAYLINE_WORK_QUEUE_URL"),
            work_queue_arn=_required(getenv, "WAYLINE_WORK_QUEUE_ARN"),
            schedule_group=_required(getenv, "WAYLINE_SCHEDULE_GROUP"),
            scheduler_role_arn=_required(getenv, "WAYLINE_SCHEDULER_ROLE_ARN"),
            bucket=optional("WAYLINE_BUCKET"),
            scheduler_dlq_arn=optional("WAYLINE_SCHEDULER_DLQ_ARN"),
            event_bus=optional("WAYLINE_EVENT_BUS"),
            timers_function_arn=optional("WAYLINE_TIMERS_FUNCTION_ARN"),
            signing_key_parameter=optional("WAYLINE_SIGNING_KEY_PARAMETER"),
            signing_key_fallback_parameter=optional("WAYLINE_SIGNING_KEY_FALLBACK_PARAMETER"),
            event_key_parameter=optional("WAYLINE_EVENT_KEY_PARAMETER"),
            allow_private_app_urls=(getenv("WAYLINE_ALLOW_PRIVATE_APP_URLS") or "") == "true",
            call_timeout_s=float(getenv("WAYLINE_CALL_TIMEOUT_S") or 300),
            retention_days=int(days) if (days := getenv("WAYLINE_RETENTION_DAYS")) else None,
            checkpointing=(getenv("WAYLINE_CHECKPOINTING") or "1") != "0",
        )


@dataclass(frozen=True, slots=True)
class Clients:
    """boto3 client factories; ``endpoint_url`` points every client elsewhere (tests)."""

    endpoint_url: str | None = None
    region_name: str | None = None

    def dynamodb(self) -> DynamoDBClient:
        return dynamodb_client(region_name=self.region_name, endpoint_url=self.endpoint_url)

    def s3(self) -> S3Client:
        return s3_client(region_name=self.region_name, endpoint_url=self.endpoint_url)

    def sqs(self) -> SQSClient:
        return sqs_client(region_name=self.region_name, endpoint_url=self.endpoint_url)

    def scheduler(self) -> EventBridgeSchedulerClient:
        return scheduler_client(region_name=self.region_name, endpoint_url=self.endpoint_url)

    def events(self) -> EventBridgeClient:
        return events_client(region_name=self.region_name, endpoint_url=self.endpoint_url)


@dataclass(frozen=True)
class Deps:
    """The outside world, injectable (Temporal's ``_WorkerDeps`` pattern)."""

    getenv: Callable[[str], str | None] = os.environ.get
    clock: Clock = field(default_factory=SystemClock)
    entropy: IdSource = field(default_factory=OsEntropy)
    read_secret: Callable[[str], str] = ssm_secret
    clients: Clients = field(default_factory=Clients)
    sleep: Callable[[float], None] = time.sleep
    """How retries inside an invocation wait (tests: no wall time)."""
    observer: Callable[[Run | None, Run], None] | None = field(default_factory=RunMetrics)
    """Sees every saved run change: EMF metrics per function (``aws.observability``)."""


class AwsService(Service):
    """The engine service plus what app sync means on AWS: reconcile the app's cron
    schedules (one ``cron()`` schedule per trigger) with its new function list."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdSource,
        *,
        schedules: Schedules,
        timers_function_arn: str | None,
        observer: Callable[[Run | None, Run], None] | None = None,
        checkpointing: bool = True,
    ) -> None:
        super().__init__(store, clock, ids, observer=observer, checkpointing=checkpointing)
        self._schedules = schedules
        self._timers_function_arn = timers_function_arn

    def sync_app(self, app: App, functions: Sequence[FunctionDef]) -> bool:
        old = self.store.apps.list_functions(app.id)
        if cron_schedules(functions) and not self._timers_function_arn:
            raise ConfigError("WAYLINE_TIMERS_FUNCTION_ARN is not set: cannot schedule crons")
        changed = super().sync_app(app, functions)
        if self._timers_function_arn:
            created, deleted = self._schedules.reconcile_crons(
                old=old, new=functions, target_arn=self._timers_function_arn
            )
            log.info(
                "cron schedules reconciled",
                extra={
                    "app_id": app.id,
                    "schedules_created": created,
                    "schedules_deleted": deleted,
                },
            )
        return changed


class Runtime:
    """One container's wiring. Parts only some functions use are built on first use."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.settings = settings = Settings.from_env(deps.getenv)
        self.clock = deps.clock
        clients = deps.clients
        self.payloads = offload = (
            S3Offload(bucket=settings.bucket, client=clients.s3()) if settings.bucket else None
        )
        """The payload bucket: DynamoDB bodies over the item limit, events over the bus's."""
        dynamo = DynamoStore(
            table_name=settings.table,
            client=clients.dynamodb(),
            s3=offload,
            retention_days=settings.retention_days,
        )
        self.realtime = DynamoRealtimeLog(dynamo.table, deps.clock.now_ms)
        """Realtime messages, for the api function (``wayline.api.realtime``)."""
        self.backoff = Backoff(sleep=deps.sleep)
        """Retries of transient AWS failures inside an invocation."""
        self.sqs = clients.sqs()
        self.sender = WorkSender(
            queue_url=settings.work_queue_url, client=self.sqs, sleep=deps.sleep
        )
        self.schedules = Schedules(
            group=settings.schedule_group,
            role_arn=settings.scheduler_role_arn,
            client=clients.scheduler(),
            dead_letter_arn=settings.scheduler_dlq_arn,
        )
        self.queue = AwsWorkQueue(
            sender=self.sender,
            schedules=self.schedules,
            queue_arn=settings.work_queue_arn,
            clock=deps.clock,
            backoff=self.backoff,
        )
        self.store: Store = replace(dynamo.store(), queue=self.queue)
        self.service = AwsService(
            self.store,
            deps.clock,
            deps.entropy,
            schedules=self.schedules,
            timers_function_arn=settings.timers_function_arn,
            observer=deps.observer,
            checkpointing=settings.checkpointing,
        )

    def _secret(self, parameter: str | None) -> str | None:
        return self.deps.read_secret(parameter).strip() if parameter else None

    def signing_keys(self) -> tuple[str, ...]:
        """The signing key, then the fallback (if any); ``ConfigError`` if none is set."""
        s = self.settings
        keys = tuple(
            k
            for k in (
                self._secret(s.signing_key_parameter),
                self._secret(s.signing_key_fallback_parameter),
            )
            if k
        )
        if not keys:
            raise ConfigError("no signing key: set WAYLINE_SIGNING_KEY_PARAMETER")
        return keys

    def event_keys(self) -> tuple[str, ...]:
        """Accepted event keys (comma-separated in their parameter); never empty."""
        raw = self._secret(self.settings.event_key_parameter) or ""
        keys = tuple(k.strip() for k in raw.split(",") if k.strip())
        if not keys:
            raise ConfigError("no event key: set WAYLINE_EVENT_KEY_PARAMETER")
        return keys

    @cached_property
    def bus(self) -> EventBus:
        if not self.settings.event_bus:
            raise ConfigError("environment variable WAYLINE_EVENT_BUS is not set")
        return EventBus(
            bus_name=self.settings.event_bus,
            client=self.deps.clients.events(),
            payloads=self.payloads,
        )

    @cached_property
    def transport(self) -> HttpxTransport:
        return HttpxTransport(
            timeout_s=self.settings.call_timeout_s,
            allow_private=self.settings.allow_private_app_urls,
        )

    @cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            service=self.service,
            queue=self.queue,
            sender=self.sender,
            transport=self.transport,
            clock=self.clock,
            signing_key=lambda: self.signing_keys()[0],
            call_timeout_s=self.settings.call_timeout_s,
            allow_private=self.settings.allow_private_app_urls,
        )


def build_runtime(deps: Deps | None = None) -> Runtime:
    return Runtime(deps or Deps())
