"""Request verification and response signing of the serve endpoint, in production and dev.

Production mode verifies every request (HMAC-SHA256 over the JCS body, 5-minute window,
fallback key), answers a bare 401 that reveals nothing, and signs every response with the
key that verified the request. Signatures are cross-checked with the official SDK's code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from inngest._internal import net, server_lib

import wayline
from wayline import signing
from wayline.errors import ConfigError
from wayline.sdk.comm import CommHandler, CommRequest, CommResponse

KEY = "signkey-prod-" + "ab" * 32
FALLBACK = "signkey-prod-" + "cd" * 32
OTHER = "signkey-prod-" + "ef" * 32
NOW = 1_767_225_600
URL = "https://shop.example.com/api/inngest"
CALL_QUERY = {"fnId": "shop-hello", "stepId": "step"}


def _client(**overrides: Any) -> wayline.Wayline:
    settings: dict[str, Any] = {
        "app_id": "shop",
        "signing_key": KEY,
        "signing_key_fallback": FALLBACK,
        "event_key": "ek",
        "base_url": "http://127.0.0.1:9",
        "environ": {},
    }
    settings.update(overrides)
    return wayline.Wayline(**settings)


def _handler(client: wayline.Wayline | None = None) -> CommHandler:
    client = client or _client()

    @client.function(id="hello", trigger=wayline.TriggerEvent(event="x"))
    def hello(ctx: wayline.SyncContext) -> dict[str, str]:
        return {"hello": str(ctx.event.data.get("who"))}

    return CommHandler(client, [hello], framework="test", clock_s=lambda: NOW)


def _body(who: str = "ada") -> bytes:
    payload = {
        "event": {"name": "x", "data": {"who": who}},
        "events": [{"name": "x", "data": {"who": who}}],
        "steps": {},
        "use_api": False,
        "ctx": {"run_id": "r1", "attempt": 0, "disable_immediate_execution": False},
    }
    return signing.canonical_json(payload)


def _request(
    method: str = "POST",
    body: bytes = b"",
    signature: str | None = None,
    query: dict[str, str] | None = None,
    **headers: str,
) -> CommRequest:
    all_headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if signature is not None:
        all_headers["X-Inngest-Signature"] = signature
    return CommRequest(method, URL, all_headers, query or {}, body)


def _signed_post(key: str, *, t: int = NOW, body: bytes | None = None) -> CommResponse:
    body = body if body is not None else _body()
    return _handler().handle_sync(
        _request(body=body, signature=signing.sign(body, key, unix_s=t), query=CALL_QUERY)
    )


def _response_key(response: CommResponse) -> str | None:
    """The key that signed a response, checked with the official SDK's verifier."""
    for key in (KEY, FALLBACK):
        verified = net.validate_response_sig(
            body=response.body,
            headers={k.lower(): v for k, v in response.headers.items()},
            mode=server_lib.ServerKind.CLOUD,
            signing_key=key,
        )
        if verified == key:
            return key
    return None


def _assert_unauthorized(response: CommResponse) -> None:
    assert response.status == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}
    # nothing about the app: no SDK headers, no counts, no keys
    assert "x-inngest-sdk" not in response.headers
    assert "x-inngest-signature" not in response.headers
    assert set(response.headers) == {"content-type", "x-inngest-sdk-handled"}


def test_a_valid_signature_runs_the_function_and_the_reply_is_signed() -> None:
    response = _signed_post(KEY)
    assert response.status == 200
    assert json.loads(response.body) == {"hello": "ada"}
    assert _response_key(response) == KEY


def test_the_fallback_key_is_accepted_and_signs_the_reply() -> None:
    response = _signed_post(FALLBACK)
    assert response.status == 200
    assert _response_key(response) == FALLBACK


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(signing.sign(_body(), OTHER, unix_s=NOW), id="wrong key"),
        pytest.param(signing.sign(_body("eve"), KEY, unix_s=NOW), id="tampered body"),
        pytest.param(signing.sign(_body(), KEY, unix_s=NOW - 301), id="301s old"),
        pytest.param(signing.sign(_body(), KEY, unix_s=NOW + 301), id="301s ahead"),
        pytest.param("t=soon&s=" + "0" * 64, id="malformed timestamp"),
        pytest.param(f"t={NOW}&s=not-hex", id="malformed digest"),
        pytest.param(f"s={'a' * 64}", id="no timestamp"),
        pytest.param("", id="empty header"),
        pytest.param(None, id="missing header"),
    ],
)
def test_bad_signatures_are_refused_in_production(signature: str | None) -> None:
    handler = _handler()
    response = handler.handle_sync(_request(body=_body(), signature=signature, query=CALL_QUERY))
    _assert_unauthorized(response)


