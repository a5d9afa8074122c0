"""Realtime from the app: publish to a channel's topic, and mint subscription tokens.

Inngest Realtime's shape: ``publish(channel, topic, data)`` (``ctx.publish`` in a function,
``client.publish`` anywhere in server code), and tokens scoped to one channel and some of
its topics (``client.get_subscription_token``) that a browser presents to
``GET /v1/realtime/subscribe`` on the server (Server-Sent Events; see
``wayline.api.realtime``). Both calls authenticate with the signing key when one is set.

Messages are not durable and not encrypted (the browser reads them): publish what a page may
show. ``ctx.publish`` is skipped while a function replays steps that already ran, so each
publish happens once per real execution (a retried step publishes again).

Example::

    @client.function(id="import", trigger=wayline.TriggerEvent(event="csv/uploaded"))
    async def import_csv(ctx: wayline.Context) -> None:
        for n, chunk in enumerate(chunks(ctx.event.data["url"])):
            await ctx.step.run(f"chunk-{n}", load, chunk)
            await ctx.publish(f"upload:{ctx.event.data['id']}", "progress", {"done": n + 1})

    token = client.get_subscription_token(f"upload:{upload_id}", ["progress"])
    # the page: new EventSource(`${server}/v1/realtime/subscribe?channel=...&token=${key}`)
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wayline.errors import ConfigError, WaylineError
from wayline.signing import hash_signing_key

from . import serialize
from .config import ClientConfig
from .effects import (
    Flow,
    HttpFailure,
    HttpRequest,
    HttpResponse,
    Transport,
    drive,
    drive_async,
    http,
)


class PublishError(WaylineError):
    """The server refused or did not answer a publish or a token request."""


@dataclass(frozen=True, slots=True)
class SubscriptionToken:
    """A token for ``channel``'s ``topics``; ``key`` is the bearer credential (do not log)."""

    key: str
    channel: str
    topics: tuple[str, ...]
    expires_at: int

    def __repr__(self) -> str:
        return f"SubscriptionToken(channel={self.channel!r}, topics={self.topics!r})"


class Realtime:
    """The app side of realtime, over the client's config and transport."""

    def __init__(self, config: ClientConfig, transport: Transport) -> None:
        self._config = config
        self._transport = transport

    def publish(self, channel: str, topic: str, data: Any, *, run_id: str | None = None) -> None:
        drive(self._publish(channel, topic, data, run_id), self._transport)

    async def publish_async(
        self, channel: str, topic: str, data: Any, *, run_id: str | None = None
    ) -> None:
        await drive_async(self._publish(channel, topic, data, run_id), self._transport)

    def token(
        self, channel: str, topics: Sequence[str], *, ttl_seconds: int | None = None
    ) -> SubscriptionToken:
        return drive(self._token(channel, topics, ttl_seconds), self._transport)

    async def token_async(
        self, channel: str, topics: Sequence[str], *, ttl_seconds: int | None = None
    ) -> SubscriptionToken:
        return await drive_async(self._token(channel, topics, ttl_seconds), self._transport)

    # ------------------------------------------------------------------ flows

    def _publish(self, channel: str, topic: str, data: Any, run_id: str | None) -> Flow[None]:
        query = {"channel": channel, "topic": topic, **({"run_id": run_id} if run_id else {})}
        body = serialize.dumps(serialize.to_json(data, what=f"the data published to {topic!r}"))
        request = HttpRequest(
            "POST",
            f"{self._origin()}/v1/realtime/publish?{urllib.parse.urlencode(query)}",
            self._headers(),
            body,
        )
        result = yield from http(request)
        _check(result, f"publishing to {channel!r}/{topic!r}")

    def _token(
        self, channel: str, topics: Sequence[str], ttl_seconds: int | None
    ) -> Flow[SubscriptionToken]:
        wanted: dict[str, Any] = {"channel": channel, "topics": list(topics)}
        if ttl_seconds is not None:
            wanted["ttl_seconds"] = ttl_seconds
        request = HttpRequest(
            "POST", f"{self._origin()}/v1/realtime/token", self._headers(), serialize.dumps(wanted)
        )
        result = yield from http(request)
        body = _check(result, f"minting a token for {channel!r}")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            raise PublishError("the server answered a token request without a token")
        return SubscriptionToken(
            key=data["key"],
            channel=str(data.get("channel")),
            topics=tuple(str(t) for t in data.get("topics") or ()),
            expires_at=int(data.get("expires_at") or 0),
        )

    def _origin(self) -> str:
        origin = self._config.api_origin
        if origin is None:
            raise ConfigError(
                "no API URL for realtime: set WAYLINE_BASE_URL (or base_url=...) to your "
                "Wayline server"
            )
        return origin.rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self._config.signing_key:
            headers["authorization"] = f"Bearer {hash_signing_key(self._config.signing_key)}"
        if self._config.env:
            headers["x-inngest-env"] = self._config.env
        return headers


def _check(result: HttpResponse | HttpFailure, what: str) -> Any:
    if isinstance(result, HttpFailure):
        raise PublishError(f"{what} failed: {result.message}")
    body = result.json()
    if result.status >= 300:
        detail = body.get("error") if isinstance(body, dict) else None
        raise PublishError(f"{what} failed: HTTP {result.status}: {detail or 'no detail'}")
    return body
