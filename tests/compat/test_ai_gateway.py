"""``step.ai.infer`` (the ``AIGateway`` opcode) with the official SDK (issue 12, item 8).

The server, not the app, calls the provider with the request the SDK built, and
memoizes the provider's response as the step's result. The provider here is a small
fake on loopback that records what it received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import inngest
import pytest
from inngest.experimental.ai import anthropic

from .harness import COMPLETED, FAILED, Compat, Recorder, Tally, step_named

REPLY = {"id": "msg_1", "content": [{"type": "text", "text": "hello from the fake model"}]}


class FakeProvider:
    """An Anthropic-shaped ``/v1/messages`` endpoint: answers ``status`` with ``REPLY``."""

    def __init__(self) -> None:
        self.requests = Recorder()
        self.status = 200
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                provider.requests.append((self.path, headers, json.loads(body)))
                payload = json.dumps(REPLY if provider.status == 200 else {"error": "nope"})
                self.send_response(provider.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    yield fake
    fake.close()


def infer_function(client: inngest.Inngest, provider: FakeProvider, calls: Tally) -> Any:
    adapter = anthropic.Adapter(
        auth_key="sk-test-key",
        base_url=provider.url,
        model="claude-test",
        headers={"anthropic-version": "2023-06-01", "x-custom": "yes"},
    )

    @client.create_function(
        fn_id="ask-model", retries=0, trigger=inngest.TriggerEvent(event="compat/ask")
    )
    def fn(ctx: inngest.ContextSync) -> Any:
        calls.incr("fn")
        answer = ctx.step.ai.infer(
            "ask",
            adapter=adapter,
            body={"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        )
        return {"answer": answer}

    return fn


def test_the_server_calls_the_provider_and_memoizes_its_answer(
    compat: Compat, provider: FakeProvider
) -> None:
    client, calls = compat.client(), Tally()
    compat.serve("fastapi", client, [infer_function(client, provider, calls)])
    run = compat.wait_run(compat.send("compat/ask"), status=COMPLETED, timeout=30)

    assert run["output"] == {"answer": REPLY}, (run, provider.requests.items, calls.count("fn"))
    ((path, headers, body),) = provider.requests.items  # called once, by the server
    assert path == "/v1/messages"
    assert headers["x-api-key"] == "sk-test-key"
    assert headers["x-custom"] == "yes"
    assert headers["content-type"] == "application/json"
    assert body == {
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
        "model": "claude-test",
    }
    step = step_named(run, "ask")
    assert step["op"] == "AIGateway"
    assert step["output"] == REPLY
    assert "sk-test-key" not in json.dumps(run)  # the auth key is in no record
    assert calls.count("fn") == 2  # reported the op, then finished with the memo


def test_a_provider_error_fails_the_step_with_the_providers_answer(
    compat: Compat, provider: FakeProvider
) -> None:
    client, calls = compat.client(), Tally()
    provider.status = 500
    compat.serve("fastapi", client, [infer_function(client, provider, calls)])
    run = compat.wait_run(compat.send("compat/ask"), status=FAILED, timeout=30)
    step = step_named(run, "ask")
    assert step["op"] == "AIGateway"
    assert step["status"] == "Failed"
    assert "500" in json.dumps(step["error"])
