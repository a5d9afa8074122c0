"""``wayline.Webhook`` declarations: checked when written, sent in the sync body only."""

from __future__ import annotations

import pytest

import wayline
from wayline.errors import ConfigError
from wayline.sdk import registration

HOOK = wayline.Webhook(
    id="stripe",
    event='"stripe/" + body.type',
    event_id="body.id",
    signature=wayline.WebhookSignature(scheme="stripe", secret="whsec_0123456789"),
)


def test_declarations_are_checked_when_written() -> None:
    with pytest.raises(ConfigError, match="part of the webhook's URL"):
        wayline.Webhook(id="a/b", event='"x"')
    with pytest.raises(ConfigError, match="at least 8 characters"):
        wayline.WebhookSignature(scheme="github", secret="short")
    with pytest.raises(ConfigError, match="duplicate webhook ids: stripe"):
        wayline.Wayline(app_id="shop", is_dev=True, webhooks=[HOOK, HOOK])
    assert "whsec" not in repr(HOOK)


def test_the_sync_body_carries_them_without_empty_fields() -> None:
    client = wayline.Wayline(app_id="shop", is_dev=True, webhooks=[HOOK])
    body = registration.sync_body(
        client.config, [], app_url="http://127.0.0.1:1/api", framework="x", webhooks=client.webhooks
    )
    assert body["webhooks"] == [
        {
            "id": "stripe",
            "name": "stripe",
            "event": '"stripe/" + body.type',
            "event_id": "body.id",
            "signature": {"scheme": "stripe", "secret": "whsec_0123456789"},
        }
    ]
    plain = registration.sync_body(
        client.config, [], app_url="http://127.0.0.1:1/api", framework="x"
    )
    assert "webhooks" not in plain  # an app without webhooks sends exactly what it did before
