"""Reading an event API request: the body streamed through ``EventStream`` chunk by chunk.

Shared by the dev server's and the AWS api function's ``POST /e/{key}``. A body whose
``Content-Length`` is over the cap is refused before any of it is read; a chunked one
is refused as soon as it passes the cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request

from ..engine.event_stream import EventStream
from ..engine.events import EventInput
from ..errors import ValidationError


async def read_events(request: Request) -> list[EventInput]:
    """The request's validated events; ``ValidationError`` naming the first problem."""
    return await read_event_chunks(request.stream(), request.headers.get("content-length"))


async def read_event_chunks(
    chunks: AsyncIterator[bytes], content_length: str | None
) -> list[EventInput]:
    """The events of a body read as ``chunks`` (``Request.stream`` or a raw ASGI receive
    loop: ``event_fastpath``), ``content_length`` its header (None if absent)."""
    stream = EventStream()
    stream.check_declared_length(_declared_length(content_length))
    async for chunk in chunks:
        if chunk:
            stream.feed(chunk)
    return stream.finish()


def _declared_length(header: str | None) -> int | None:
    if header is None:
        return None
    if not header.strip().isdigit():
        raise ValidationError(f"Content-Length {header[:40]!r} is not a number", field="body")
    return int(header)
