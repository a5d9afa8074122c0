"""``step.fetch`` on AWS (moto): the dispatch function makes the ``Gateway`` request with
the same rules as ``wayline dev`` (``engine/gateway.py``) over its pinned client, memoizes
the answer, and the run continues from the memo: the target is hit once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import fastapi
import pytest

import wayline
import wayline.fastapi
from compat.harness import UvicornAppServer
from wayline import signing
from wayline.aws.eventbridge import EventBus
from wayline.engine.model import RunStatus

from .conftest import Stack, VirtualClock
from .driver import SIGNING_KEY, Driver, make_runtime


@pytest.fixture
def target() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.headers.get("authorization") or "")
            payload = b'{"rate": 1.1}'
            self.send_response(200)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_dispatch_makes_the_request_once_and_the_run_uses_the_memo(
    stack: Stack, clock: VirtualClock, target: tuple[str, list[str]]
) -> None:
    url, hits = target
    client = wayline.Wayline(
        app_id="fetch-aws", is_dev=False, signing_key=SIGNING_KEY, base_url="http://127.0.0.1:9"
    )

    @client.function(id="rates", trigger=wayline.TriggerEvent(event="t/rates"), retries=0)
    def rates(ctx: wayline.SyncContext) -> float:
        res = ctx.step.fetch("get", f"{url}/rates", headers={"authorization": "Bearer aws-t"})
        return float(res.json()["rate"])

    web = fastapi.FastAPI()
    wayline.fastapi.serve(web, client, [rates])
    app = UvicornAppServer(web)
    try:
        driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
        status, body = driver.api(
            "PUT",
            "/v1/apps/sync",
            {"url": f"http://127.0.0.1:{app.port}/api/inngest"},
            {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
        )
        assert status == 200, body
        bus = EventBus(bus_name=stack.bus, client=stack.events)
        (sent,) = bus.publish([{"name": "t/rates", "data": {}}])
        assert sent.ok
        driver.settle()
        (run,) = driver.runtime.store.runs.list_runs(function_id="fetch-aws-rates")
    finally:
        app.stop()
    assert run.status is RunStatus.COMPLETED and run.output == 1.1
    assert hits == ["Bearer aws-t"]
    (step,) = run.steps
    assert (step.name, step.op, step.attempts) == ("get", "Gateway", 1)
    assert isinstance(step.output, dict) and step.output["status_code"] == 200
