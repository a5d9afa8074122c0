"""Issue 12: every endpoint of the HTTP API, fuzzed over real HTTP (hypothesis).

Random JSON-ish bodies (NaN, huge numbers, lone surrogates, deep nesting, near-valid
events and registrations), headers, path parameters and query strings go to every route
``Api.routes()`` lists (so a route added later is fuzzed too). Two properties:

* no response is a 5xx: a client's mistake is a 4xx;
* a rejected request (4xx) stores nothing: events, runs, apps and functions are the same
  before and after.

The default run stays well under a minute; ``WAYLINE_FUZZ_EXAMPLES=20000`` runs longer.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wayline.api.rest import Api, ApiConfig, create_app
from wayline.clock import OffsetClock
from wayline.engine.service import Service
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, free_port
from .test_register_api import payload

EXAMPLES = int(os.environ.get("WAYLINE_FUZZ_EXAMPLES", "600"))
TIMEOUT_S = max(120, EXAMPLES // 10)
"""pytest-timeout grows with a long run (about 30 requests a second on a loaded machine)."""

# ------------------------------------------------------------------ the server under test


@dataclass
class Target:
    client: httpx.Client
    service: Service
    routes: list[tuple[str, str]]
    ids: dict[str, list[str]]

    def snapshot(self) -> tuple[Any, ...]:
        store = self.service.store
        events = store.events.list_events(limit=100_000)  # events are only ever added
        return (
            len(events),
            events[:1],
            store.runs.list_runs(limit=100_000),
            store.apps.list_apps(),
            store.apps.list_functions(),
        )


SIGNING_KEY = "signkey-test-0123456789abcdef"
EVENT_KEY = "good-key"


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """No keys configured (the dev server's default): every route reaches its handler."""
    yield from _serve(secured=False)


@pytest.fixture(scope="module")
def secured() -> Iterator[Target]:
    """Keys configured: the guards themselves are fuzzed (and a valid key sometimes sent)."""
    yield from _serve(secured=True)


def _serve(*, secured: bool) -> Iterator[Target]:
    sqlite = SqliteStore(":memory:")
    clock = OffsetClock()
    service = Service(sqlite.store(), clock, CountingEntropy())
    config = ApiConfig(
        test_clock=clock,
        signing_keys=(SIGNING_KEY,) if secured else (),
        event_keys=(EVENT_KEY,) if secured else (),
    )
    routes = [
        (method, route.path)
        for route in Api(service, config).routes()
        for method in sorted(set(route.methods or ()) - {"HEAD"})
    ]
    app = create_app(service, config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "API server did not start"
        time.sleep(0.01)
    try:
        auth = {"authorization": f"Bearer {SIGNING_KEY}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            ids = _seed(client, service, auth)
            yield Target(client, service, routes, ids)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sqlite.close()


def _seed(client: httpx.Client, service: Service, auth: dict[str, str]) -> dict[str, list[str]]:
    """An app, a function and a run, so ids in paths sometimes name something real."""
    assert client.post("/fn/register", json=payload(), headers=auth).status_code == 200
    sent = client.post(f"/e/{EVENT_KEY}", json={"name": "user/signed-up", "data": {"plan": "pro"}})
    event_ids = list(sent.json()["ids"])
    runs = service.store.runs.list_runs(limit=10)
    return {
        "run_id": [r.id for r in runs],
        "event_id": event_ids,
        "app_id": ["shop"],
        "key": [EVENT_KEY],
    }


# ------------------------------------------------------------------ strategies

_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "\ud800", "inngest/x", "Inngest/x", "a\nb", "0" * 40]),
)
_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**63, 10**400, 1e308]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXT)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    [
        "name", "data", "user", "id", "ts", "v", "url", "appName", "appname", "functions",
        "triggers", "event", "expression", "cron", "function_id", "app_id", "started_before",
        "started_after", "if", "advance_ms", "steps", "retries", "concurrency", "cancel",
    ]
)  # fmt: skip


def _near_valid_registration(draw: st.DrawFn) -> Any:
    body = payload()
    fn = body["functions"][0]
    target = draw(st.sampled_from([body, fn, fn["triggers"][0], fn["steps"]["step"]]))
    for _ in range(draw(st.integers(1, 3))):
        target[draw(_KEYS)] = draw(_JSON)
    return body


def _near_valid_event(draw: st.DrawFn) -> Any:
    event: dict[str, Any] = {"name": "user/signed-up", "data": {"plan": "pro"}}
    for _ in range(draw(st.integers(1, 3))):
        event[draw(_KEYS)] = draw(_JSON)
    return draw(st.sampled_from([event, [event], [{"name": "ok"}, event]]))


