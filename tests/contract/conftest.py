"""The port contract suite: every test runs against every backend in ``BACKENDS``.

A backend is a factory ``tmp_path -> Backend``. Adding one (e.g. DynamoDB on moto) is one
line in ``BACKENDS`` plus its ``Backend`` class.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
from moto import mock_aws
from moto.core.models import botocore_stubber

from wayline.aws.clients import dynamodb_client
from wayline.engine.model import (
    App,
    Attempt,
    Event,
    FunctionDef,
    InvokeParent,
    Outbox,
    Run,
    RunStatus,
    SeededStep,
    StepRecord,
    StepStatus,
    Trigger,
    Wait,
    WaitKind,
    WorkItem,
    WorkKind,
)
from wayline.engine.ports import Store
from wayline.store.dynamodb import DynamoStore, create_table
from wayline.store.sqlite import SqliteStore


class Backend(Protocol):
    durable: bool
    """``open()`` again reaches the same data (a second connection, or after ``close()``)."""

    def open(self) -> Store:
        """A new connection to this backend's storage."""

    def close(self) -> None:
        """Close every connection opened so far (``open()`` still works afterwards)."""


class SqliteBackend:
    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.durable = path != ":memory:"
        self._open: list[SqliteStore] = []

    def open(self) -> Store:
        db = SqliteStore(self.path)
        self._open.append(db)
        return db.store()

    def close(self) -> None:
        while self._open:
            self._open.pop().close()


