"""Sending events: the ``EventSender`` seam and its HTTP implementation (``POST /e/{key}``).

One retry policy for sync and async sends (a sans-I/O flow): up to 5 attempts on a 5xx or a
network error, with exponential backoff and jitter, never on a 4xx (the request itself is
wrong). Every attempt carries the same ``x-inngest-event-id-seed``, so a server that stored
the events before its response was lost derives the same ids again and stores nothing twice.
"""

from __future__ import annotations

import base64
import random
import secrets
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from wayline.errors import SendEventsError

from . import serialize
from .effects import Flow, HttpFailure, HttpRequest, Transport, drive, drive_async, http, pause
from .protocol import REQUEST_VERSION, SDK_NAME

MAX_SEND_ATTEMPTS = 5
RETRY_BASE_DELAY_S = 0.1
DEV_EVENT_KEY = "NO_EVENT_KEY_SET"
"""What the official SDKs send in dev mode when no event key is set; dev servers accept it."""


class EventSender(Protocol):
    """Delivers already-serialized events and returns their ids, in order.

    The HTTP sender below is the default; an AWS EventBridge sender can implement the same
    two methods and be passed as ``Wayline(sender=...)``.

    Example::

        class PrintSender:
            def send(self, events):
                print(events)
                return [str(i) for i, _ in enumerate(events)]

            async def send_async(self, events):
                return self.send(events)

        client = wayline.Wayline(app_id="shop", sender=PrintSender())
    """

    def send(self, events: Sequence[dict[str, Any]]) -> list[str]: ...

    async def send_async(self, events: Sequence[dict[str, Any]]) -> list[str]: ...


def event_id_seed(now_ms: int, entropy: bytes) -> str:
    """``x-inngest-event-id-seed``: ``"<unix ms>,<base64 of 10 random bytes>"``."""
    return f"{now_ms},{base64.b64encode(entropy).decode('ascii')}"


def backoff_s(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """100 ms, 200 ms, 400 ms ... plus up to 100 ms of jitter (the official SDK's schedule)."""
    delay: float = RETRY_BASE_DELAY_S * (2**attempt) + rng() * RETRY_BASE_DELAY_S
    return delay


class HttpEventSender:
    """Sends events to ``POST {event_api_origin}/e/{event_key}``."""

    def __init__(
        self,
        *,
        event_api_origin: str,
        event_key: str,
        env: str | None,
        transport: Transport,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        entropy: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._url = f"{event_api_origin}/e/{urllib.parse.quote(event_key, safe='')}"
        self._env = env
        self._transport = transport
        self._clock_ms = clock_ms
        self._entropy = entropy

    def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        return drive(self._flow(events), self._transport)

    async def send_async(self, events: Sequence[dict[str, Any]]) -> list[str]:
        return await drive_async(self._flow(events), self._transport)

    def _request(self, events: Sequence[dict[str, Any]]) -> HttpRequest:
        headers = {
            "content-type": "application/json",
            "user-agent": SDK_NAME,
            "x-inngest-sdk": SDK_NAME,
            "x-inngest-req-version": REQUEST_VERSION,
            "x-inngest-event-id-seed": event_id_seed(self._clock_ms(), self._entropy(10)),
        }
        if self._env:
            headers["x-inngest-env"] = self._env
        return HttpRequest("POST", self._url, headers, serialize.dumps(list(events)))

    def _flow(self, events: Sequence[dict[str, Any]]) -> Flow[list[str]]:
        request = self._request(events)  # built once: every retry reuses its id seed
        problem = "no attempt made"
        for attempt in range(MAX_SEND_ATTEMPTS):
            result = yield from http(request)
            if isinstance(result, HttpFailure):
                problem = result.message
            elif result.status < 300:
                return _ids(result.json(), len(events))
            else:
                body = result.json()
                problem = _error_text(result.status, body, result.body)
                if result.status < 500:
                    raise SendEventsError(
                        _message(events, problem, _accepted(body)), ids=_accepted(body)
                    )
            if attempt + 1 < MAX_SEND_ATTEMPTS:
                yield from pause(backoff_s(attempt))
        raise SendEventsError(
            _message(events, f"{problem} (after {MAX_SEND_ATTEMPTS} attempts)", []), ids=[]
        )


def _ids(body: Any, count: int) -> list[str]:
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or len(ids) != count:
        raise SendEventsError(
            f"the event API accepted the request but returned {body!r} instead of {count} ids",
            ids=[str(i) for i in ids] if isinstance(ids, list) else [],
        )
    return [str(i) for i in ids]


def _accepted(body: Any) -> list[str]:
    ids = body.get("ids") if isinstance(body, dict) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _error_text(status: int, body: Any, raw: bytes) -> str:
    if isinstance(body, dict) and body.get("error"):
        return f"HTTP {status}: {body['error']}"
    return f"HTTP {status}: {raw[:300].decode('utf-8', 'replace')}"


def _message(events: Sequence[dict[str, Any]], problem: str, accepted: list[str]) -> str:
    total = len(events)
    names = ", ".join(sorted({str(e.get("name")) for e in events}))
    if not accepted:
        return f"sending {total} event(s) ({names}) failed; none was accepted: {problem}"
    return (
        f"sending {total} event(s) ({names}) failed after the first {len(accepted)}, which "
        f"were accepted with ids {accepted}; events {len(accepted) + 1} to {total} were not: "
        f"{problem}"
    )
