"""What the raw-ASGI fast paths (``checkpoint_fastpath``, ``event_fastpath``) share: reading
headers as Starlette does and sending a finished response with the server-kind header
``ServerKindHeader`` would have added."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope, Send

from ..engine import wire

SERVER_KIND = (wire.SERVER_KIND.encode("latin-1"), b"dev")
UNAUTHORIZED = "missing or invalid signing key in the Authorization header"


def first_headers(scope: Scope) -> dict[str, str]:
    """The first value of each header, as Starlette's ``Headers.get`` gives it."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if key not in out:
            out[key] = value.decode("latin-1")
    return out


async def send_response(send: Send, response: Response) -> None:
    """``response`` (body already rendered) with ``x-inngest-server-kind: dev``."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [*response.raw_headers, SERVER_KIND],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