class DynamoMotoBackend:
    """DynamoDB on moto's in-process ``mock_aws``, one fresh table per test.

    In-process, not moto's server: this suite pins what the ports do, not the HTTP wire
    (botocore's serializer still runs; only the socket is skipped), and in-process is the
    faster of the two. ``open()`` starts the mock with fake credentials and region in the
    environment; ``close()`` stops it but keeps moto's data, so that a later ``open()``
    reaches the same table, as the reopen tests require. The next backend's first
    ``open()`` resets moto, so no test sees another's table.

    moto checks a write's condition and applies the write in separate Python steps under
    no lock, so two threads can both pass one condition (30 double wins in 150 eight-way
    races when the GIL switches every microsecond); DynamoDB applies each write
    atomically. A lock around moto's request handler restores that: it serializes the
    fake's own work only, and the threads still race for the order of their requests.
    """

    durable = True
    TABLE = "wayline-contract"
    ENV = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def __init__(self) -> None:
        self._mock = mock_aws()
        self._patch = pytest.MonkeyPatch()
        self._running = False
        self._client: Any = None

    def open(self) -> Store:
        if not self._running:
            self._start()
        if self._client is None:
            self._client = dynamodb_client()
            create_table(self._client, self.TABLE, wait=False)
        # A new store per open(), as a new process would build: only the client is shared
        # (it is thread-safe and holds no data; building one costs ~0.1 s of model loading).
        return DynamoStore(client=self._client, table_name=self.TABLE).store()

    def close(self) -> None:
        if self._running:
            self._mock.stop(remove_data=False)
            self._patch.undo()
            self._running = False

    def _start(self) -> None:
        for name, value in self.ENV.items():
            self._patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            self._patch.delenv(name, raising=False)
        lock = threading.Lock()
        handle = botocore_stubber.process_request

        def one_at_a_time(request: Any) -> Any:
            with lock:
                return handle(request)

        self._patch.setattr(botocore_stubber, "process_request", one_at_a_time)
        self._mock.start(reset=self._client is None)
        self._running = True


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "sqlite-memory": lambda tmp: SqliteBackend(":memory:"),
    "sqlite-file": lambda tmp: SqliteBackend(tmp / "wayline.db"),
    "dynamodb-moto": lambda tmp: DynamoMotoBackend(),
}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened = BACKENDS[request.param](tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


DURABLE_BACKENDS = [name for name in BACKENDS if name != "sqlite-memory"]
"""Backends whose ``open()`` reaches the same storage again: the multi-connection and
reopen tests run only on these (an in-memory SQLite database dies with its connection)."""


@pytest.fixture(params=DURABLE_BACKENDS)
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened = BACKENDS[request.param](tmp_path)
    assert opened.durable
    yield opened
    opened.close()


# -- builders ----------------------------------------------------------------------------


def make_event(internal_id: str, name: str = "app/thing.happened", **kw: Any) -> Event:
    fields: dict[str, Any] = {
        "data": {"n": 1, "nested": {"ü": [1, 2.5, None, True]}},
        "user": {},
        "id": f"evt-{internal_id}",
        "ts": 1_700_000_000_000,
        "received_at": 1_700_000_000_000,
        "replay_of": "01HREPLAYED",
    }
    fields.update(kw)
    return Event(internal_id=internal_id, name=name, **fields)


def make_app(app_id: str = "shop", **kw: Any) -> App:
    fields: dict[str, Any] = {"url": "http://127.0.0.1:8000/api/inngest", "sdk": "py:v0.5"}
    fields.update(kw)
    return App(id=app_id, **fields)


def make_function(fn_id: str, app_id: str = "shop", **kw: Any) -> FunctionDef:
    fields: dict[str, Any] = {
        "name": fn_id,
        "url": f"http://127.0.0.1:8000/api/inngest?fnId={fn_id}&stepId=step",
        "triggers": (Trigger(event="shop/order.created", expression="event.data.n > 1"),),
        "retries": 3,
        "config": {"id": fn_id, "concurrency": [{"limit": 2}]},
    }
    fields.update(kw)
    return FunctionDef(id=fn_id, app_id=app_id, **fields)


def make_run(run_id: str = "01HRUN0000000000000000000A", **kw: Any) -> Run:
    fields: dict[str, Any] = {
        "function_id": "shop-charge",
        "app_id": "shop",
        "status": RunStatus.QUEUED,
        "events": ({"name": "shop/order.created", "data": {"n": 2}},),
        "event_ids": ("01HEVT0000000000000000000A",),
        "created_at": 1_700_000_000_000,
    }
    fields.update(kw)
    return Run(id=run_id, **fields)


def make_full_run(run_id: str = "01HRUN00000000000000000FUL") -> Run:
    """A run with every field set to a non-default value."""
    item = WorkItem("3", run_id, WorkKind.SLEEP, 42, "s2", 1, "shop-charge", "0 * * * *", "r#1")
    wait = make_wait("wait-1", run_id=run_id, step_id="s4", created_at=9)
    return make_run(
        run_id,
        status=RunStatus.RUNNING,
        events=({"name": "a", "data": {"x": [1, {"y": "ü"}]}}, {"name": "b", "data": {}}),
        event_ids=("01HEVT0000000000000000000A", "01HEVT0000000000000000000B"),
        version=7,
        memos={"s1": {"data": {"ok": True}}, "s0": None, "s3": {"error": {"message": "x"}}},
        stack=("s1", "s0", "s3"),
        steps=(
            StepRecord(
                "s1",
                "charge",
                "StepRun",
                StepStatus.COMPLETED,
                1,
                5,
                9,
                {"ok": True},
                seeded=True,
            ),
            StepRecord(
                "s2",
                "nap",
                "Sleep",
                StepStatus.SLEEPING,
                0,
                10,
                None,
                None,
                {"e": 1},
                history=(Attempt(1, 10, 12, StepStatus.FAILED, {"message": "x"}, retry_at=20),),
            ),
        ),
        pending={"3": item},
        waiting={"s4": wait},
        cancel_waits=(
            make_wait(
                "cancel-1", run_id=run_id, step_id="cancel:0", kind=WaitKind.CANCEL, created_at=3
            ),
        ),
        planned=frozenset({"s5", "s6"}),
        race=True,
        force_step_plan=True,
        request_version=1,
        seq=3,
        started_at=1_700_000_000_001,
        ended_at=1_700_000_000_002,
        output={"result": [1, 2, 3]},
        cron="TZ=Europe/Paris 0 * * * *",
        parent=InvokeParent(correlation_id="corr", run_id="01HPARENT", fn_id="shop-parent"),
        cancel_reason="user",
        outbox=make_outbox(run_id),
        call_failures=(Attempt(2, 3, 4, StepStatus.FAILED, {"name": "Error"}, retry_at=5),),
        rerun_of="01HOLDRUN",
        reruns=("01HRERUN1", "01HRERUN2"),
        seeds={"s7": SeededStep("ship", "StepRun", {"data": [1]})},
    )


def make_outbox(run_id: str = "01HRUN0000000000000000000A") -> Outbox:
    """An outbox holding one effect of each kind."""
    return Outbox(
        enqueue=(
            WorkItem(
                f"{run_id}:9", run_id, WorkKind.CALL, 77, "s9", 2, "shop-charge", "* * * * *", "k"
            ),
        ),
        waits=(make_wait("wait-9", run_id=run_id, step_id="s9", created_at=4),),
        drop_waits=("wait-8",),
        publish=(
            make_event("01HEVT0000000000000000000P", name="inngest/function.finished", v="1"),
        ),
    )


def make_item(item_id: str, at: int = 0, run_id: str = "r1", **kw: Any) -> WorkItem:
    fields: dict[str, Any] = {"kind": WorkKind.CALL}
    fields.update(kw)
    return WorkItem(id=item_id, run_id=run_id, at=at, **fields)


def make_wait(wait_id: str, event: str = "shop/paid", created_at: int = 0, **kw: Any) -> Wait:
    fields: dict[str, Any] = {
        "run_id": "r1",
        "step_id": "s1",
        "kind": WaitKind.EVENT,
        "expression": "async.data.order == 'o1'",
        "expires_at": 10_000,
    }
    fields.update(kw)
    return Wait(id=wait_id, event=event, created_at=created_at, **fields)


def unset_fields(obj: Any) -> set[str]:
    """Fields of a model object, and of the model objects it holds, left at their default.

    The round-trip tests use fully populated objects; this keeps them honest when the model
    grows a field that the codec (and the builder) would otherwise silently skip. A field
    of objects held in a tuple or mapping counts as set if any of them sets it.
    """
    unset: set[str] = set()
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if default is not dataclasses.MISSING and value == default:
            unset.add(f.name)
        nested = [unset_fields(c) for c in _held(value) if dataclasses.is_dataclass(c)]
        if nested:
            unset |= {f"{f.name}.{name}" for name in set.intersection(*nested)}
    return unset


def _held(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, tuple):
        return list(value)
    return [value]
