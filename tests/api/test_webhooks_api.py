"""Webhooks over real loopback HTTP: each signature scheme (valid, tampered, stale,
replayed delivery), size limit, and definitions that never show their secret."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

NOW_S = 1_800_000_000  # the API fixture's fixed clock
SECRET = "whsec_0123456789"
BODY = json.dumps({"id": "evt_42", "type": "invoice.paid", "amount": 9}).encode()


def sign(message: bytes) -> str:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


def create(client: httpx.Client, **extra: Any) -> dict[str, Any]:
    body = {"name": "billing", "event": '"billing/" + body.type', "event_id": "body.id", **extra}
    resp = client.post("/v1/webhooks", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["data"])


def events(client: httpx.Client) -> list[dict[str, Any]]:
    return list(client.get("/v1/events").json()["data"])


Signer = Callable[[bytes, int], str]
SCHEMES: dict[str, tuple[str, Signer]] = {
    "hmac-sha256": ("x-signature", lambda body, t: sign(body)),
    "github": ("x-hub-signature-256", lambda body, t: "sha256=" + sign(body)),
    "stripe": ("stripe-signature", lambda body, t: f"t={t},v1={sign(f'{t}.'.encode() + body)}"),
}


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_signed_deliveries(client: httpx.Client, scheme: str) -> None:
    header, signer = SCHEMES[scheme]
    hook = create(client, signature={"scheme": scheme, "secret": SECRET})
    url = hook["url"]

    tampered = client.post(
        url, content=BODY.replace(b"9", b"1"), headers={header: signer(BODY, NOW_S)}
    )
    assert tampered.status_code == 401 and "does not match" in tampered.json()["error"]
    missing = client.post(url, content=BODY)
    assert missing.status_code == 401 and header in missing.json()["error"]
    if scheme == "stripe":
        stale = client.post(url, content=BODY, headers={header: signer(BODY, NOW_S - 301)})
        assert stale.status_code == 401 and "tolerance" in stale.json()["error"]
    assert events(client) == []  # nothing stored for a refused request

    ok = client.post(url, content=BODY, headers={header: signer(BODY, NOW_S)})
    assert ok.status_code == 200, ok.text
    (event_id,) = ok.json()["ids"]
    (stored,) = events(client)
    assert stored["internal_id"] == event_id and stored["name"] == "billing/invoice.paid"
    assert stored["id"] == "evt_42" and stored["data"]["amount"] == 9

    replay = client.post(url, content=BODY, headers={header: signer(BODY, NOW_S)})
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert len(events(client)) == 1


def test_size_limit_and_unknown_webhook(client: httpx.Client) -> None:
    hook = create(client, max_bytes=16)
    big = client.post(hook["url"], content=BODY)
    assert big.status_code == 413 and "at most 16" in big.json()["error"]
    assert client.post("/webhooks/01HNOPE", content=b"{}").status_code == 404
    assert events(client) == []


def test_definitions_never_return_the_secret(client: httpx.Client) -> None:
    hook = create(client, signature={"scheme": "github", "secret": SECRET})
    listed = client.get("/v1/webhooks")
    one = client.get(f"/v1/webhooks/{hook['id']}")
    for text in (json.dumps(hook), listed.text, one.text):
        assert SECRET not in text
    assert one.json()["data"]["signature"] == {
        "scheme": "github",
        "header": "x-hub-signature-256",
        "tolerance_s": 300,
        "secret_set": True,
    }
    assert client.delete(f"/v1/webhooks/{hook['id']}").status_code == 200
    assert client.get(f"/v1/webhooks/{hook['id']}").status_code == 404
    assert client.post(hook["url"], content=BODY).status_code == 404
    bad = client.post("/v1/webhooks", json={"event": "'x'", "signature": {"scheme": "x"}})
    assert bad.status_code == 400 and "signature.scheme" in bad.json()["error"]


def test_definitions_need_the_signing_key_but_deliveries_do_not(secured: httpx.Client) -> None:
    assert secured.post("/v1/webhooks", json={"event": "'x'"}).status_code == 401
    assert secured.get("/v1/webhooks").status_code == 401
    assert secured.post("/webhooks/01HNOPE", content=b"{}").status_code == 404
