"""Run an app's functions in-process on the real engine: what ``wayline dev`` would do.

``wayline.testing.run`` replays one function with its own simple rules. ``TestEngine`` instead
drives the real ``engine.Service`` on an in-memory SQLite store, calls the app's serve
endpoint in-process (the same ``CommHandler`` a framework adapter uses, no HTTP; the steps
the SDK checkpoints go straight to ``Service.checkpoint``) and moves a
virtual clock to the next due item whenever nothing is due now. So retries with their
backoff (declared or the default table), sleeps, waits, ``invoke``, cancellation, flow
control, ``on_failure`` handlers and finish events behave exactly as on ``wayline dev``, in
milliseconds of wall time. No environment variable is needed: the engine calls the app as a
dev server would, whatever mode the client is in.

Example::

    engine = TestEngine(client, [send_welcome, notify_ops])
    [event_id] = engine.send(wayline.Event(name="user/signed-up", data={"email": "a@b.c"}))
    engine.run_until_idle()
    run = engine.run_for(event_id, send_welcome)
    assert run.status == "Completed"
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from . import signing
from .clock import OsEntropy
from .engine import checkpoint, gateway, json_input
from .engine.events import parse_request
from .engine.model import Run, RunStatus, WorkKind
from .engine.protocol import Op, parse_response
from .engine.registration import parse_register
from .engine.service import Blocked, Service
from .errors import ValidationError
from .sdk import registration, serialize
from .sdk.client import Wayline
from .sdk.comm import CommHandler, CommRequest
from .sdk.effects import Transport
from .sdk.events import Event, to_wire
from .sdk.fetch import FetchResponse
from .sdk.function import Function
from .store.sqlite import SqliteStore

APP_URL = "http://wayline.testing/api/inngest"
API_ORIGIN = "http://wayline.testing"
"""Where the app's API calls (checkpoints) go: answered in-process by the engine."""
_CHECKPOINT_PATH = re.compile(r"/v1/checkpoint/([^/]+)/async")
LEASE_MS = 60_000
DEFAULT_HORIZON_MS = 400 * 24 * 3_600_000
"""How far ``run_until_idle`` moves the clock at most: past the longest sleep (366 days)."""
MAX_CALLS = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class FetchCall:
    """A ``step.fetch`` request as the server would send it."""

    method: str
    url: str
    headers: dict[str, str]
    body: str | None


FetchHandler = Callable[[FetchCall], FetchResponse]


class VirtualClock:
    """The engine's clock: moves only when told."""

    def __init__(self, start_ms: int) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms


