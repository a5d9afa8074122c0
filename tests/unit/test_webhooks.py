"""Webhook definitions, signature schemes and the request-to-event transform (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from wayline.engine import webhooks
from wayline.engine.webhooks import Rejection, Webhook
from wayline.errors import ValidationError

NOW = 1_800_000_000_000
SECRET = "whsec_test_secret"
BODY = json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"amount": 5}}).encode()


def hook(**body: Any) -> Webhook:
    return webhooks.parse_definition(
        {"event": '"stripe/" + body.type', **body}, webhook_id="wh1", now=NOW
    )


def digest(message: bytes) -> bytes:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).digest()


def stripe_header(body: bytes, t: int) -> str:
    return f"t={t},v1={digest(f'{t}.'.encode() + body).hex()}"


def run(h: Webhook, body: bytes = BODY, headers: dict[str, str] | None = None) -> webhooks.Incoming:
    return webhooks.transform(h, body, headers or {}, {"src": "q"}, now_ms=NOW)


def test_transform_builds_name_data_and_id() -> None:
    h = hook(data="{'amount': body.data.amount, 'src': query.src}", event_id="body.id")
    got = run(h)
    assert (got.name, dict(got.data), got.id) == (
        "stripe/invoice.paid",
        {"amount": 5, "src": "q"},
        "evt_1",
    )
    assert dict(run(hook()).data) == json.loads(BODY)  # data defaults to the body


@pytest.mark.parametrize(
    ("scheme", "header", "value"),
    [
        ("hmac-sha256", "x-signature", digest(BODY).hex()),
        ("hmac-sha256", "x-signature", base64.b64encode(digest(BODY)).decode()),
        ("github", "x-hub-signature-256", "sha256=" + digest(BODY).hex()),
        ("stripe", "stripe-signature", stripe_header(BODY, NOW // 1000 - 10)),
    ],
)
def test_each_scheme_accepts_a_valid_signature_and_refuses_a_tampered_body(
    scheme: str, header: str, value: str
) -> None:
    h = hook(signature={"scheme": scheme, "secret": SECRET})
    assert run(h, headers={header: value}).name == "stripe/invoice.paid"
    with pytest.raises(Rejection, match="signature does not match the body") as e:
        run(h, BODY.replace(b"5", b"6"), headers={header: value})
    assert e.value.status == 401
    with pytest.raises(Rejection, match=f"signature header '{header}' is missing"):
        run(h)


def test_stripe_refuses_a_stale_timestamp() -> None:
    h = hook(signature={"scheme": "stripe", "secret": SECRET, "tolerance_s": 60})
    stale = stripe_header(BODY, NOW // 1000 - 61)
    with pytest.raises(Rejection, match="outside the 60 s tolerance"):
        run(h, headers={"stripe-signature": stale})
    with pytest.raises(Rejection, match="not 't=<time>,v1=<hex>'"):
        run(h, headers={"stripe-signature": "v1=abc"})


def test_github_needs_its_prefix_and_a_custom_hmac_header_works() -> None:
    gh = hook(signature={"scheme": "github", "secret": SECRET})
    with pytest.raises(Rejection, match="must start with 'sha256='"):
        run(gh, headers={"x-hub-signature-256": digest(BODY).hex()})
    custom = hook(signature={"scheme": "hmac-sha256", "secret": SECRET, "header": "X-Shop-Hmac"})
    assert run(custom, headers={"x-shop-hmac": digest(BODY).hex()}).id is None


def test_refusals_of_a_request() -> None:
    with pytest.raises(Rejection, match="takes at most 10") as e:
        run(hook(max_bytes=10))
    assert e.value.status == 413
    with pytest.raises(Rejection, match="not an event name"):
        run(hook(event="body.nope"))
    with pytest.raises(Rejection, match="data expression gave a str, not a map"):
        run(hook(data="body.type"))
    with pytest.raises(Rejection, match="data expression gave a str"):
        run(hook(event="'form'"), b"a=1&b=2")  # a text body cannot be the data
    with pytest.raises(Rejection, match="event expression failed on this request"):
        run(hook(), b"a=1")


def test_the_secret_is_never_shown() -> None:
    h = hook(signature={"scheme": "stripe", "secret": SECRET})
    assert SECRET not in json.dumps(webhooks.view(h)) and SECRET not in repr(h)
    assert webhooks.view(h)["signature"]["secret_set"] is True
    assert webhooks.from_stored(webhooks.to_stored(h)) == h


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "event"),
        ({"event": "body."}, "event"),
        ({"event": "'x'", "data": 5}, "data"),
        ({"event": "'x'", "max_bytes": 0}, "max_bytes"),
        ({"event": "'x'", "max_bytes": 10**9}, "max_bytes"),
        ({"event": "'x'", "signature": {"scheme": "md5", "secret": SECRET}}, "signature.scheme"),
        (
            {"event": "'x'", "signature": {"scheme": "github", "secret": "short"}},
            "signature.secret",
        ),
        (
            {"event": "'x'", "signature": {"scheme": "stripe", "secret": SECRET, "tolerance_s": 0}},
            "signature.tolerance_s",
        ),
    ],
)
def test_bad_definitions_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        webhooks.parse_definition(body, webhook_id="wh", now=NOW)
    assert e.value.field == field and SECRET not in str(e.value)


@pytest.mark.parametrize(
    "body",
    [b'{"x": NaN}', b'{"x": 1e999}', b"[" * 5000 + b"]" * 5000, b'{"x": "\\ud800"}'],
    ids=["nan", "overflow", "deep", "lone-surrogate"],
)
def test_a_json_body_no_event_could_carry_is_refused_with_a_4xx(body: bytes) -> None:
    with pytest.raises(Rejection) as refused:
        webhooks.parse_body(body)
    assert refused.value.status == 400


def test_a_body_that_is_not_json_is_its_text() -> None:
    assert webhooks.parse_body(b"a=1&b=2") == "a=1&b=2"
