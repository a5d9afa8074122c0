"""``engine.gateway``: the ``Gateway`` op (``step.fetch``) as a request and its outcome, and
the call cycle's gateway step over the AWS dispatcher's transport (the dev server's is
covered by ``tests/functional/test_fetch.py``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from wayline.aws.invoker import MAX_CALL_TIMEOUT_S, HttpxTransport
from wayline.calls.cycle import Unreachable, call_response, drive_sync, gateway_op
from wayline.engine import gateway
from wayline.engine.protocol import Op
from wayline.errors import ValidationError


def fetch_op(**opts: Any) -> Op:
    return Op(op="Gateway", id="h1", name="call", opts={"url": "https://api.example.com/x", **opts})


def test_an_official_fetch_op_becomes_a_request_with_its_method_headers_and_body() -> None:
    request = gateway.outbound(
        fetch_op(method="post", headers={"Authorization": "Bearer s3cret"}, body="{}"),
        allow_private=False,
    )
    assert (request.method, request.body) == ("POST", b"{}")
    assert request.headers == {"authorization": "Bearer s3cret"}
    assert not request.retry_5xx
    assert "s3cret" not in repr(request)


@pytest.mark.parametrize(
    ("opts", "field"),
    [
        ({"url": "http://169.254.169.254/latest"}, "step.fetch url"),
        ({"url": "http://127.0.0.1:8080/"}, "step.fetch url"),
        ({"url": ""}, "url"),
        ({"method": "TRACE"}, "method"),
        ({"headers": {"a": 1}}, "headers"),
        ({"body": {"not": "text"}}, "body"),
        ({"timeout_ms": -1}, "timeout"),
    ],
)
def test_a_bad_or_refused_request_names_its_field(opts: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        gateway.outbound(fetch_op(**opts), allow_private=False)
    assert caught.value.field == field
    refused = gateway.refused(fetch_op(**opts), caught.value)
    assert isinstance(refused.error, dict) and refused.error["name"] == gateway.REFUSED


def test_any_answer_is_the_result_unless_5xx_retries_were_asked_for() -> None:
    plain = gateway.outbound(fetch_op(), allow_private=False)
    answered = gateway.answered(fetch_op(), plain, status=503, headers={"X-A": "1"}, body=b"no")
    assert answered.has_data and answered.data == {
        "url": "https://api.example.com/x",
        "status_code": 503,
        "headers": {"x-a": "1"},
        "body": "no",
    }
    strict = gateway.outbound(fetch_op(retry_5xx=True), allow_private=False)
    retried = gateway.answered(fetch_op(), strict, status=503, headers={}, body=b"no")
    assert not retried.has_data and isinstance(retried.error, dict)
    assert retried.error["name"] == gateway.TRANSPORT_ERROR


def test_an_answer_over_the_limit_is_refused() -> None:
    request = gateway.outbound(fetch_op(), allow_private=False)
    big = b"x" * (gateway.MAX_RESPONSE_BYTES + 1)
    op = gateway.answered(fetch_op(), request, status=200, headers={}, body=big)
    assert isinstance(op.error, dict) and op.error["name"] == gateway.REFUSED
    assert str(gateway.MAX_RESPONSE_BYTES) in op.error["message"]


@pytest.fixture
def target() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = self.headers.get("authorization", "").encode()
            self.send_response(200)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # a model provider: answers who asked, as JSON
            self.rfile.read(int(self.headers.get("content-length") or 0))
            payload = json.dumps({"auth": self.headers.get("authorization")}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield str(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_the_aws_dispatcher_makes_the_request_over_its_pinned_client(target: str) -> None:
    transport = HttpxTransport(timeout_s=5, allow_private=True)
    op = fetch_op(url=f"http://127.0.0.1:{target}/x", headers={"authorization": "Bearer t"})
    try:
        done = drive_sync(gateway_op(op, True, "run-1"), transport, renew_every_s=1)
    finally:
        transport.close()
    assert isinstance(done.data, dict) and done.data["body"] == "Bearer t"


def test_the_aws_dispatcher_refuses_a_name_that_resolves_to_a_private_address(
    target: str,
) -> None:
    transport = HttpxTransport(
        timeout_s=5, allow_private=False, resolve=lambda host, port: ["127.0.0.1"]
    )
    op = fetch_op(url=f"http://rebind.example:{target}/x")
    try:
        done = drive_sync(gateway_op(op, False, "run-1"), transport, renew_every_s=1)
    finally:
        transport.close()
    assert isinstance(done.error, dict) and done.error["name"] == gateway.REFUSED
    assert "private" in done.error["message"]


def test_the_aws_dispatcher_makes_an_ai_gateway_call_too(target: str) -> None:
    """``step.ai.infer`` is the same gateway step on both drivers (it was dev-only)."""
    op = Op(
        op="AIGateway",
        id="h2",
        name="infer",
        opts={
            "url": f"http://127.0.0.1:{target}/v1/chat/completions",
            "format": "openai-chat",
            "auth_key": "sk-t",
            "body": {"model": "m"},
        },
    )
    transport = HttpxTransport(timeout_s=5, allow_private=True)
    try:
        done = drive_sync(gateway_op(op, True, "run-1"), transport, renew_every_s=1)
    finally:
        transport.close()
    assert done.has_data and done.data == {"auth": "Bearer sk-t"}


def test_a_call_that_outlasts_the_call_timeout_names_the_limit() -> None:
    """A step longer than ``CallTimeoutSeconds`` fails with an error naming that limit,
    not a bare ``ReadTimeout``."""

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            threading.Event().wait(2)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    transport = HttpxTransport(timeout_s=0.2, allow_private=True)
    try:
        with pytest.raises(Unreachable) as caught:
            transport.send(f"http://127.0.0.1:{server.server_address[1]}/", {}, b"{}", 0.2)
    finally:
        transport.close()
        server.shutdown()
        server.server_close()
    message = str(call_response("http://127.0.0.1/api", caught.value).transport_error)
    assert "call timeout of 0.2 s" in message and "CallTimeoutSeconds" in message
    assert f"at most {MAX_CALL_TIMEOUT_S} s" in message
