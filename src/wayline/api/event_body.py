"""Reading an event API request: the body streamed through ``EventStream`` chunk by chunk.

Shared by the dev server's and the AWS api function's ``POST /e/{key}``. A body whose
``Content-Length`` is over the cap is refused before any of it is read; a chunked one
is refused as soon as it passes the cap.
"""

from __future__ import annotations

from starlette.requests import Request

from ..engine.event_stream import EventStream
from ..engine.events import EventInput
from ..errors import ValidationError


async def read_events(request: Request) -> list[EventInput]:
    """The request's validated events; ``ValidationError`` naming the first problem."""
    stream = EventStream()
    stream.check_declared_length(_declared_length(request))
    async for chunk in request.stream():
        if chunk:
            stream.feed(chunk)
    return stream.finish()


def _declared_length(request: Request) -> int | None:
    header = request.headers.get("content-length")
    if header is None:
        return None
    if not header.strip().isdigit():
        raise ValidationError(f"Content-Length {header[:40]!r} is not a number", field="body")
    return int(header)
