"""Realtime: functions publish messages to a channel's topics, browsers subscribe over SSE.

The shape is Inngest Realtime's: ``publish({channel, topic, data})`` from a function (the
SDK's ``ctx.publish``; on the wire ``POST /v1/realtime/publish?channel=&topic=[&run_id=]``
with the data as the JSON body and the signing key as bearer, as inngest-js sends it),
subscription tokens scoped to one channel and some of its topics
(``POST /v1/realtime/token``, signing-key authenticated, see ``wayline.realtime_tokens``;
``{"channel", "topics"}`` or the official SDKs' ``[{"channel", "name", "kind"}]``, which is
answered as they expect, ``{"jwt": ...}``),
and a subscription over Server-Sent Events instead of Inngest's WebSocket:
``GET /v1/realtime/subscribe?channel=<c>&token=<t>[&topic=<t>...][&after=<id>]``. Each
message is one SSE event, ``id`` its sequence number (a reconnecting ``EventSource`` sends
it back as ``Last-Event-ID`` and misses nothing still kept) and ``data`` the JSON
``{"id", "channel", "topic", "data", "run_id", "created_at"}``.

Delivery is at most once per subscription and best effort, as on Inngest: messages live in
the server's memory (``MemoryBus``), the last ``KEEP_PER_CHANNEL`` of a channel for
``KEEP_MS``, so a page that subscribes a moment after a run started still sees its first
messages, and a restart of the server forgets them. On AWS the api function keeps them in
DynamoDB for the same time (``DynamoRealtimeLog``) and answers each subscribe with what is
there, ending the stream so that the browser polls (``max_stream_s=0``).

The subscribe URL carries the token (``EventSource`` cannot set headers): the servers log no
query strings, and the token is never echoed in an error.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .. import realtime_tokens as tokens
from ..engine import json_input
from ..errors import ValidationError
from ..realtime_log import KEEP_MS, KEEP_PER_CHANNEL, MAX_MESSAGE_BYTES, Message, MessageLog

KEEPALIVE_S = 15.0
MAX_STREAM_S = 300.0
"""A stream ends after this long and the browser reconnects (``Last-Event-ID``)."""
POLL_S = 0.5
"""How often an idle stream looks at whether the client left or the server is stopping."""

Handler = Callable[[Request], Any]


class MemoryBus:
    """Recent messages per channel and a wake-up for waiting subscribers (one event loop)."""

    def __init__(self, now: Callable[[], int]) -> None:
        self._now = now
        self._seq = 0
        self._channels: dict[str, deque[Message]] = {}
        self._changed = asyncio.Event()

    def publish(self, channel: str, topic: str, data: Any, run_id: str | None) -> Message:
        self._seq += 1
        message = Message(self._seq, channel, topic, data, run_id, self._now())
        self._channels.setdefault(channel, deque(maxlen=KEEP_PER_CHANNEL)).append(message)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return message

    def after(self, channel: str, topics: frozenset[str], cursor: int) -> list[Message]:
        oldest = self._now() - KEEP_MS
        kept = self._channels.get(channel, ())
        return [m for m in kept if m.id > cursor and m.topic in topics and m.created_at >= oldest]

    async def wait(self, timeout_s: float) -> None:
        """Until the next publish, or ``timeout_s``."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout_s)
        except TimeoutError:
            return


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    body = {"error": message} if field is None else {"error": message, "field": field}
    return JSONResponse(body, status_code=status)


