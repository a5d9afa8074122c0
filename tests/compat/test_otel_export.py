"""Runs out as OpenTelemetry traces: ``wayline dev`` with ``OTEL_EXPORTER_OTLP_ENDPOINT``
pointed at a collector on loopback (a tiny HTTP server taking ``POST /v1/traces``), whose
protobuf bodies are decoded with ``opentelemetry-proto``. The span tree must be the run's
waterfall: one trace per run, a span per step with run id, function id, step id, attempt
and status."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from browser.demo_app import APP_ID, functions

from .harness import COMPLETED, FAILED, Compat, wait_until

pytestmark = pytest.mark.compat


class Collector:
    """Receives OTLP/HTTP protobuf exports; keeps every span with its attributes."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector._lock:
                    collector.paths.append(self.path)
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            collector.spans.extend(scope.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def of_run(self, run_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if attrs(s).get("wayline.run_id") == run_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def attrs(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = value.int_value if value.HasField("int_value") else value.string_value
    return out


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    found = Collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", found.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "wayline-test")
    yield found
    found.close()


def test_each_finished_run_is_one_trace_shaped_like_its_waterfall(
    compat: Compat, collector: Collector
) -> None:
    client = compat.client(APP_ID)
    compat.serve("fastapi", client, functions(client))
    failed = compat.wait_run(compat.send("demo/charge"), status=FAILED)
    done = compat.wait_run(compat.send("demo/greet", {"user_id": "u1"}), status=COMPLETED)

    def exported(run_id: str, spans: int) -> bool:
        return len(collector.of_run(run_id)) == spans

    # Each run: itself and its 2 steps. (The SDK's last call, which re-raised the failed
    # step's error, is the step's failure, not a span of its own.)
    wait_until(lambda: exported(failed["run_id"], 3) and exported(done["run_id"], 3))
    assert set(collector.paths) == {"/v1/traces"}

    spans = collector.of_run(failed["run_id"])
    [root] = [s for s in spans if not s.parent_span_id]
    assert root.name == f"{APP_ID}-charge"
    assert root.status.code == Status.STATUS_CODE_ERROR
    assert attrs(root)["wayline.function_id"] == f"{APP_ID}-charge"
    children = {
        attrs(s)["wayline.step_name"]: s
        for s in spans
        if s.parent_span_id and attrs(s)["wayline.span_kind"] == "run"
    }
    assert set(children) == {"load-order", "charge-card"}
    assert [s for s in spans if attrs(s)["wayline.span_kind"] == "call"] == []
    for child in children.values():
        assert child.trace_id == root.trace_id  # one trace per run
        assert child.parent_span_id == root.span_id
        assert root.start_time_unix_nano <= child.start_time_unix_nano
        assert child.end_time_unix_nano <= root.end_time_unix_nano
    charge = children["charge-card"]
    assert attrs(charge)["wayline.status"] == "Failed"
    assert attrs(charge)["wayline.attempt"] == 1
    assert attrs(charge)["wayline.step_id"]
    assert charge.status.code == Status.STATUS_CODE_ERROR
    [exception] = [e for e in charge.events if e.name == "exception"]
    event_attrs = {kv.key: kv.value.string_value for kv in exception.attributes}
    assert event_attrs["exception.type"] == "CardDeclinedError"
    assert "card declined" in event_attrs["exception.message"]
    assert "Traceback" in event_attrs["exception.stacktrace"]
    assert attrs(children["load-order"])["wayline.status"] == "Completed"
    assert children["load-order"].status.code == Status.STATUS_CODE_OK

    flaky = compat.wait_run(compat.send("demo/flaky"), status=COMPLETED, timeout=30)
    wait_until(lambda: len(collector.of_run(flaky["run_id"])) == 5)  # run, step, 3 attempts
    flaky_spans = collector.of_run(flaky["run_id"])
    [step] = [
        s for s in flaky_spans if attrs(s).get("wayline.span_kind") == "run" and s.parent_span_id
    ]
    tries = sorted(
        (s for s in flaky_spans if s.parent_span_id == step.span_id),
        key=lambda s: attrs(s)["wayline.attempt"],
    )
    assert [attrs(s)["wayline.attempt"] for s in tries] == [1, 2, 3]
    assert [attrs(s)["wayline.status"] for s in tries] == ["Failed", "Failed", "Completed"]
    assert [s.status.code for s in tries] == [
        Status.STATUS_CODE_ERROR,
        Status.STATUS_CODE_ERROR,
        Status.STATUS_CODE_OK,
    ]
    assert all(attrs(s)["wayline.step_id"] == attrs(step)["wayline.step_id"] for s in tries)
    assert "retry at" not in tries[0].name and attrs(tries[0])["wayline.retry_at"]
    assert "upstream returned 503" in tries[0].status.message
    for earlier, later in itertools.pairwise(tries):
        assert earlier.end_time_unix_nano <= later.start_time_unix_nano

    ok_spans = collector.of_run(done["run_id"])
    assert len({s.trace_id for s in ok_spans}) == 1
    assert ok_spans[0].trace_id != root.trace_id
    [ok_root] = [s for s in ok_spans if not s.parent_span_id]
    assert ok_root.status.code == Status.STATUS_CODE_OK
