"""Issue 12, defect 3: a call whose request cannot be built fails the run, saying why,
instead of leaving it Running forever; a response carrying such values fails the call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wayline.engine.events import EventInput
from wayline.engine.model import RunStatus, WorkKind
from wayline.engine.protocol import parse_response

from .test_windows import Harness, make


@pytest.fixture
def harness() -> Iterator[Harness]:
    yield from make({})


def test_a_call_that_canonical_json_refuses_fails_the_run(harness: Harness) -> None:
    # Only a value that slipped past validation (stored before it existed) can get here.
    bad = EventInput(name="e", data={"x": float("nan")}, user={}, id=None, ts=None, v=None)
    harness.service.send_events([bad])
    (item,) = [
        i
        for i in harness.store.queue.claim(now=harness.clock.now, lease_ms=1_000, limit=10)
        if i.kind is WorkKind.CALL
    ]
    assert harness.service.prepare_call(item) is None
    (run,) = harness.store.runs.list_runs(function_id="app-fn", limit=10)
    assert run.status is RunStatus.FAILED
    assert not run.pending
    assert isinstance(run.output, dict)
    assert "could not be built: ValueError" in str(run.output["message"])
    assert harness.service.prepare_call(item) is None  # redelivery: still nothing to call


@pytest.mark.parametrize(
    "body",
    [
        b'[{"op": "StepRun", "id": "a", "data": NaN}]',
        b'[{"op": "StepRun", "id": "a", "data": 1e999}]',
        b'[{"op": "StepRun", "id": "a", "data": "\\udc00"}]',
        b'{"status": 206, "headers": {}, "body": [{"op": "StepRun", "id": "a", "data": -Infinity}]}',  # noqa: E501
    ],
)
def test_a_response_with_values_json_cannot_hold_fails_the_call(body: bytes) -> None:
    status = 201 if body.startswith(b'{"status"') else 206
    resp = parse_response(status, {"x-inngest-sdk": "py:v0.5.19"}, body)
    assert resp.is_sdk is False and resp.no_retry is True
    assert resp.transport_error is not None
    assert "cannot store: response body[0].data" in resp.transport_error


def test_a_deeply_nested_response_is_a_failed_call_not_a_crash() -> None:
    resp = parse_response(200, {"x-inngest-sdk": "py"}, b"[" * 100_000 + b"]" * 100_000)
    assert resp.is_sdk is False and resp.no_retry is True
    assert "nested too deeply" in str(resp.transport_error)
