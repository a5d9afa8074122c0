"""``POST /v1/checkpoint/{runId}/async`` over real HTTP: auth, bad input, fencing, saving.

The end-to-end protocol with the real npm SDK is in tests/compat_node/test_node_checkpointing.py;
here each answer the route can give is checked on its own, with a run whose first call
is in flight (prepared, not answered).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from wayline.api import checkpoints
from wayline.api.rest import ApiConfig, create_app
from wayline.engine.events import parse_request
from wayline.engine.ids import hash_step_id
from wayline.engine.model import App, FunctionDef, Run, Trigger, WorkItem
from wayline.engine.service import PreparedCall, Service
from wayline.signing import hash_signing_key
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, FixedClock
from .serving import serving

KEY = "signkey-test-" + "ab12" * 16
FN = FunctionDef(
    id="app-fn",
    app_id="app",
    name="fn",
    url="http://127.0.0.1:1/api",
    triggers=(Trigger(event="go"),),
    retries=0,
)


@dataclass
class Setup:
    client: httpx.Client
    service: Service
    run_id: str
    item: WorkItem

    def run(self) -> Run:
        run = self.service.store.runs.get_run(self.run_id)
        assert run is not None
        return run

    def post(self, body: Any = None, *, path: str | None = None, **headers: str) -> httpx.Response:
        url = path or f"/v1/checkpoint/{self.run_id}/async"
        if body is None:
            body = {"qi_id": self.item.id, "steps": [step("a", 1)]}
        return self.client.post(url, json=body, headers=headers)


def step(name: str, data: Any) -> dict[str, Any]:
    return {"op": "StepRun", "id": hash_step_id(name), "name": name, "data": data}


def _setup(config: ApiConfig) -> Iterator[Setup]:
    sqlite = SqliteStore(":memory:")
    service = Service(sqlite.store(), FixedClock(), CountingEntropy())
    service.sync_app(App(id="app", url=FN.url), [FN])
    service.send_events(parse_request(b'{"name": "go", "data": {}}'))
    (run,) = service.store.runs.list_runs(function_id=FN.id)
    (item,) = run.pending.values()
    assert isinstance(service.prepare_call(item), PreparedCall)  # the call is now in flight
    try:
        with (
            serving(create_app(service, config)) as url,
            httpx.Client(base_url=url, timeout=10) as client,
        ):
            yield Setup(client, service, run.id, item)
    finally:
        sqlite.close()


@pytest.fixture
def dev() -> Iterator[Setup]:
    yield from _setup(ApiConfig())


@pytest.fixture
def keyed() -> Iterator[Setup]:
    yield from _setup(ApiConfig(signing_keys=(KEY,)))


def test_a_step_is_saved_and_answered_with_an_empty_object(dev: Setup) -> None:
    res = dev.post(authorization="Bearer")  # the JS SDK without a key ("Bearer ", trimmed)
    assert (res.status_code, res.json()) == (200, {})
    run = dev.run()
    assert run.memos == {hash_step_id("a"): {"data": 1}}
    assert run.pending == {dev.item.id: dev.item}  # nothing enqueued: the call owns the run


def test_the_old_beta_prefix_is_served_too(dev: Setup) -> None:
    res = dev.post(path=f"/v1/http/runs/{dev.run_id}/async")
    assert res.status_code == 200
    assert hash_step_id("a") in dev.run().memos


def test_signing_key_hash_is_required_when_keys_are_set(keyed: Setup) -> None:
    assert keyed.post().status_code == 401
    assert keyed.post(authorization="Bearer").status_code == 401
    assert keyed.post(authorization="Bearer signkey-test-nothex").status_code == 401
    assert keyed.run().memos == {}
    hashed = hash_signing_key(KEY)
    assert keyed.post(authorization=f"Bearer signkey-test-{hashed}").status_code == 200
    assert keyed.post(authorization=f"Bearer {hashed}").status_code == 200  # prefix-insensitive


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"not json", "body is not valid JSON"),
        (
            b'{"qi_id": "q", "steps": [{"op": "StepRun", "id": "x", "data": NaN}]}',
            "body.steps[0].data: non-finite",
        ),
        (b'{"steps": []}', "qi_id"),
        (b'{"qi_id": "q", "steps": [{"op": "StepRun"}]}', "steps[0].id"),
        (b'{"qi_id": "q", "steps": "nope"}', "steps must be a list"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(dev: Setup, raw: bytes, needle: str) -> None:
    res = dev.client.post(f"/v1/checkpoint/{dev.run_id}/async", content=raw)
    assert res.status_code == 400, res.text
    assert needle in res.json()["error"]
    assert dev.run().memos == {}


def test_an_op_that_ends_a_call_is_400(dev: Setup) -> None:
    body = {"qi_id": dev.item.id, "steps": [{"op": "StepError", "id": "x", "error": {}}]}
    res = dev.post(body)
    assert res.status_code == 400
    assert "steps[0].op: 'StepError' cannot be checkpointed" in res.json()["error"]


def test_unknown_run_and_stale_item_are_409(dev: Setup) -> None:
    body = {"qi_id": dev.item.id, "steps": [step("a", 1)]}
    assert dev.post(body, path="/v1/checkpoint/nope/async").status_code == 409
    stale = dev.post({"qi_id": f"{dev.run_id}:77", "steps": [step("a", 1)]})
    assert stale.status_code == 409
    assert "stale dispatch" in stale.json()["error"]
    assert dev.run().memos == {}


def test_cancelled_run_is_409(dev: Setup) -> None:
    dev.service.cancel(dev.run_id, reason="test")
    res = dev.post()
    assert res.status_code == 409
    assert "cancelled" in res.json()["error"]


def test_resend_is_200_and_a_different_result_409(dev: Setup) -> None:
    assert dev.post().status_code == 200
    saved = dev.run()
    assert dev.post().status_code == 200
    assert dev.run().version == saved.version  # nothing rewritten
    conflict = dev.post({"qi_id": dev.item.id, "steps": [step("a", 2)]})
    assert conflict.status_code == 409
    assert dev.run().memos == {hash_step_id("a"): {"data": 1}}


def test_a_body_over_the_limit_is_413_before_it_is_read(
    dev: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "MAX_BODY_BYTES", 100)
    res = dev.post({"qi_id": dev.item.id, "steps": [step("a", "y" * 200)]})
    assert res.status_code == 413
    assert "the limit is 100" in res.json()["error"]
    assert dev.run().memos == {}
