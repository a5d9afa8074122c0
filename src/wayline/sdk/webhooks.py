"""Webhooks an app declares in code: sent at sync, stored by the server exactly as a
``POST /v1/webhooks`` definition, served at ``POST /webhooks/<app id>-<id>``.

Example::

    client = wayline.Wayline(
        app_id="shop",
        webhooks=[
            wayline.Webhook(
                id="stripe",
                event='"stripe/" + body.type',
                data="body.data.object",
                event_id="body.id",
                signature=wayline.WebhookSignature(
                    scheme="stripe", secret=os.environ["STRIPE_WEBHOOK_SECRET"]
                ),
            )
        ],
    )

Each sync replaces the app's declared webhooks (one removed from the code is deleted; the
URL of one kept stays the same). The secret travels only in the sync request to the server
(signed in production), never in the app's introspection answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from wayline.errors import ConfigError

Scheme = Literal["hmac-sha256", "stripe", "github"]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MIN_SECRET_LENGTH = 8


@dataclass(frozen=True, slots=True)
class WebhookSignature:
    """How the server verifies a delivery: HMAC-SHA256 of the raw body with ``secret``
    (``hmac-sha256`` in ``header``, default ``x-signature``), Stripe's ``t=,v1=`` scheme,
    or GitHub's ``sha256=`` scheme."""

    scheme: Scheme
    secret: str = field(repr=False)
    header: str | None = None
    tolerance_s: int | None = None
    """Stripe: how far the signed timestamp may be from now (default 300 s)."""

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"WebhookSignature.secret must be at least {MIN_SECRET_LENGTH} characters"
            )


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook: CEL expressions over the request (``body``, ``headers``, ``query``)
    that make the event's name, data (default: the body) and id (for deduplication)."""

    id: str
    """Local to the app: the server's id (and URL) is ``<app id>-<id>``."""
    event: str
    data: str | None = None
    event_id: str | None = None
    name: str = ""
    max_bytes: int | None = None
    signature: WebhookSignature | None = None

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ConfigError(
                f"Webhook id {self.id!r} must be 1-64 letters, digits, '-' or '_' "
                "(it is part of the webhook's URL)"
            )

    def config(self) -> dict[str, Any]:
        """The entry of the sync payload's ``webhooks`` (``None`` fields are dropped)."""
        signature = None
        if self.signature is not None:
            signature = {
                "scheme": self.signature.scheme,
                "secret": self.signature.secret,
                "header": self.signature.header,
                "tolerance_s": self.signature.tolerance_s,
            }
        return {
            "id": self.id,
            "name": self.name or self.id,
            "event": self.event,
            "data": self.data,
            "event_id": self.event_id,
            "max_bytes": self.max_bytes,
            "signature": signature,
        }


def check_unique(webhooks: Sequence[Webhook]) -> tuple[Webhook, ...]:
    ids = [w.id for w in webhooks]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"duplicate webhook ids: {', '.join(duplicates)}")
    return tuple(webhooks)