def _near_valid_cancellation(draw: st.DrawFn) -> Any:
    body: dict[str, Any] = {
        "app_id": "shop",
        "function_id": "send-email",
        "started_before": "2030-01-01T00:00:00Z",
    }
    body[draw(_KEYS)] = draw(_JSON)
    return body


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "event", "register", "cancel", "deep", "bytes", "none"]))
    if kind == "none":
        return b""
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        depth = draw(st.sampled_from([99, 100, 101, 2000, 60_000]))
        return b'{"name": "a", "data": {"x": ' + b"[" * depth + b"]" * depth + b"}}"
    near_valid = {
        "event": _near_valid_event,
        "register": _near_valid_registration,
        "cancel": _near_valid_cancellation,
    }
    value = draw(_JSON) if kind == "json" else near_valid[kind](draw)
    # ensure_ascii keeps lone surrogates as \\ud800 escapes; allow_nan writes NaN/Infinity.
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "x-inngest-event-id-seed": st.one_of(
            st.text(alphabet="0123456789,=+/abcXYZ", max_size=30),
            st.just("1700000000000,AAECAwQFBgcICQ=="),
        ),
        "x-inngest-expected-server-kind": st.sampled_from(["dev", "cloud", "", "x"]),
        "content-type": st.sampled_from(["application/json", "text/plain", "", "x/y; a=b"]),
        "authorization": st.sampled_from(
            ["Bearer x", "Bearer", "garbage", f"Bearer {SIGNING_KEY}", "Bearer \u00e9"]
        ),
    },
)
_QUERY = st.dictionaries(
    st.sampled_from(["limit", "name", "cursor", "fnId", "stepId", "status", "deployId", "x"]),
    st.one_of(st.text(max_size=12), st.integers(-5, 10**6).map(str), st.just("1e999")),
    max_size=3,
)


def _path(draw: st.DrawFn, template: str, ids: dict[str, list[str]]) -> str:
    path = template
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        name = path[start + 1 : end]
        known = ids.get(name, [])
        value = draw(st.one_of(st.sampled_from(known), _TEXT) if known else _TEXT)
        path = (
            path[:start] + quote(value.encode("utf-8", "surrogatepass"), safe="") + path[end + 1 :]
        )
    return path


# ------------------------------------------------------------------ the property


_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@pytest.mark.timeout(TIMEOUT_S)
@settings(max_examples=EXAMPLES, **_SETTINGS)  # type: ignore[arg-type]
@given(data=st.data())
def test_no_endpoint_answers_5xx_or_stores_on_rejection(
    target: Target, data: st.DataObject
) -> None:
    exercise(target, data)


@pytest.mark.timeout(TIMEOUT_S)
@settings(max_examples=max(EXAMPLES // 4, 50), **_SETTINGS)  # type: ignore[arg-type]
@given(data=st.data())
def test_with_keys_configured_no_endpoint_answers_5xx_or_stores_on_rejection(
    secured: Target, data: st.DataObject
) -> None:
    exercise(secured, data)


def exercise(target: Target, data: st.DataObject) -> None:
    """One random request; the two properties of the module docstring."""
    method, template = data.draw(st.sampled_from(target.routes), label="route")
    path = data.draw(st.composite(lambda d: _path(d, template, target.ids))(), label="path")
    body = data.draw(bodies(), label="body") if method in ("POST", "PUT", "DELETE") else b""
    drawn = data.draw(_HEADERS, label="headers")
    headers = [(k.encode(), v.encode("latin-1")) for k, v in drawn.items()]
    params = data.draw(_QUERY, label="query")
    before = target.snapshot()
    resp = target.client.request(method, path, content=body, headers=headers, params=params)
    assert resp.status_code < 500, f"{method} {path} -> {resp.status_code}: {resp.text[:500]}"
    if 400 <= resp.status_code < 500:
        assert target.snapshot() == before, (
            f"{method} {path} stored data and answered {resp.status_code}"
        )
        if resp.headers.get("content-type", "").startswith("application/json"):
            assert _finite(resp.json())


def _finite(value: Any) -> bool:
    """The server never answers with values JSON cannot hold (a sign it stored one)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def test_every_route_is_fuzzed(target: Target) -> None:
    """The fuzz test enumerates the routes itself: a sanity check that it finds them all."""
    paths = {path for _, path in target.routes}
    assert {"/e/{key}", "/fn/register", "/v1/cancellations", "/v1/runs/{run_id}"} <= paths