def test_the_window_is_five_minutes_either_way() -> None:
    assert _signed_post(KEY, t=NOW - 299).status == 200
    assert _signed_post(KEY, t=NOW + 299).status == 200


def test_a_signature_over_the_canonical_form_verifies_a_reformatted_body() -> None:
    canonical = _body()
    pretty = json.dumps(json.loads(canonical), indent=2, sort_keys=False).encode()
    signature = signing.sign(canonical, KEY, unix_s=NOW)
    response = _handler().handle_sync(_request(body=pretty, signature=signature, query=CALL_QUERY))
    assert response.status == 200


def test_requests_signed_by_the_official_sdks_signer_verify() -> None:
    body = _body()
    signature = net.sign_request(body, KEY, NOW)
    assert isinstance(signature, str)
    response = _handler().handle_sync(_request(body=body, signature=signature, query=CALL_QUERY))
    assert response.status == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "POST"])
def test_unsigned_requests_learn_nothing(method: str) -> None:
    response = _handler().handle_sync(_request(method, query=CALL_QUERY))
    _assert_unauthorized(response)
    assert b"function_count" not in response.body


def test_signed_introspection_is_authenticated_and_signed() -> None:
    signature = signing.sign(b"", KEY, unix_s=NOW)
    response = _handler().handle_sync(_request("GET", signature=signature))
    assert response.status == 200
    body = json.loads(response.body)
    assert body["authentication_succeeded"] is True
    assert body["mode"] == "cloud"
    assert body["function_count"] == 1
    assert body["signing_key_hash"] == signing.hash_signing_key(KEY)
    assert body["signing_key_fallback_hash"] == signing.hash_signing_key(FALLBACK)
    assert KEY.removeprefix("signkey-prod-") not in response.body.decode()
    assert _response_key(response) == KEY


def test_introspection_from_the_other_kind_of_server_is_forbidden() -> None:
    signature = signing.sign(b"", KEY, unix_s=NOW)
    request = _request("GET", signature=signature, x_inngest_server_kind="dev")
    response = _handler().handle_sync(request)
    assert response.status == 403
    assert json.loads(response.body) == {}


def test_in_band_sync_answers_with_the_config_signed() -> None:
    body = signing.canonical_json({"url": URL})
    signature = signing.sign(body, KEY, unix_s=NOW)
    request = _request("PUT", body=body, signature=signature, x_inngest_sync_kind="in_band")
    response = _handler().handle_sync(request)
    assert response.status == 200
    assert response.headers["x-inngest-sync-kind"] == "in_band"
    reply = json.loads(response.body)
    assert reply["app_id"] == "shop"
    assert [f["id"] for f in reply["functions"]] == ["shop-hello"]
    assert reply["url"] == URL
    assert reply["inspection"]["authentication_succeeded"] is True
    assert _response_key(response) == KEY


def test_in_band_sync_must_be_signed() -> None:
    body = signing.canonical_json({"url": URL})
    request = _request("PUT", body=body, x_inngest_sync_kind="in_band")
    _assert_unauthorized(_handler().handle_sync(request))


def test_dev_mode_checks_nothing_and_shows_only_counts() -> None:
    handler = _handler(_client(is_dev=True))
    assert handler.handle_sync(_request(body=_body(), query=CALL_QUERY)).status == 200
    inspection = json.loads(handler.handle_sync(_request("GET")).body)
    assert inspection == {
        "schema_version": "2024-05-24",
        "function_count": 1,
        "has_event_key": True,
        "has_signing_key": True,
        "has_signing_key_fallback": True,
        "mode": "dev",
    }


def test_production_without_a_signing_key_refuses_to_serve() -> None:
    client = wayline.Wayline(app_id="shop", environ={})
    assert not client.is_dev  # production is the default, never dev

    @client.function(id="hello", trigger=wayline.TriggerEvent(event="x"))
    def hello(ctx: wayline.SyncContext) -> None: ...

    with pytest.raises(ConfigError, match="no signing key") as raised:
        CommHandler(client, [hello], framework="test")
    assert "WAYLINE_DEV" in str(raised.value)


@pytest.mark.parametrize("key", ["signkey-prod-xyz", "not a key", "signkey-prod-abc"])
def test_a_malformed_signing_key_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ConfigError, match="not a signing key") as raised:
        wayline.Wayline(app_id="shop", environ={"INNGEST_SIGNING_KEY": key})
    assert key not in str(raised.value)
    assert "INNGEST_SIGNING_KEY" in str(raised.value)
