"""HTTP/1.0 responses that also say ``Transfer-Encoding: chunked``, read as Inngest reads them.

Transfer codings do not exist in HTTP/1.0, and Go's ``net/http`` (which Inngest's executor
uses for SDK and AI gateway calls) ignores the header in a 1.0 response and reads the body
to the end of the connection. Such responses are real: an HTTP/1.0 proxy that copies an
upstream's headers but not its framing (the official inngest-py suite puts one in front
of its apps). aiohttp parses the body as chunked and fails the call, so the connector
below drops that header from the head of a 1.0 response before aiohttp's parser sees it
(issue 12, item 8).
"""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

MAX_HEAD_BYTES = 64 * 1024
"""Past this without the end of the head, bytes go to aiohttp as they are (it rejects them)."""
_CHUNKED_LINE = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked[^\r\n]*", re.IGNORECASE)


def without_chunked_if_http10(head: bytes) -> bytes:
    """``head`` (status line and headers) without ``Transfer-Encoding: chunked`` if it is
    an HTTP/1.0 response; any other head unchanged."""
    if not head.startswith(b"HTTP/1.0 "):
        return head
    return _CHUNKED_LINE.sub(b"", head)


class _LenientResponseHandler(ResponseHandler):
    """Holds back the first bytes of a connection until the first response's head is
    complete, and fixes that head. Later responses on the connection pass through: a 1.0
    response read to the end of the connection is always its last one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held = b""
        self._first_head_seen = False

    @property
    def served(self) -> bool:
        """A response has come on this connection: handed out again, it is a reused one."""
        return self._first_head_seen

    def data_received(self, data: bytes) -> None:
        if self._first_head_seen or not data:
            super().data_received(data)
            return
        self._held += data
        end = self._held.find(b"\r\n\r\n")
        if end < 0 and len(self._held) < MAX_HEAD_BYTES:
            return
        self._first_head_seen = True
        held, self._held = self._held, b""
        if end >= 0:
            held = without_chunked_if_http10(held[:end]) + held[end:]
        super().data_received(held)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._held:  # the connection ended inside the head: let aiohttp report it
            held, self._held = self._held, b""
            self._first_head_seen = True
            super().data_received(held)
        super().connection_lost(exc)


def lenient_connector(
    connector_class: type[aiohttp.TCPConnector] = aiohttp.TCPConnector, **kwargs: Any
) -> aiohttp.TCPConnector:
    """An ``aiohttp.TCPConnector`` (or ``connector_class``) whose connections read HTTP/1.0
    heads leniently.

    Must be called with a running event loop (as ``TCPConnector`` itself must)."""
    connector = connector_class(**kwargs)
    # aiohttp has no public hook for the protocol class; a test pins this behaviour.
    lenient: Any = functools.partial(_LenientResponseHandler, loop=asyncio.get_running_loop())
    connector._factory = lenient
    return connector
