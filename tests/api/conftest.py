"""The dev server's HTTP API over real loopback HTTP: Starlette app served by uvicorn in a
thread, real SQLite (in memory), deterministic clock and ids."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from wayline.api.rest import ApiConfig, create_app
from wayline.engine.service import Service
from wayline.store.sqlite import SqliteStore

from .serving import serving


class FixedClock:
    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now


class CountingEntropy:
    """Deterministic ids: each call returns the next counter value as bytes."""

    def __init__(self) -> None:
        self._n = 0

    def entropy(self, n: int) -> bytes:
        self._n += 1
        return self._n.to_bytes(n, "big")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_client(config: ApiConfig | None = None) -> Iterator[httpx.Client]:
    sqlite = SqliteStore(":memory:")
    service = Service(sqlite.store(), FixedClock(), CountingEntropy())
    try:
        with (
            serving(create_app(service, config or ApiConfig())) as url,
            httpx.Client(base_url=url, timeout=10) as client,
        ):
            yield client
    finally:
        sqlite.close()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    yield from make_client()


@pytest.fixture
def secured() -> Iterator[httpx.Client]:
    yield from make_client(
        ApiConfig(signing_keys=("signkey-test-12345678",), event_keys=("good-key",))
    )
