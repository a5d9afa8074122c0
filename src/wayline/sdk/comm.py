"""The serve endpoint, framework-agnostic: GET introspection, PUT sync, POST call.

Adapters turn their framework's request into a ``CommRequest``, call ``handle`` (async) or
``handle_sync``, and turn the ``CommResponse`` back. Both entry points run the same flow
(``effects.py``), so each rule below is written once:

* Production mode verifies every request's signature (HMAC-SHA256 over the JCS body,
  5-minute window, fallback key) and signs its responses with the key that matched. An
  unsigned request gets a bare 401 and learns nothing, not even the function count.
* Dev mode (explicit only) verifies nothing, as the official SDK in dev mode.
* Status codes and headers match the official Python SDK's (research note §1.6).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from wayline import signing
from wayline.errors import AuthError, ConfigError

from . import checkpoint, protocol, registration, serialize
from .call import PreparedCall
from .effects import (
    Flow,
    HttpFailure,
    HttpRequest,
    HttpResponse,
    call_function,
    drive,
    drive_async,
)
from .execution import CallResult
from .function import Function, Handler

if TYPE_CHECKING:
    from .client import Wayline


@dataclass(frozen=True, slots=True)
class CommRequest:
    """A request to the serve endpoint, as any framework can describe it."""

    method: str
    url: str
    headers: Mapping[str, Any]
    query: Mapping[str, Any]
    body: bytes


@dataclass(frozen=True, slots=True)
class CommResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    bare: bool = False
    """A 401: no SDK headers, so an unauthenticated caller learns nothing about the app."""


def _error(status: int, code: str, message: str) -> _Reply:
    return _Reply(status, {"code": code, "message": message, "name": "Error"})


_UNAUTHORIZED = _Reply(401, {"message": "Unauthorized"}, bare=True)


class CommHandler:
    """Serves ``functions`` for ``client``; ``framework`` is reported to the server."""

    def __init__(
        self,
        client: Wayline,
        functions: Sequence[Function[Any, Any]],
        *,
        framework: str,
        serve_origin: str | None = None,
        serve_path: str | None = None,
        clock_s: Callable[[], float] = time.time,
        checkpoint_clocks: checkpoint.Clocks | None = None,
    ) -> None:
        config = client.config
        if not config.is_dev and config.signing_key is None:
            raise ConfigError(
                "no signing key: production mode verifies every request from the server. "
                "Set WAYLINE_SIGNING_KEY (or pass signing_key=...), or run locally in dev mode "
                "with Wayline(is_dev=True) or WAYLINE_DEV=1"
            )
        if not functions:
            raise ConfigError("serve() needs at least one function")
        self._handlers: dict[str, Handler] = {}
        for fn in functions:
            if not isinstance(fn, Function):
                raise ConfigError(f"serve() takes functions made by @client.function, got {fn!r}")
            for handler in fn.handlers():
                if handler.fn_id in self._handlers:
                    raise ConfigError(f"function id {handler.fn_id!r} is served twice")
                self._handlers[handler.fn_id] = handler
        self._client = client
        self._config = config
        self._functions = list(functions)
        self._framework = framework
        self._serve_origin = serve_origin or config.serve_origin
        self._serve_path = serve_path or config.serve_path
        self._clock_s = clock_s
        self._checkpoint_clocks = checkpoint_clocks or checkpoint.Clocks()

    @property
    def function_ids(self) -> list[str]:
        """Every composite id served, failure handlers included."""
        return list(self._handlers)

    def handle_sync(
        self, request: CommRequest, *, time_left_s: float | None = None
    ) -> CommResponse:
        """Handle a request with blocking I/O (WSGI frameworks, Lambda).

        ``time_left_s`` caps a checkpointing call's runtime below the function's
        ``max_runtime`` (the Lambda adapter passes its remaining time minus a margin).
        """
        return drive(self._flow(request, time_left_s), self._client.transport)

    async def handle(self, request: CommRequest) -> CommResponse:
        """Handle a request on the running event loop (ASGI frameworks)."""
        return await drive_async(self._flow(request, None), self._client.transport)

    # ------------------------------------------------------------------ flow

    def _flow(self, request: CommRequest, time_left_s: float | None) -> Flow[CommResponse]:
        headers = protocol.lower_headers(request.headers)
        key, problem = self._verify(request, headers)
        if not self._config.is_dev and key is None:
            self._client.logger.warning(
                "refused an unauthenticated %s to the serve endpoint: %s", request.method, problem
            )
            return self._respond(_UNAUTHORIZED, None)
        method = request.method.upper()
        if method == "GET":
            reply = self._inspect(headers, authenticated=key is not None)
        elif method == "POST":
            reply = yield from self._call(request, time_left_s)
        elif method == "PUT":
            reply = yield from self._sync(request, headers)
        else:
            reply = _Reply(405, {"message": f"method {method} is not allowed"})
        return self._respond(reply, key)

    def _verify(self, request: CommRequest, headers: Mapping[str, str]) -> tuple[str | None, str]:
        """The key that signed the request, or None and why not (dev mode checks nothing)."""
        if self._config.is_dev:
            return None, "dev mode"
        header = headers.get(signing.SIGNATURE_HEADER)
        now_s = int(self._clock_s())
        canonical = _canonical(request.body)
        # The server signs the JCS bytes it sends; a proxy may reformat them, so verify the
        # canonical form first and the bytes as received second.
        problem = ""
        for body in (canonical,) if canonical == request.body else (canonical, request.body):
            try:
                return signing.verify(header, body, self._config.signing_keys, now_s=now_s), ""
            except AuthError as exc:
                problem = problem or str(exc)
        return None, problem

    def _respond(self, reply: _Reply, key: str | None) -> CommResponse:
        body = serialize.dumps(reply.body)
        headers = {"content-type": "application/json"}
        if not reply.bare:
            headers.update(
                protocol.base_headers(
                    framework=self._framework, mode=self._config.mode, env=self._config.env
                )
            )
        headers.update(reply.headers)
        headers["x-inngest-sdk-handled"] = "true"
        if key is not None:
            headers[signing.SIGNATURE_HEADER] = signing.sign(body, key, unix_s=int(self._clock_s()))
        return CommResponse(reply.status, headers, body)

    # ------------------------------------------------------------------ GET

    def _inspect(self, headers: Mapping[str, str], *, authenticated: bool) -> _Reply:
        kind = headers.get("x-inngest-server-kind")
        if kind is not None and kind != self._config.mode:
            return _Reply(403, {})  # a dev server probing a production app, or the reverse
        return _Reply(200, self._inspection(authenticated=authenticated))

    def _inspection(self, *, authenticated: bool) -> dict[str, Any]:
        return registration.inspection(
            self._config,
            self._functions,
            authenticated=authenticated,
            framework=self._framework,
            serve_origin=self._serve_origin,
            serve_path=self._serve_path,
        )

    # ------------------------------------------------------------------ POST

    def _call(self, request: CommRequest, time_left_s: float | None) -> Flow[_Reply]:
        query = protocol.parse_query(request.query)
        if query.get("probe") == "trust":
            return _Reply(200, None)
        fn_id = query.get("fnId")
        if not fn_id:
            return _error(500, protocol.CODE_QUERY_PARAM_MISSING, "missing query param fnId")
        handler = self._handlers.get(fn_id) or self._handlers.get(f"{self._config.app_id}-{fn_id}")
        if handler is None:
            return _error(500, protocol.CODE_FUNCTION_NOT_FOUND, f"function {fn_id} not found")
        try:
            call_request = protocol.parse_call_request(request.body)
        except ValueError as exc:
            return _error(500, protocol.CODE_BODY_INVALID, str(exc))
        if call_request.use_api:
            fetched = yield from self._fetch_state(call_request)
            if isinstance(fetched, _Reply):
                return fetched
            call_request = fetched
        step_id = query.get("stepId")
        target = None if step_id in (None, "", protocol.DISCOVERY_STEP_ID) else step_id
        headers = protocol.lower_headers(request.headers)
        call = PreparedCall(
            handler,
            call_request,
            target,
            self._client.hooks,
            self._client.logger,
            middleware=self._client.middleware,
            headers=headers,
            checkpointer=self._checkpointer(handler, call_request, target, headers, time_left_s),
        )
        result = yield from call_function(call)
        return _result_reply(result)

    def _checkpointer(
        self,
        handler: Handler,
        request: protocol.CallRequest,
        target: str | None,
        headers: Mapping[str, str],
        time_left_s: float | None,
    ) -> checkpoint.Checkpointer | None:
        """Checkpoint this call when the server offers it (JS v4's gate) and the function
        allows it. A retry (attempt > 0) stays classic: it runs its first new step and
        answers with it, so a checkpoint only ever comes from an attempt-0 call (js#1540)."""
        settings = handler.checkpointing or self._client.checkpointing
        if (
            not settings.enabled
            or target is not None
            or request.disable_immediate_execution
            or request.attempt > 0
        ):
            return None
        clocks = self._checkpoint_clocks
        found = checkpoint.target_of(
            request,
            headers,
            api_origin=self._config.api_origin,
            signing_keys=self._config.signing_keys,
            env=self._config.env,
            now_ms=clocks.now_ms(),
        )
        if found is None:
            return None
        max_runtime_s = settings.max_runtime.total_seconds()
        if time_left_s is not None:
            max_runtime_s = min(max_runtime_s, time_left_s)
        return checkpoint.Checkpointer(
            found, self._client.transport, max_runtime_s=max_runtime_s, clocks=clocks
        )

    def _fetch_state(self, request: protocol.CallRequest) -> Flow[protocol.CallRequest | _Reply]:
        """State over the server's size limit comes from its API instead of the request."""
        api = self._config.api_origin
        if api is None:
            return _error(500, protocol.CODE_BODY_INVALID, "use_api needs WAYLINE_BASE_URL")
        run = urllib.parse.quote(request.run_id, safe="")
        fetched: list[Any] = []
        for what in ("batch", "actions"):
            res = yield from self._authed(
                HttpRequest("GET", f"{api}/v0/runs/{run}/{what}", self._outbound_headers(None))
            )
            body = res.json() if isinstance(res, HttpResponse) and res.status == 200 else None
            if body is None:
                detail = res.message if isinstance(res, HttpFailure) else f"HTTP {res.status}"
                return _error(500, protocol.CODE_BODY_INVALID, f"fetching run {what}: {detail}")
            fetched.append(body)
        events, steps = fetched
        if not isinstance(events, list) or not events or not isinstance(steps, Mapping):
            return _error(500, protocol.CODE_BODY_INVALID, "the run state API returned bad data")
        return replace(request, event=events[0], events=events, steps=steps)

    # ------------------------------------------------------------------ PUT

    def _sync(self, request: CommRequest, headers: Mapping[str, str]) -> Flow[_Reply]:
        kind = headers.get("x-inngest-server-kind")
        if not self._config.is_dev and headers.get("x-inngest-sync-kind") == "in_band":
            return self._in_band(request)
        if kind is not None and kind != self._config.mode:
            expected = "Dev Server" if self._config.is_dev else "Cloud"
            message = f"Sync rejected since it's from a {kind} server but expected {expected}"
            self._client.logger.error(message)
            return _error(400, protocol.CODE_SERVER_KIND_MISMATCH, message)
        api = self._config.api_origin
        if api is None:
            message = (
                "no API URL to sync with: set WAYLINE_BASE_URL (or base_url=...), or let "
                "the server sync in band"
            )
            return _error(500, protocol.CODE_REGISTRATION_FAILED, message)
        app_url = registration.serve_url(
            request.url, serve_origin=self._serve_origin, serve_path=self._serve_path
        )
        body = registration.sync_body(
            self._config,
            self._functions,
            app_url=app_url,
            framework=self._framework,
            webhooks=self._client.webhooks,
        )
        deploy_id = protocol.parse_query(request.query).get("deployId")
        url = f"{api}/fn/register" + (
            f"?{urllib.parse.urlencode({'deployId': deploy_id})}" if deploy_id else ""
        )
        outbound = HttpRequest("POST", url, self._outbound_headers(kind), serialize.dumps(body))
        res = yield from self._authed(outbound)
        if isinstance(res, HttpFailure):
            message = f"could not reach {api}/fn/register: {res.message}"
            self._client.logger.error("sync failed: %s", message)
            return _error(500, protocol.CODE_REGISTRATION_FAILED, message)
        relayed = res.json()
        if relayed is None:
            relayed = {"error": res.body[:500].decode("utf-8", "replace")}
        if res.status >= 300:
            self._client.logger.error("sync refused by the server: HTTP %s %s", res.status, relayed)
        # Relay the server's status too: the official SDK answers 200 even when sync failed.
        return _Reply(res.status, relayed, {"x-inngest-sync-kind": "out_of_band"})

    def _in_band(self, request: CommRequest) -> _Reply:
        try:
            raw = json.loads(request.body or b"{}")
        except ValueError:
            raw = {}
        url = raw.get("url") if isinstance(raw, Mapping) else None
        app_url = registration.serve_url(
            url if isinstance(url, str) and url else request.url,
            serve_origin=self._serve_origin,
            serve_path=self._serve_path,
        )
        body = registration.in_band_body(
            self._config,
            self._functions,
            app_url=app_url,
            framework=self._framework,
            inspection=self._inspection(authenticated=True),
            webhooks=self._client.webhooks,
        )
        return _Reply(200, body, {"x-inngest-sync-kind": "in_band"})

    # ------------------------------------------------------------------ outbound

    def _outbound_headers(self, server_kind: str | None) -> dict[str, str]:
        headers = protocol.base_headers(
            framework=self._framework, mode=server_kind or "", env=self._config.env
        )
        if not server_kind:
            del headers["x-inngest-expected-server-kind"]
        return headers

    def _authed(self, request: HttpRequest) -> Flow[HttpResponse | HttpFailure]:
        """Send with ``Authorization: Bearer <hashed key>``, retrying with the fallback key."""
        return (yield from checkpoint.authed(request, self._config.signing_keys))


def _result_reply(result: CallResult) -> _Reply:
    headers: dict[str, str] = {}
    if result.no_retry:
        headers["x-inngest-no-retry"] = "true"
    if result.retry_after is not None:
        headers["retry-after"] = result.retry_after
    return _Reply(result.status, result.body, headers)


def _canonical(body: bytes) -> bytes:
    if not body.strip():
        return b""
    try:
        return signing.canonical_json(json.loads(body))
    except ValueError:
        return body