class TestEngine:
    """The real engine on in-memory SQLite with a virtual clock, calling ``functions``
    in-process (see the module doc)."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        client: Wayline,
        functions: Sequence[Function[Any, Any]],
        *,
        now: datetime | None = None,
        fetch: FetchHandler | None = None,
    ) -> None:
        """``fetch`` answers ``step.fetch`` requests in place of the network: it gets a
        ``wayline.testing_engine.FetchCall`` and returns a ``wayline.FetchResponse``; the
        engine's rules (5xx retries, the size limit) apply to its answers. Without one, a
        ``step.fetch`` fails its step (``InvalidGateway``)."""
        self._fetch = fetch
        start = now or datetime.now(UTC).replace(microsecond=0)
        self.clock = VirtualClock(int(start.timestamp() * 1000))
        self._sqlite = SqliteStore(":memory:")
        self.service = Service(self._sqlite.store(), self.clock, OsEntropy())
        # The engine calls the app as a dev server does: no signatures to check.
        dev_client = dataclasses.replace(client.config, is_dev=True, api_origin=API_ORIGIN)
        self._client = _with_config(client, dev_client)
        api = httpx.MockTransport(self._api)
        self._client.transport = Transport(sync_transport=api, async_transport=api)
        # Events a step sends go into this engine, not to a server; so do realtime messages.
        self._client.hooks = dataclasses.replace(
            client.hooks,
            send=self._send_wire,
            send_async=self._send_wire_async,
            publish=self._publish,
            publish_async=self._publish_async,
        )
        self.published: list[tuple[str, str, Any]] = []
        """Realtime messages ``ctx.publish`` sent, as ``(channel, topic, data)``."""
        self._comm = CommHandler(self._client, functions, framework="wayline-testing")
        self.calls = 0
        """SDK calls made so far (each is one request to the app)."""
        body = registration.sync_body(
            self._client.config, list(functions), app_url=APP_URL, framework="wayline-testing"
        )
        app, defs = parse_register(
            serialize.to_json(body, what="the sync body"), now=self.clock.ms, allow_private=True
        )
        self.service.sync_app(app, defs)

    # ------------------------------------------------------------------ events

    def send(self, events: Event[Any] | Sequence[Event[Any]]) -> list[str]:
        """Send events as the app's ``client.send`` would (its event types and middleware
        apply); returns their internal ids."""
        batch = self._client.events.check([events] if isinstance(events, Event) else list(events))
        return self._send_wire([to_wire(e, now_ms=self.clock.ms) for e in batch])

    def _send_wire(self, wire: list[dict[str, Any]]) -> list[str]:
        outgoing = self._client._outgoing(wire)
        return self.service.send_events(parse_request(serialize.dumps(outgoing)))

    async def _send_wire_async(self, wire: list[dict[str, Any]]) -> list[str]:
        return self._send_wire(wire)

    def _publish(self, channel: str, topic: str, data: Any, run_id: str) -> None:
        self.published.append((channel, topic, data))

    async def _publish_async(self, channel: str, topic: str, data: Any, run_id: str) -> None:
        self._publish(channel, topic, data, run_id)

    def _api(self, request: httpx.Request) -> httpx.Response:
        """The server API the SDK calls during a call: checkpoints, as ``wayline dev``'s."""
        found = _CHECKPOINT_PATH.fullmatch(request.url.path)
        if request.method != "POST" or found is None:
            return httpx.Response(404, json={"error": f"no route {request.url.path}"})
        try:
            body = json_input.parse(request.content, field="body")
            parsed = checkpoint.parse(body, run_id=urllib.parse.unquote(found.group(1)))
        except ValidationError as exc:
            return httpx.Response(400, json={"error": str(exc)})
        verdict = self.service.checkpoint(parsed)
        if not verdict.accepted:
            return httpx.Response(verdict.status, json={"error": verdict.message})
        return httpx.Response(200, json={})

    # ------------------------------------------------------------------ time

    def run_until_idle(self, *, horizon_ms: int = DEFAULT_HORIZON_MS) -> None:
        """Process every due item; when none is due, move the clock to the next one, until
        nothing is left or the next item is more than ``horizon_ms`` after the start."""
        limit = self.clock.ms + horizon_ms
        while True:
            if self._process_due():
                continue
            next_due = self.service.store.queue.next_due()
            if next_due is None or next_due > limit:
                return
            self.clock.ms = max(self.clock.ms, next_due)

    def advance(self, ms: int) -> None:
        """Move the clock ``ms`` forward, processing what falls due on the way."""
        target = self.clock.ms + ms
        while True:
            if self._process_due():
                continue
            next_due = self.service.store.queue.next_due()
            if next_due is None or next_due > target:
                break
            self.clock.ms = max(self.clock.ms, next_due)
        self.clock.ms = target
        while self._process_due():
            pass

    def _process_due(self) -> bool:
        queue = self.service.store.queue
        items = queue.claim(now=self.clock.ms, lease_ms=LEASE_MS, limit=64)
        for item in items:
            if item.kind is WorkKind.CALL:
                if not self._call(item):
                    continue
            else:
                self.service.fire(item)
            queue.ack(item.id)
        return bool(items)

    def _call(self, item: Any) -> bool:
        prepared = self.service.prepare_call(item)
        if isinstance(prepared, Blocked):
            self.service.store.queue.defer(
                item.id, until=self.clock.ms + (prepared.retry_ms or 100)
            )
            return False
        if prepared is None:
            return True
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise RuntimeError(f"more than {MAX_CALLS} SDK calls: a function never finishes")
        body = prepared.payload or signing.canonical_json(prepared.body)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(prepared.url).query))
        started = self.clock.ms
        try:
            response = self._comm.handle_sync(CommRequest("POST", prepared.url, {}, query, body))
        finally:
            self.service.release_call(prepared, item)
        parsed = parse_response(response.status, response.headers, response.body)
        if parsed.ops and any(gateway.needs_call(op) for op in parsed.ops):
            parsed = dataclasses.replace(parsed, ops=tuple(self._gateway(op) for op in parsed.ops))
        self.service.complete_call(item, parsed, started_at=started)
        return True

    def _gateway(self, op: Op) -> Op:
        if not gateway.needs_call(op):
            return op
        try:
            request = gateway.outbound(op, allow_private=True)
            if self._fetch is None or op.op != gateway.OPCODE:
                raise ValidationError(f"TestEngine was given no fetch= handler for {op.op}")
        except ValidationError as exc:
            return gateway.refused(op, exc)
        body = None if request.body is None else request.body.decode("utf-8")
        answer = self._fetch(FetchCall(request.method, request.url, request.headers, body))
        return gateway.answered(
            op, request, status=answer.status, headers=answer.headers, body=answer.body.encode()
        )

    # ------------------------------------------------------------------ results

    def runs_for(self, event_id: str) -> list[Run]:
        """The runs an event started, oldest first."""
        return list(reversed(self.service.store.runs.list_runs(event_id=event_id)))

    def run_for(self, event_id: str, function: Function[Any, Any]) -> Run:
        """The run of ``function`` that ``event_id`` started (exactly one)."""
        runs = [r for r in self.runs_for(event_id) if r.function_id == function.id]
        if len(runs) != 1:
            raise LookupError(f"event {event_id} started {len(runs)} runs of {function.id}")
        return runs[0]

    def runs_of(self, function_id: str) -> list[Run]:
        """Every run of a function (by composite id, e.g. an ``on_failure`` handler's)."""
        return list(reversed(self.service.store.runs.list_runs(function_id=function_id)))

    def close(self) -> None:
        self._sqlite.close()


def _with_config(client: Wayline, config: Any) -> Wayline:
    """A copy of ``client`` with another config (its functions, middleware, events stay)."""
    copy = object.__new__(Wayline)
    copy.__dict__.update(client.__dict__)
    copy.config = config
    return copy


__all__ = ["FetchCall", "RunStatus", "TestEngine", "VirtualClock"]
