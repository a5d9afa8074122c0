"""The event fast path answers exactly as the Starlette routes behind it: each request is sent
over real HTTP to the app ``create_app`` builds (fast paths on) and to the same service's
app without them, and status, body and headers must match; other requests pass through."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx
import pytest

from wayline.api.event_fastpath import EventFastPath
from wayline.api.rest import ApiConfig, create_app
from wayline.engine.events import MAX_REQUEST_BYTES, SEED_HEADER
from wayline.engine.model import App, FunctionDef, Trigger
from wayline.engine.service import Service
from wayline.signing import hash_signing_key
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, FixedClock
from .serving import serving

KEY = "signkey-test-12345678"
AUTH = {"authorization": f"Bearer {hash_signing_key(KEY)}"}
FN = FunctionDef(
    id="app-go",
    app_id="app",
    name="go",
    url="http://127.0.0.1:9/api/inngest",
    triggers=(Trigger(event="go"),),
    retries=0,
)
Pair = tuple[httpx.Client, httpx.Client]


def _pair(config: ApiConfig) -> Iterator[Pair]:
    sqlite = SqliteStore(":memory:")
    service = Service(sqlite.store(), FixedClock(), CountingEntropy(), batch=sqlite.batch)
    service.sync_app(App(id="app", url=FN.url), [FN])
    fast = create_app(service, config)
    assert isinstance(fast._app, EventFastPath)  # type: ignore[attr-defined]
    slow = create_app(service, config, fast_paths=False)
    try:
        with (
            serving(fast) as fast_url,
            serving(slow) as slow_url,
            httpx.Client(base_url=fast_url, timeout=10) as f,
            httpx.Client(base_url=slow_url, timeout=10) as s,
        ):
            yield f, s
    finally:
        sqlite.close()


@pytest.fixture
def both() -> Iterator[Pair]:
    yield from _pair(ApiConfig())


@pytest.fixture
def secured() -> Iterator[Pair]:
    yield from _pair(ApiConfig(signing_keys=(KEY,), event_keys=("good-key",)))


def _same(pair: Pair, method: str, url: str, **args: Any) -> httpx.Response:
    fast, slow = pair
    a = slow.request(method, url, **args)  # the slow one first: it decides what is stored
    b = fast.request(method, url, **args)
    assert (b.status_code, b.content) == (a.status_code, a.content)
    drop = {"date", "server"}
    assert {k: v for k, v in b.headers.items() if k not in drop} == {
        k: v for k, v in a.headers.items() if k not in drop
    }
    assert b.headers["x-inngest-server-kind"] == "dev"
    return b


class Chunked:
    """A body sent in chunks without a Content-Length, once to each server."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)


def _seed(n: int) -> dict[str, str]:
    """A seed header: both servers give the same ids, and the second stores nothing new."""
    return {SEED_HEADER: f"1800000000000,{base64.b64encode(bytes(9) + bytes([n])).decode()}"}


def test_ingest_answers_match_the_starlette_route(both: Pair) -> None:
    ok = _same(both, "POST", "/e/any", json={"name": "go", "data": {"x": 1}}, headers=_seed(1))
    assert ok.status_code == 200 and len(ok.json()["ids"]) == 1
    many = _same(both, "POST", "/e/any", json=[{"name": "go"}, {"name": "b"}], headers=_seed(2))
    assert len(many.json()["ids"]) == 2
    for bad in (b"{nope", b"[]", b'"x"', b'{"name": ""}', b'{"name": "inngest/x"}', b""):
        answer = _same(both, "POST", "/e/any", content=bad, headers=_seed(3))
        assert answer.status_code == 400 and answer.json()["ids"] == []
    bad_seed = _same(both, "POST", "/e/any", json={"name": "go"}, headers={SEED_HEADER: "x"})
    assert bad_seed.status_code == 400 and SEED_HEADER in bad_seed.json()["error"]
    huge = b'{"name": "go", "data": {"x": "' + b"y" * MAX_REQUEST_BYTES + b'"}}'
    assert _same(both, "POST", "/e/any", content=huge).status_code == 400  # declared length

    over = [b'{"name": "go", "data": {"x": "', *[b"y" * 65536] * (MAX_REQUEST_BYTES // 65536)]
    assert _same(both, "POST", "/e/any", content=Chunked(over)).status_code == 400
    fine = Chunked([b'{"name":', b' "go"}'])
    assert _same(both, "POST", "/e/any", content=fine, headers=_seed(6)).status_code == 200
    # Both stored the accepted events once (the ids are seeded), nothing for the refused.
    runs = both[1].get(f"/v1/events/{ok.json()['ids'][0]}/runs").json()["data"]
    assert len(runs) == 1


def test_event_key_and_auth_answers_match(secured: Pair) -> None:
    assert _same(secured, "POST", "/e/wrong", json={"name": "go"}).status_code == 401
    ok = _same(secured, "POST", "/e/good-key", json={"name": "go"}, headers=_seed(4))
    (event_id,) = ok.json()["ids"]
    assert _same(secured, "GET", f"/v1/events/{event_id}/runs").status_code == 401
    bad = {"authorization": "Bearer nope"}
    assert _same(secured, "GET", f"/v1/events/{event_id}/runs", headers=bad).status_code == 401
    runs = _same(secured, "GET", f"/v1/events/{event_id}/runs", headers=AUTH).json()["data"]
    assert [r["status"] for r in runs] == ["Queued"]


def test_runs_of_event_answers_match(both: Pair) -> None:
    (event_id,) = _same(both, "POST", "/e/k", json={"name": "go"}, headers=_seed(5)).json()["ids"]
    found = _same(both, "GET", f"/v1/events/{event_id}/runs").json()
    assert [r["event_id"] for r in found["data"]] == [event_id]
    assert _same(both, "GET", "/v1/events/nothing/runs").json()["data"] == []


def test_other_requests_pass_through(both: Pair) -> None:
    assert _same(both, "GET", "/e/any").status_code == 405
    assert _same(both, "POST", "/e/", json={"name": "go"}).status_code == 404
    assert _same(both, "POST", "/e/a/b", json={"name": "go"}).status_code == 404
    assert _same(both, "POST", "/v1/events/x/runs").status_code == 405
    assert _same(both, "GET", "/v1/events/x/runs/y").status_code == 404
    head = _same(both, "HEAD", "/v1/events/x/runs")
    assert head.status_code == 200 and head.content == b""
    assert json.loads(_same(both, "GET", "/health").content) == {"status": "ok"}


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast-path", "starlette-route"])
def test_a_client_gone_mid_body_stores_nothing_and_raises_nothing(fast_paths: bool) -> None:
    """Half a body, then the client disconnects: a 400 that reaches no one, not an error
    in the server's log (it was 'Exception in ASGI application' + ClientDisconnect)."""
    sqlite = SqliteStore(":memory:")
    service = Service(sqlite.store(), FixedClock(), CountingEntropy(), batch=sqlite.batch)
    app = create_app(service, ApiConfig(), fast_paths=fast_paths)
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'[{"name": "go", ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        await app(scope, receive, send)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/e/key",
        "raw_path": b"/e/key",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"x"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    try:
        asyncio.run(call())  # raises nothing
        assert sent[0]["status"] == 400
        assert json.loads(sent[1]["body"])["error"] == "the body ended before it was complete"
        assert service.store.events.list_events(limit=10) == []
    finally:
        sqlite.close()
