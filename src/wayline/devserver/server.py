"""Composition root of ``wayline dev``: store, clock, service, worker, API, discovery.

The only module of the dev server that wires concrete adapters together; everything it
builds is injected into the pieces above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from .. import realtime_tokens
from ..api.dashboard import LOOPBACK_HOSTS, DashboardConfig
from ..api.realtime import MemoryBus, RealtimeApi
from ..api.rest import ApiConfig, create_app
from ..clock import OffsetClock, OsEntropy, SystemClock
from ..engine.service import Service
from ..otel import traces_from_env
from ..store.sqlite import SqliteStore
from .claim import DatabaseLock, bind_port
from .discovery import discover_forever
from .http_runtime import HttpParser, runtime_from_env, uvicorn_http
from .invoker import AiohttpTransport
from .worker import Worker

log = logging.getLogger("wayline.dev")


@dataclass(frozen=True, slots=True)
class DevConfig:
    host: str = "127.0.0.1"
    port: int = 8288
    urls: tuple[str, ...] = ()
    db: str = ".wayline/dev.sqlite3"
    retry_interval_s: float | None = None
    signing_key: str | None = None
    signing_key_fallback: str | None = None
    event_keys: tuple[str, ...] = ()
    test_api: bool = False
    app: str | None = None
    app_port: int = 3000
    extra_env: dict[str, str] = field(default_factory=dict)
    http: HttpParser = field(default_factory=lambda: runtime_from_env({}).http)
    """uvicorn's HTTP parser for the API and ``--app`` (the CLI passes WAYLINE_HTTP's choice)."""


def _open_store(db: str) -> SqliteStore:
    if db != ":memory:":
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(db)


async def serve(config: DevConfig) -> None:
    """Run until stopped. Raises ``StartupError`` if the port or the database is taken:
    both are claimed before the store is opened, so a second server changes nothing."""
    sock = bind_port(config.host, config.port)
    try:
        lock = DatabaseLock(config.db) if config.db != ":memory:" else None
    except BaseException:
        sock.close()
        raise
    try:
        await _serve(config, sock)
    finally:
        sock.close()
        if lock is not None:
            lock.release()


async def _serve(config: DevConfig, sock: socket.socket) -> None:
    clock = OffsetClock(SystemClock()) if config.test_api else SystemClock()
    sqlite = _open_store(config.db)
    store = sqlite.store()
    keys = tuple(k for k in (config.signing_key, config.signing_key_fallback) if k)
    worker_ref: list[Worker] = []
    traces = traces_from_env(os.environ)
    service = Service(
        store,
        clock,
        OsEntropy(),
        retry_interval_ms=int(config.retry_interval_s * 1000) if config.retry_interval_s else None,
        on_enqueue=lambda: worker_ref[0].wake() if worker_ref else None,
        on_run_ended=traces.run_ended if traces else None,
        # WAYLINE_CHECKPOINTING=0: every step takes its own call again (the kill switch).
        checkpointing=os.environ.get("WAYLINE_CHECKPOINTING", "1") != "0",
        batch=sqlite.batch,
    )
    invoker = AiohttpTransport()
    worker = Worker(service, invoker, clock, signing_key=config.signing_key)
    worker_ref.append(worker)
    urls = list(config.urls)
    if config.app:
        urls.append(f"http://127.0.0.1:{config.app_port}/api/inngest")

    @contextlib.asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        sqlite.release_leases()
        repaired = service.repair(store.runs.list_live_runs())
        if repaired:
            log.info("resumed %d live runs from %s", repaired, config.db)
        tasks = [asyncio.create_task(worker.run())]
        if urls:
            tasks.append(
                asyncio.create_task(
                    discover_forever(urls, signing_key=config.signing_key, clock=clock)
                )
            )
        try:
            yield
        finally:
            await worker.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await invoker.close()
            sqlite.close()
            if traces:
                traces.shutdown()  # flushes the spans still batched

    realtime = RealtimeApi(
        MemoryBus(service.now), realtime_tokens.secret_for(config.signing_key), service.now
    )
    api = create_app(
        service,
        ApiConfig(
            signing_keys=keys,
            event_keys=config.event_keys,
            test_clock=clock if isinstance(clock, OffsetClock) else None,
        ),
        lifespan=lifespan,
        on_clock_advanced=worker.wake,
        realtime=realtime,
        dashboard=DashboardConfig(
            store_label=f"dev · sqlite · {config.db}",
            app_urls=tuple(urls),
            allowed_hosts=_dashboard_hosts(config.host, secured=bool(keys)),
        ),
    )
    server = uvicorn.Server(
        uvicorn.Config(
            api,
            host=config.host,
            port=config.port,
            http=uvicorn_http(config.http),
            log_level="warning",
            access_log=False,
        )
    )
    realtime.stopping = lambda: server.should_exit  # open SSE streams end on Ctrl-C
    app_server = _user_app_server(config) if config.app else None
    app_task = asyncio.create_task(app_server.serve()) if app_server else None
    log.info("wayline dev listening on http://%s:%d (db: %s)", config.host, config.port, config.db)
    try:
        # The port was claimed before the store was opened (a second server stops there);
        # uvicorn binds it itself: serving the pre-bound socket measured 2.5x fewer runs/s
        # (bench/dev_sequential.py: 15 vs 39 runs/s). Another process taking the port in
        # this instant is not a risk to the data: the database lock is what protects it.
        sock.close()
        await server.serve()
    finally:
        if app_server and app_task:
            app_server.should_exit = True
            await asyncio.gather(app_task, return_exceptions=True)


def _dashboard_hosts(host: str, *, secured: bool) -> frozenset[str] | None:
    """Host names the dashboard answers to. It acts without the signing key, so with a key
    set it stays on loopback names even when the API is bound to every interface; without
    one the API is open anyway and the dashboard may follow it."""
    if host in ("0.0.0.0", "::"):
        return LOOPBACK_HOSTS if secured else None
    return LOOPBACK_HOSTS | {host}


def _user_app_server(config: DevConfig) -> uvicorn.Server:
    """Serve ``module:attr`` in this process, pointed at this dev server."""
    base = f"http://127.0.0.1:{config.port}"
    os.environ.setdefault("INNGEST_DEV", "1")
    os.environ.setdefault("INNGEST_BASE_URL", base)
    module_name, _, attr = (config.app or "").partition(":")
    cwd = str(Path.cwd())
    if cwd not in sys.path:  # like uvicorn --app-dir: modules relative to cwd
        sys.path.insert(0, cwd)
    module = importlib.import_module(module_name)
    app = getattr(module, attr or "app")
    uv_config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=config.app_port,
        http=uvicorn_http(config.http),
        log_level="warning",
    )
    server = uvicorn.Server(uv_config)
    return server
