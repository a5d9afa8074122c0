"""The api function's HTTP API: the dev server's routes, with the AWS differences.

Reused as is from ``wayline.api.rest.Api``: request validation, auth guards, error
messages, ``POST /fn/register`` and the REST API (``/v0``, ``/v1``). Different on AWS:

* ``POST /e/{key}`` validates the events exactly as the dev server does, then publishes
  them to the EventBridge bus (ingest stores and routes them) and answers with their ids,
  fixed in advance through per-event seeds, so a client retry carrying the same
  ``x-inngest-event-id-seed`` publishes the same ids and starts nothing twice;
* ``PUT /v1/apps/sync`` (signing key) syncs the app at ``{"url": ...}``: a signed
  in-band sync PUT (production-mode SDKs answer with their functions, signed), or, for
  SDKs that sync out of band, their ``POST /fn/register`` call back to this API;
* the server kind is ``cloud``: SDKs in production mode may sync (``dev`` ones still can);
* no ``/dev`` (it lists apps without auth) and no ``/test/clock``;
* realtime subscriptions answer what is stored (DynamoDB, ``DynamoRealtimeLog``) and end:
  the browser's ``EventSource`` polls every ``REALTIME_POLL_MS``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wayline import realtime_tokens, signing
from wayline.api.event_body import read_events
from wayline.api.realtime import RealtimeApi
from wayline.api.rest import Api, ApiConfig, error, json_body
from wayline.engine import events as events_mod
from wayline.engine import json_input, wire
from wayline.engine.ids import seeded_event_id
from wayline.engine.ports import Clock, IdSource
from wayline.engine.protocol import redact_url
from wayline.engine.registration import parse_register
from wayline.engine.service import Service
from wayline.engine.urls import check_app_url
from wayline.engine.webhook_registry import WebhookRegistry, declared_webhooks
from wayline.errors import AuthError, ValidationError
from wayline.realtime_log import MessageLog

from .eventbridge import EventBus, event_seeds
from .invoker import SERVER_KIND, server_headers
from .pinning import pinned_client

__all__ = ["AwsApi", "create_api"]

log = logging.getLogger("wayline.api")

DROPPED_ROUTES = frozenset({"/dev", "/test/clock"})
SYNC_TIMEOUT_S = 30.0
REALTIME_POLL_MS = 2_000
"""How often a subscribed page polls on AWS (one Lambda call and one Query each)."""


class CloudServerKind:
    """Responses say ``x-inngest-server-kind: cloud``; a register call that expects a cloud
    server is accepted (the dev routes below it only know ``dev``)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope["headers"] = [
                (k, v)
                for k, v in scope["headers"]
                if not (k == wire.EXPECTED_SERVER_KIND.encode() and v == SERVER_KIND.encode())
            ]

        async def send_kind(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k != wire.SERVER_KIND.encode()
                ]
                headers.append((wire.SERVER_KIND.encode(), SERVER_KIND.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_kind)


class AwsApi(Api):
    def __init__(
        self,
        service: Service,
        config: ApiConfig,
        *,
        bus: EventBus,
        clock: Clock,
        entropy: IdSource,
        http: Callable[[], httpx.Client] | None = None,
        realtime: MessageLog | None = None,
    ) -> None:
        super().__init__(service, config)
        self._realtime = None
        if realtime is not None:
            secrets = [realtime_tokens.secret_for(k) for k in config.signing_keys]
            # A buffered Function URL cannot hold a stream open: each subscribe answers
            # what is there and the browser polls (EventSource reconnects).
            self._realtime = RealtimeApi(
                realtime, secrets, clock.now_ms, max_stream_s=0, retry_ms=REALTIME_POLL_MS
            )
        self._bus = bus
        self._clock = clock
        self._entropy = entropy
        self._http = http or (
            lambda: pinned_client(allow_private=config.allow_private_apps, timeout=SYNC_TIMEOUT_S)
        )

    async def send_events(self, request: Request) -> Response:
        key = str(request.path_params["key"]).encode()
        # Constant time, and every key compared: the timing reveals nothing about them.
        known = [hmac.compare_digest(key, k.encode()) for k in self._config.event_keys]
        if not any(known):
            return JSONResponse(
                {"ids": [], "status": 401, "error": "event key not found"}, status_code=401
            )
        try:
            seed = events_mod.check_seed(request.headers.get(events_mod.SEED_HEADER))
            inputs = await read_events(request)
        except ValidationError as exc:
            return JSONResponse({"ids": [], "status": 400, "error": str(exc)}, status_code=400)
        seeds = event_seeds(
            seed,
            len(inputs),
            now_ms=self._clock.now_ms(),
            entropy=self._entropy.entropy(10),
        )
        events = [{k: v for k, v in _wire(i).items() if v is not None} for i in inputs]
        results = self._bus.publish(events, seeds=seeds)
        ids = [str(seeded_event_id(seed, 1)) for seed in seeds]
        accepted = next((i for i, r in enumerate(results) if not r.ok), len(results))
        if accepted < len(results):
            codes = sorted({str(r.error_code) for r in results if not r.ok})
            log.error("PutEvents failed for some events: %s", ", ".join(codes))
            return JSONResponse(
                {"ids": ids[:accepted], "status": 502, "error": f"event bus refused: {codes}"},
                status_code=502,
            )
        return JSONResponse({"ids": ids, "status": 200})

    async def sync(self, request: Request) -> Response:
        """``PUT /v1/apps/sync`` ``{"url": ...}``: ask the app at ``url`` to sync."""
        try:
            body = await json_body(request, empty={})
            raw = body.get("url") if isinstance(body, dict) else None
            url = check_app_url(
                raw if isinstance(raw, str) else "",
                field="url",
                allow_private=self._config.allow_private_apps,
            )
        except (ValueError, ValidationError) as exc:
            return error(400, f'body must be {{"url": <app serve URL>}}: {exc}')
        payload = signing.canonical_json({"url": url})
        headers = server_headers(
            signing_key=self._config.signing_keys[0], body=payload, clock=self._clock
        )
        # No server kind: a dev-mode SDK would refuse "cloud"; in-band needs the signature.
        del headers[wire.SERVER_KIND]
        headers[wire.SYNC_KIND] = "in_band"
        try:
            with self._http() as client:
                reply = client.put(url, content=payload, headers=headers)
        except ValidationError as exc:
            return error(400, str(exc))  # the name resolves to an address we never call
        except httpx.HTTPError as exc:
            return error(502, f"could not reach {redact_url(url)}: {type(exc).__name__}")
        if reply.headers.get(wire.SYNC_KIND) != "in_band":
            # Out of band: the SDK has called POST /fn/register; relay its answer.
            return Response(
                reply.content, status_code=reply.status_code, media_type="application/json"
            )
        return self._sync_in_band(url, reply)

    def _sync_in_band(self, url: str, reply: httpx.Response) -> Response:
        if reply.status_code != 200:
            return error(
                502, f"app at {redact_url(url)} refused the sync: HTTP {reply.status_code}"
            )
        try:
            signing.verify(
                reply.headers.get(signing.SIGNATURE_HEADER),
                reply.content,
                self._config.signing_keys,
                now_s=self._clock.now_ms() // 1000,
            )
        except AuthError as exc:
            return error(502, f"app at {redact_url(url)} sent an unsigned sync reply: {exc}")
        try:
            config: Any = json_input.parse(reply.content, field="sync reply")
            register = {
                "url": config.get("url") or url,
                "appName": config.get("app_id"),
                "functions": config.get("functions"),
                "framework": config.get("framework"),
                "sdk": f"{config.get('sdk_language', '')}:v{config.get('sdk_version', '')}",
            }
            app, functions = parse_register(
                register, now=self._service.now(), allow_private=self._config.allow_private_apps
            )
            hooks = declared_webhooks(config, app_id=app.id, now=self._service.now())
        except (ValueError, AttributeError, ValidationError) as exc:
            return error(502, f"app at {redact_url(url)} sent an invalid sync reply: {exc}")
        modified = self._service.sync_app(app, functions)
        modified = WebhookRegistry(self._service).sync_declared(app.id, hooks) or modified
        return JSONResponse({"ok": True, "modified": modified, "app_id": app.id, "sync": "in_band"})

    def routes(self) -> list[Route]:
        kept = [r for r in super().routes() if r.path not in DROPPED_ROUTES]
        realtime = [] if self._realtime is None else self._realtime.routes(self._guard)
        return [*kept, *realtime, Route("/v1/apps/sync", self._guard(self.sync), methods=["PUT"])]


def _wire(event: events_mod.EventInput) -> dict[str, Any]:
    return {
        "name": event.name,
        "data": dict(event.data),
        "user": dict(event.user) or None,
        "id": event.id,
        "ts": event.ts,
        "v": event.v,
    }


def create_api(
    service: Service,
    *,
    bus: EventBus,
    clock: Clock,
    entropy: IdSource,
    signing_keys: tuple[str, ...],
    event_keys: tuple[str, ...],
    allow_private_apps: bool,
    realtime: MessageLog | None = None,
) -> ASGIApp:
    """The api function's ASGI app. Both key lists must be non-empty (the dev server treats
    empty as "no auth"; on AWS that would be an open API)."""
    if not signing_keys or not event_keys:
        raise ValueError("the AWS API needs a signing key and at least one event key")
    config = ApiConfig(
        signing_keys=signing_keys, event_keys=event_keys, allow_private_apps=allow_private_apps
    )
    api = AwsApi(service, config, bus=bus, clock=clock, entropy=entropy, realtime=realtime)
    return CloudServerKind(Starlette(routes=api.routes()))
