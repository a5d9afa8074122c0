"""The checkpoint fast path answers exactly as the Starlette route behind it: each request is
sent over real HTTP to the app ``create_app`` builds (fast path) and to the same app without
it, and status, body and headers must match; other requests pass through."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from wayline.api import checkpoints
from wayline.api.checkpoint_fastpath import CheckpointFastPath
from wayline.api.rest import ApiConfig, create_app
from wayline.engine.events import parse_request
from wayline.engine.model import App
from wayline.engine.service import PreparedCall, Service
from wayline.signing import hash_signing_key
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, FixedClock
from .serving import serving
from .test_checkpoint_api import FN, KEY, step

BEARER = f"Bearer {hash_signing_key(KEY)}"


@pytest.fixture
def both() -> Iterator[tuple[httpx.Client, httpx.Client, str, str]]:
    sqlite = SqliteStore(":memory:")
    service = Service(sqlite.store(), FixedClock(), CountingEntropy())
    service.sync_app(App(id="app", url=FN.url), [FN])
    service.send_events(parse_request(b'{"name": "go", "data": {}}'))
    (run,) = service.store.runs.list_runs(function_id=FN.id)
    (item,) = run.pending.values()
    assert isinstance(service.prepare_call(item), PreparedCall)
    fast = create_app(service, ApiConfig(signing_keys=(KEY,)))
    assert isinstance(fast, CheckpointFastPath)
    try:
        with (
            serving(fast) as fast_url,
            serving(fast._app) as slow_url,
            httpx.Client(base_url=fast_url, timeout=10) as f,
            httpx.Client(base_url=slow_url, timeout=10) as s,
        ):
            yield f, s, run.id, item.id
    finally:
        sqlite.close()


def _same(fast: httpx.Client, slow: httpx.Client, method: str, url: str, **args: Any) -> int:
    a = slow.request(method, url, **args)  # the slow one first: it decides what is saved
    b = fast.request(method, url, **args)
    assert (b.status_code, b.content) == (a.status_code, a.content)
    drop = {"date", "server"}
    assert {k: v for k, v in b.headers.items() if k not in drop} == {
        k: v for k, v in a.headers.items() if k not in drop
    }
    assert b.headers["x-inngest-server-kind"] == "dev"
    return b.status_code


def test_every_answer_matches_the_starlette_route(
    both: tuple[httpx.Client, httpx.Client, str, str],
) -> None:
    fast, slow, run_id, qi_id = both
    auth = {"authorization": BEARER}
    ok = {"qi_id": qi_id, "steps": [step("a", 1)]}
    for prefix in ("/v1/checkpoint", "/v1/http/runs"):
        url = f"{prefix}/{run_id}/async"
        assert _same(fast, slow, "POST", url, json=ok, headers=auth) == 200
        assert _same(fast, slow, "POST", url, json=ok) == 401
        assert _same(fast, slow, "POST", url, json=ok, headers={"authorization": "Bearer x"})
        assert _same(fast, slow, "POST", url, content=b"{nope", headers=auth) == 400
        assert _same(fast, slow, "POST", url, json={"steps": []}, headers=auth) == 400
        stale = {"qi_id": "gone", "steps": [step("b", 1)]}
        assert _same(fast, slow, "POST", url, json=stale, headers=auth) == 409
        other = {"qi_id": qi_id, "steps": [step("a", 2)]}
        assert _same(fast, slow, "POST", url, json=other, headers=auth) == 409
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(checkpoints, "MAX_BODY_BYTES", 10)
            assert _same(fast, slow, "POST", url, json=ok, headers=auth) == 413


def test_other_requests_pass_through(both: tuple[httpx.Client, httpx.Client, str, str]) -> None:
    fast, slow, run_id, _ = both
    assert _same(fast, slow, "GET", f"/v1/checkpoint/{run_id}/async") == 405
    assert _same(fast, slow, "POST", f"/v1/checkpoint/{run_id}/async/x", json={}) == 404
    assert _same(fast, slow, "GET", "/health") == 200
