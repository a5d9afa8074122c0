"""The realtime routes over real HTTP: auth, and no client mistake answered with a 5xx
(hypothesis over query strings, bodies and tokens; the SSE stream ends with the server's
``stopping`` flag, so a subscribe that succeeds is read and closed)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wayline import realtime_tokens, signing
from wayline.api.realtime import MemoryBus, RealtimeApi
from wayline.api.rest import ApiConfig, create_app
from wayline.engine.service import Service
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, FixedClock
from .serving import serving

KEY = "signkey-test-12345678"
BEARER = {"authorization": f"Bearer {signing.hash_signing_key(KEY)}"}
VALID = realtime_tokens.mint(
    realtime_tokens.secret_for(KEY), realtime_tokens.Grant("c", ("t",), expires_at=2**62)
)


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    sqlite = SqliteStore(":memory:")
    clock = FixedClock()
    service = Service(sqlite.store(), clock, CountingEntropy())
    realtime = RealtimeApi(MemoryBus(clock.now_ms), realtime_tokens.secret_for(KEY), clock.now_ms)
    realtime.stopping = lambda: True  # a subscribe answers what is there and ends
    app = create_app(service, ApiConfig(signing_keys=(KEY,)), realtime=realtime)
    try:
        with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            yield client
    finally:
        sqlite.close()


def test_publishing_and_minting_need_the_signing_key_subscribing_needs_a_token(
    api: httpx.Client,
) -> None:
    path = "/v1/realtime/publish?channel=c&topic=t"
    assert api.post(path, json={"n": 1}).status_code == 401
    assert api.post(path, json={"n": 1}, headers=BEARER).status_code == 200
    assert api.post("/v1/realtime/token", json={"channel": "c", "topics": ["t"]}).status_code == 401
    minted = api.post(
        "/v1/realtime/token", json={"channel": "c", "topics": ["t"]}, headers=BEARER
    ).json()["data"]
    stream = api.get("/v1/realtime/subscribe", params={"channel": "c", "token": minted["key"]})
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert '"data":{"n":1}' in stream.text
    official = api.post(
        "/v1/realtime/token", json=[{"channel": "c", "name": "t", "kind": "run"}], headers=BEARER
    )
    assert official.status_code == 200 and official.json()["jwt"].count(".") == 1


_TEXT = st.text(max_size=40)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_realtime_request_is_answered_with_a_5xx(api: httpx.Client, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(["publish", "token", "subscribe"]))
    params = data.draw(
        st.dictionaries(st.sampled_from(["channel", "topic", "token", "after"]), _TEXT)
    )
    if route == "subscribe":
        response = api.get("/v1/realtime/subscribe", params=params)
    else:
        body = json.dumps(data.draw(_JSON)).encode()
        response = api.post(f"/v1/realtime/{route}", params=params, content=body, headers=BEARER)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert "error" in response.json()