class RealtimeApi:
    """The three routes over a message log.

    ``secrets``: the first signs new tokens, any verifies one (a signing-key rotation keeps
    the fallback key's tokens valid). ``max_stream_s`` 0 answers each subscribe with what
    is there and ends the stream, for a server that cannot hold one open (a buffered
    Lambda Function URL): ``EventSource`` reconnects after ``retry_ms`` with
    ``Last-Event-ID``, which makes it a poll.
    """

    def __init__(
        self,
        bus: MessageLog,
        secrets: bytes | Sequence[bytes],
        now: Callable[[], int],
        *,
        max_stream_s: float = MAX_STREAM_S,
        retry_ms: int = 1000,
    ) -> None:
        self._bus = bus
        self._secrets = (secrets,) if isinstance(secrets, bytes) else tuple(secrets)
        self._now = now
        self._max_stream_s = max_stream_s
        self._retry_ms = retry_ms
        self.stopping: Callable[[], bool] = lambda: False
        """Set by the server: open streams end when it stops (uvicorn waits for them)."""

    def routes(self, guard: Callable[[Handler], Handler]) -> list[Route]:
        return [
            Route("/v1/realtime/publish", guard(self.publish), methods=["POST"]),
            Route("/v1/realtime/token", guard(self.token), methods=["POST"]),
            Route("/v1/realtime/subscribe", self.subscribe, methods=["GET"]),
        ]

    async def publish(self, request: Request) -> Response:
        q = request.query_params
        raw = await request.body()
        try:
            channel = tokens.check_name(q.get("channel"), "channel")
            topic = tokens.check_name(q.get("topic"), "topic")
            if len(raw) > MAX_MESSAGE_BYTES:
                raise ValidationError(
                    f"the message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES} bytes",
                    field="data",
                )
            data = json_input.parse(raw, field="data") if raw.strip() else None
        except ValidationError as exc:
            return _error(400, str(exc), exc.field)
        run_id = q.get("run_id") or None
        message = self._bus.publish(channel, topic, data, run_id)
        return JSONResponse({"data": {"id": message.id}})

    async def token(self, request: Request) -> Response:
        try:
            body = json_input.parse(await request.body() or b"null", field="body")
            if isinstance(body, list):  # the official SDKs' shape
                channel, topics = _official_grant(body)
                ttl_ms = tokens.DEFAULT_TTL_MS
            elif isinstance(body, dict):
                channel = tokens.check_name(body.get("channel"), "channel")
                topics = tokens.check_topics(body.get("topics"))
                ttl_ms = _ttl_ms(body.get("ttl_seconds"))
            else:
                raise ValidationError("the body must be a JSON object", field="body")
        except ValidationError as exc:
            return _error(400, str(exc), exc.field)
        grant = tokens.Grant(channel, topics, self._now() + ttl_ms)
        key = tokens.mint(self._secrets[0], grant)
        if isinstance(body, list):
            return JSONResponse({"jwt": key})
        out: dict[str, Any] = {"key": key, "channel": channel, "topics": list(topics)}
        out["expires_at"] = grant.expires_at
        return JSONResponse({"data": out}, status_code=201)

    async def subscribe(self, request: Request) -> Response:
        q = request.query_params
        token = q.get("token") or _bearer(request)
        try:
            channel = tokens.check_name(q.get("channel"), "channel")
            asked = [tokens.check_name(t, "topic") for t in q.getlist("topic")]
            cursor = _cursor(q.get("after") or request.headers.get("last-event-id"))
        except ValidationError as exc:
            return _error(400, str(exc), exc.field)
        if not token:
            return _error(401, "a subscription token is required (token=...)", "token")
        try:
            grant = self._verify(token)
        except tokens.TokenError as exc:
            return _error(401, f"invalid subscription token: {exc}", "token")
        if grant.channel != channel:
            return _error(403, f"the token does not grant channel {channel!r}", "channel")
        outside = sorted(set(asked) - set(grant.topics))
        if outside:
            return _error(403, f"the token does not grant topics {outside}", "topic")
        topics = frozenset(asked or grant.topics)
        headers = {
            "cache-control": "no-store",
            "x-accel-buffering": "no",
            "access-control-allow-origin": "*",  # a bearer token, no cookies: any page
        }
        stream = self._stream(request, channel, topics, cursor, grant.expires_at)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    def _verify(self, token: str) -> tokens.Grant:
        error = tokens.TokenError("the token is malformed")
        for secret in self._secrets:
            try:
                return tokens.verify(secret, token, now_ms=self._now())
            except tokens.TokenError as exc:
                error = exc
            except (ValueError, KeyError, TypeError):
                error = tokens.TokenError("the token is malformed")
        raise error

    async def _stream(
        self, request: Request, channel: str, topics: frozenset[str], cursor: int, until: int
    ) -> AsyncIterator[bytes]:
        yield f"retry: {self._retry_ms}\n\n".encode()
        loop = asyncio.get_running_loop()
        ends = loop.time() + self._max_stream_s
        quiet_since = loop.time()
        while True:
            for message in self._bus.after(channel, topics, cursor):
                cursor = message.id
                quiet_since = loop.time()
                payload = json.dumps(message.to_json(), separators=(",", ":"))
                yield f"id: {message.id}\nevent: message\ndata: {payload}\n\n".encode()
            if loop.time() >= ends or self._now() >= until or self.stopping():
                return
            if await request.is_disconnected():
                return
            await self._bus.wait(POLL_S)
            if loop.time() - quiet_since >= KEEPALIVE_S:
                quiet_since = loop.time()
                yield b": keep-alive\n\n"


def _official_grant(body: list[Any]) -> tuple[str, tuple[str, ...]]:
    """``[{"channel", "name": topic, "kind": "run"}, ...]`` (inngest-py's
    ``get_subscription_token``, answered with ``{"jwt": ...}``): one channel per token."""
    if not body or not all(isinstance(t, dict) for t in body):
        raise ValidationError(
            "the body must list topics as {channel, name, kind} objects", field="body"
        )
    channels = {tokens.check_name(t.get("channel"), "channel") for t in body}
    if len(channels) != 1:
        raise ValidationError("a token grants topics of one channel only", field="channel")
    topics = tokens.check_topics([t.get("name") for t in body], "name")
    return channels.pop(), topics


def _ttl_ms(value: object) -> int:
    if value is None:
        return tokens.DEFAULT_TTL_MS
    limit = tokens.MAX_TTL_MS // 1000
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValidationError(
            f"ttl_seconds must be an integer from 1 to {limit}, got {value!r}", field="ttl_seconds"
        )
    return value * 1000


def _cursor(value: str | None) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit() or len(value) > 18:
        raise ValidationError(
            f"after must be a message id (digits), got {value[:40]!r}", field="after"
        )
    return int(value)


def _bearer(request: Request) -> str | None:
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None
