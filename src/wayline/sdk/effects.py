"""Sans-I/O flows and their two drivers, so no logic is written twice for sync and async.

A flow is a generator that yields the effects it needs (an HTTP request, a pause, a function
call) and receives their results. ``drive`` performs them with blocking I/O, ``drive_async``
with asyncio; the request handling, retry and auth-fallback logic lives in the flows, once.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import httpx

from .call import PreparedCall
from .execution import CallResult, run_blocking

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class HttpFailure:
    """The request never got a response (connection refused, timeout, TLS ...)."""

    message: str


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class CallFunction:
    call: PreparedCall


Effect: TypeAlias = HttpRequest | Pause | CallFunction
Flow: TypeAlias = Generator[Effect, object, T]


def http(request: HttpRequest) -> Generator[Effect, object, HttpResponse | HttpFailure]:
    result = yield request
    if not isinstance(result, HttpResponse | HttpFailure):
        raise TypeError(f"an HTTP effect got {result!r}")
    return result


def pause(seconds: float) -> Generator[Effect, object, None]:
    yield Pause(seconds)


def call_function(call: PreparedCall) -> Generator[Effect, object, CallResult]:
    result = yield CallFunction(call)
    if not isinstance(result, CallResult):
        raise TypeError(f"a function call effect got {result!r}")
    return result


class Transport:
    """The SDK's outbound HTTP (httpx): one pooled sync client, async clients per call.

    An ``httpx.AsyncClient`` is bound to the event loop it first ran on, and an SDK serves
    from many loops (each sync handler running an async function starts one), so async
    requests use a short-lived client; the TLS context, the expensive part, is shared.
    """

    def __init__(
        self,
        *,
        sync_transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._sync_transport = sync_transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()  # handlers run on many threads; build the client once
        self._lean: tuple[Any, Any] | None = None
        """The lean checkpoint client's (async, sync) pools; unused with injected transports."""
        self._proxies: dict[str, str] | None = None
        """The environment's proxies, read once as the pooled httpx client reads them (the
        per-request read was ~6 % of an app's CPU on the peer bench)."""
        self._usable_for: Callable[[str, Mapping[str, str] | None], bool] = _never
        """``lean_http.usable_for`` once the lean pools exist (imported late: it imports
        this module; an import per request was ~1 % of an app's CPU)."""

    def _tls_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            return self._tls

    def _sync_client(self) -> httpx.Client:
        tls = self._tls_context()
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(transport=self._sync_transport, verify=tls)
            return self._client

    def send(self, request: HttpRequest) -> HttpResponse | HttpFailure:
        client = self._sync_client()
        try:
            res = client.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                content=request.body,
                timeout=request.timeout_s,
            )
        except httpx.HTTPError as exc:
            return HttpFailure(f"{type(exc).__name__}: {exc}")
        return HttpResponse(res.status_code, dict(res.headers), res.content)

    def async_client(self) -> httpx.AsyncClient:
        """A client for the running loop (the caller closes it): several requests of one
        call, e.g. its checkpoints, then share a keep-alive connection."""
        return httpx.AsyncClient(transport=self._async_transport, verify=self._tls_context())

    async def send_async(
        self, request: HttpRequest, client: httpx.AsyncClient | None = None
    ) -> HttpResponse | HttpFailure:
        try:
            if client is not None:
                res = await _request_async(client, request)
            else:
                async with self.async_client() as own:
                    res = await _request_async(own, request)
        except httpx.HTTPError as exc:
            return HttpFailure(f"{type(exc).__name__}: {exc}")
        return HttpResponse(res.status_code, dict(res.headers), res.content)

    def _lean_for(self, url: str) -> tuple[Any, Any] | None:
        """The lean checkpoint client's (async, sync) pools when they may send to ``url``."""
        if self._sync_transport is not None or self._async_transport is not None:
            return None  # a test or an embedder routes requests elsewhere: keep httpx
        if self._lean is None:
            import urllib.request

            from . import lean_http  # imports this module's types

            with self._lock:
                if self._lean is None:
                    tls = self._tls_context
                    self._proxies = urllib.request.getproxies_environment()
                    self._usable_for = lean_http.usable_for
                    self._lean = (lean_http.AsyncPool(tls), lean_http.SyncPool(tls))
        return self._lean if self._usable_for(url, self._proxies) else None

    def send_checkpoint(self, request: HttpRequest) -> HttpResponse | HttpFailure:
        """Send a checkpoint POST on a per-thread keep-alive socket (``lean_http``), or
        through httpx when a proxy is configured or requests are routed elsewhere."""
        pools = self._lean_for(request.url)
        if pools is None:
            return self.send(request)
        result: HttpResponse | HttpFailure = pools[1].send(request)
        return result

    async def send_checkpoint_async(self, request: HttpRequest) -> HttpResponse | HttpFailure:
        """``send_checkpoint`` on the running loop, on that loop's keep-alive connections."""
        pools = self._lean_for(request.url)
        if pools is None:
            return await self.send_async(request)
        result: HttpResponse | HttpFailure = await pools[0].send(request)
        return result

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _never(url: str, proxies: Mapping[str, str] | None) -> bool:
    return False


async def _request_async(client: httpx.AsyncClient, request: HttpRequest) -> httpx.Response:
    return await client.request(
        request.method,
        request.url,
        headers=dict(request.headers),
        content=request.body,
        timeout=request.timeout_s,
    )


def drive(
    flow: Flow[T],
    transport: Transport,
    *,
    send: Callable[[HttpRequest], HttpResponse | HttpFailure] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run a flow with blocking I/O (async functions get their own event loop).
    ``send`` and ``sleep`` replace ``transport.send`` and ``time.sleep`` (checkpoints use
    the lean client and an injectable clock)."""
    send = send or transport.send
    result: object = None
    while True:
        try:
            effect = flow.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value
        if isinstance(effect, HttpRequest):
            result = send(effect)
        elif isinstance(effect, Pause):
            sleep(effect.seconds)
            result = None
        else:
            call = effect.call
            result = run_blocking(call.run_async()) if call.is_async else call.run_sync()


async def drive_async(
    flow: Flow[T],
    transport: Transport,
    *,
    send: Callable[[HttpRequest], Awaitable[HttpResponse | HttpFailure]] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run a flow on the running loop (sync functions run in a worker thread). ``send``
    and ``sleep`` as for ``drive``."""
    send = send or transport.send_async
    result: object = None
    while True:
        try:
            effect = flow.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value
        if isinstance(effect, HttpRequest):
            result = await send(effect)
        elif isinstance(effect, Pause):
            await sleep(effect.seconds)
            result = None
        else:
            call = effect.call
            # A blocking function must not stall the server's loop (inngest-py#225).
            result = (
                await call.run_async() if call.is_async else await asyncio.to_thread(call.run_sync)
            )
