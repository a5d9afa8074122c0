"""The dev worker and the Lambda dispatcher run the same call cycle (``wayline.calls.cycle``)
and differ only in policy: one test per difference, each driver on its own stack (the dev
worker on SQLite with its aiohttp transport, the dispatcher on moto with its httpx one),
calling the same kind of app over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wayline import signing
from wayline.calls.cycle import AsyncTransport, Reply
from wayline.clock import OsEntropy
from wayline.devserver.invoker import CALL_TIMEOUT_S, AiohttpTransport
from wayline.devserver.worker import Worker
from wayline.engine.events import EventInput
from wayline.engine.model import App, FunctionDef, Run, RunStatus, Trigger
from wayline.engine.pause import PAUSED_RETRY_MS
from wayline.engine.service import Service
from wayline.store.sqlite import SqliteStore

from .conftest import Stack, VirtualClock
from .driver import SIGNING_KEY, Driver, make_runtime

DEAD = "http://127.0.0.1:9/api/inngest"  # nothing listens on port 9


class AppHandler(BaseHTTPRequestHandler):
    """An app that finishes every function at once, and records what it was sent."""

    seen: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        AppHandler.seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-inngest-sdk", "py:v0.5.0")
        self.end_headers()
        self.wfile.write(b'"done"')

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def app_url() -> Iterator[str]:
    AppHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), AppHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/inngest"
    server.shutdown()
    server.server_close()


def function(url: str) -> FunctionDef:
    return FunctionDef(
        id="app-fn", app_id="app", name="fn", url=url, triggers=(Trigger(event="e"),), retries=0
    )


@dataclass
class Timeouts:
    """Wraps a transport, keeping the timeout of each request."""

    real: Any
    seen: list[float] = field(default_factory=list)

    def send(self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float) -> Reply:
        self.seen.append(timeout_s)
        reply: Reply = self.real.send(url, headers, body, timeout_s)
        return reply

    def fetch(self, request: Any) -> Reply:
        reply: Reply = self.real.fetch(request)
        return reply


class AsyncTimeouts(Timeouts):
    async def send(  # type: ignore[override]
        self, url: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Reply:
        self.seen.append(timeout_s)
        reply: Reply = await self.real.send(url, headers, body, timeout_s)
        return reply

    async def fetch(self, request: Any) -> Reply:  # type: ignore[override]
        reply: Reply = await self.real.fetch(request)
        return reply


def dev_runs(
    url: str, *, events: int = 1, paused: bool = False, transport: AsyncTransport | None = None
) -> tuple[list[Run], SqliteStore, VirtualClock]:
    """Start ``events`` runs on a dev stack and let the dev worker take each first item."""
    sqlite, clock = SqliteStore(":memory:"), VirtualClock()
    store = sqlite.store()
    service = Service(store, clock, OsEntropy())
    service.sync_app(App(id="app", url=url), [function(url)])
    service.send_events([EventInput("e", {}, {}, None, None, None)] * events)
    if paused:  # after the start: a paused function's new runs are skipped
        service.pauses.set("app-fn", paused=True, now=clock.now_ms())
    items = store.queue.claim(now=clock.now_ms(), lease_ms=60_000, limit=10)
    real = AiohttpTransport()
    worker = Worker(service, transport or real, clock, signing_key=SIGNING_KEY)

    async def process() -> None:
        for item in items:
            await worker._process(item)
        await real.close()

    asyncio.run(process())
    return store.runs.list_runs(function_id="app-fn"), sqlite, clock


@pytest.fixture
def driver(stack: Stack, clock: VirtualClock) -> Driver:
    return Driver(stack, clock, lambda: make_runtime(stack, clock))


def lambda_runs(driver: Driver, url: str, *, events: int = 1, paused: bool = False) -> list[Run]:
    """Start ``events`` runs on the AWS stack and let the dispatch handler take them."""
    service = driver.runtimes["dispatch"].service
    service.sync_app(App(id="app", url=url), [function(url)])
    service.send_events([EventInput("e", {}, {}, None, None, None)] * events)
    if paused:
        service.pauses.set("app-fn", paused=True, now=driver.clock.now_ms())
    driver.poll("dispatch")
    return driver.runtime.store.runs.list_runs(function_id="app-fn")


def test_both_drivers_send_one_signed_request_with_their_kind_and_timeout(
    app_url: str, driver: Driver
) -> None:
    dev = AsyncTimeouts(AiohttpTransport())
    (dev_run,), _, _ = dev_runs(app_url, transport=dev)
    aws = Timeouts(driver.runtime.dispatcher.transport)
    driver.runtime.dispatcher.transport = aws
    (aws_run,) = lambda_runs(driver, app_url)
    for run in (dev_run, aws_run):
        assert run.status is RunStatus.COMPLETED and run.output == "done"
    (dev_headers, dev_body), (aws_headers, aws_body) = AppHandler.seen
    ours = {"x-inngest-signature", "x-inngest-req-version", "x-run-id", "traceparent"}
    assert ours <= dev_headers.keys() and ours <= aws_headers.keys()
    assert dev_headers["user-agent"] == aws_headers["user-agent"]
    for headers, body in ((dev_headers, dev_body), (aws_headers, aws_body)):
        signature = headers["x-inngest-signature"]
        assert signing.verify(signature, body, [SIGNING_KEY], now_s=int(signature[2:12])) == (
            SIGNING_KEY
        )
    assert (dev_headers["x-inngest-server-kind"], dev.seen) == ("dev", [CALL_TIMEOUT_S])
    call_timeout_s = driver.runtime.settings.call_timeout_s
    assert (aws_headers["x-inngest-server-kind"], aws.seen) == ("cloud", [call_timeout_s])


class Lines(logging.Handler):
    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> list[str]:
        self.logger.addHandler(self)
        return self.lines

    def __exit__(self, *_: object) -> None:
        self.logger.removeHandler(self)


def test_a_dead_app_is_said_once_by_the_dev_driver_and_per_call_by_the_lambda_driver(
    driver: Driver,
) -> None:
    with Lines("wayline.invoker") as dev_lines:
        dev, _, _ = dev_runs(DEAD, events=2)
    with Lines("wayline.aws.invoker") as aws_lines:
        aws = lambda_runs(driver, DEAD, events=2)
    assert dev_lines == [f"cannot reach app at {DEAD}: connection refused"]
    assert aws_lines == [f"SDK call failed: cannot reach {DEAD} (ConnectError)"] * 2
    # the run records the failure the same way, in each driver's words
    for runs, reason in ((dev, "connection refused"), (aws, "ConnectError")):
        for run in runs:
            (failure,) = run.call_failures
            assert failure.error["message"] == f"could not reach {DEAD}: {reason}"


def test_a_blocked_item_is_deferred_in_sqlite_by_the_dev_driver_and_resent_by_the_lambda_one(
    app_url: str, driver: Driver
) -> None:
    delays: list[int] = []
    driver.runtime.sqs.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: delays.extend(e["DelaySeconds"] for e in params["Entries"]),
    )
    (dev,), sqlite, clock = dev_runs(app_url, paused=True)
    # still in the dev queue (not acknowledged), due again once the pause is re-checked
    assert sqlite.queue.next_due() == pytest.approx(clock.now_ms() + PAUSED_RETRY_MS, abs=1_000)
    (aws,) = lambda_runs(driver, app_url, paused=True)
    assert delays[-1] == PAUSED_RETRY_MS // 1000  # re-sent to SQS with a delay
    assert dev.status is aws.status is RunStatus.QUEUED
    assert AppHandler.seen == []  # neither called the app
