"""The encryption middleware: the envelope, key rotation, refusals (unknown key, another
strategy, tampering), which event fields are sealed, and AWS KMS data keys on moto."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

import wayline
from wayline.engine.ids import hash_step_id
from wayline.kms import KmsKeys
from wayline.middleware import DecryptionError, Encryption, StaticKeys, generate_key
from wayline.sdk.comm import CommHandler, CommRequest

K1, K2 = generate_key(), generate_key()
SECRET = {"ssn": "123-45-6789", "card": [4242, 4242]}


def test_a_value_round_trips_and_the_envelope_holds_no_plaintext() -> None:
    enc = Encryption(StaticKeys(("k1", K1)))
    envelope = enc.encrypt(SECRET)
    assert envelope["__ENCRYPTED__"] is True
    assert envelope["__STRATEGY__"] == "wayline/aes-256-gcm"
    assert envelope["kid"] == "k1"
    assert "123-45-6789" not in json.dumps(envelope)
    assert enc.decrypt(envelope) == SECRET
    assert enc.encrypt(SECRET)["data"] != envelope["data"]  # a fresh nonce every time


def test_rotation_encrypts_with_the_current_key_and_decrypts_with_any_known() -> None:
    old = Encryption(StaticKeys(("k1", K1)))
    sealed_old = old.encrypt(SECRET)
    rotated = Encryption(StaticKeys(("k2", K2), previous={"k1": K1}))
    assert rotated.decrypt(sealed_old) == SECRET
    assert rotated.encrypt(SECRET)["kid"] == "k2"
    dropped = Encryption(StaticKeys(("k2", K2)))
    with pytest.raises(DecryptionError, match="no key with id 'k1'"):
        dropped.decrypt(sealed_old)


def test_tampering_and_a_swapped_key_id_are_refused() -> None:
    enc = Encryption(StaticKeys(("k2", K2), previous={"k1": K1}))
    sealed = enc.encrypt(SECRET)
    raw = bytearray(base64.b64decode(sealed["data"]))
    raw[-1] ^= 1
    with pytest.raises(DecryptionError, match="altered"):
        enc.decrypt({**sealed, "data": base64.b64encode(bytes(raw)).decode()})
    with pytest.raises(DecryptionError, match="altered"):
        enc.decrypt({**sealed, "kid": "k1"})  # the key id is authenticated data


def test_another_strategy_is_refused_by_name() -> None:
    enc = Encryption(StaticKeys(("k1", K1)))
    theirs = {"__ENCRYPTED__": True, "__STRATEGY__": "inngest/libsodium", "data": "xyz"}
    with pytest.raises(DecryptionError, match="inngest/libsodium"):
        enc.decrypt_all({"a": [theirs]})


@pytest.mark.parametrize("key", [b"short", "not a key", base64.b64encode(b"x" * 16).decode()])
def test_a_key_that_is_not_256_bits_is_a_config_error(key: bytes | str) -> None:
    with pytest.raises(wayline.ConfigError, match="must be 32 bytes"):
        StaticKeys(("k", key))


def test_events_seal_the_encrypted_field_or_all_of_data() -> None:
    event = {"name": "user/signed-up", "data": {"user_id": 7, "encrypted": SECRET}}
    field = Encryption(StaticKeys(("k1", K1)))
    [sealed] = field.transform_send([event])
    assert sealed["data"]["user_id"] == 7
    assert sealed["data"]["encrypted"]["__ENCRYPTED__"] is True
    whole = Encryption(StaticKeys(("k1", K1)), event_field=None)
    [all_sealed] = whole.transform_send([event])
    assert set(all_sealed["data"]) == {"__ENCRYPTED__", "__STRATEGY__", "data", "kid"}
    assert field.decrypt_all(sealed) == event == whole.decrypt_all(all_sealed)
    untouched = {"name": "x", "data": {"user_id": 7}}
    assert field.transform_send([untouched]) == [untouched]


def test_decrypt_only_seals_nothing_but_still_reads() -> None:
    enc = Encryption(StaticKeys(("k1", K1)), decrypt_only=True)
    event = {"name": "x", "data": {"encrypted": SECRET}}
    assert enc.transform_send([event]) == [event]
    assert enc.decrypt_all({"data": Encryption(StaticKeys(("k1", K1))).encrypt(1)}) == {"data": 1}


def _serve(enc: Encryption) -> CommHandler:
    client = wayline.Wayline(app_id="shop", is_dev=True, environ={}, middleware=[enc])

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
    async def fn(ctx: wayline.Context) -> dict[str, Any]:
        profile = await ctx.step.run("load", lambda: SECRET)
        return {"seen": ctx.event.data["encrypted"], "profile": profile}

    return CommHandler(client, [fn], framework="test")


def _call(handler: CommHandler, event_data: Any, steps: dict[str, Any]) -> tuple[int, Any]:
    event = {"name": "x", "data": event_data}
    body = {"event": event, "events": [event], "steps": steps, "ctx": {"run_id": "r1"}}
    request = CommRequest("POST", "http://app/", {}, {"fnId": "shop-f"}, json.dumps(body).encode())
    response = handler.handle_sync(request)
    return response.status, json.loads(response.body)


def test_the_server_sees_ciphertext_and_the_function_sees_plaintext() -> None:
    enc = Encryption(StaticKeys(("k1", K1)))
    handler = _serve(enc)
    event_data = {"encrypted": enc.encrypt("hello")}
    status, ops = _call(handler, event_data, {})
    assert status == 206
    step_data = ops[0]["data"]
    assert "123-45-6789" not in json.dumps(ops)
    status, output = _call(handler, event_data, {hash_step_id("load"): {"data": step_data}})
    assert status == 200
    assert "123-45-6789" not in json.dumps(output)
    assert enc.decrypt(output) == {"seen": "hello", "profile": SECRET}


def test_a_value_the_app_cannot_decrypt_fails_the_request_retriably() -> None:
    sealed = Encryption(StaticKeys(("k9", generate_key()))).encrypt("x")
    status, body = _call(_serve(Encryption(StaticKeys(("k1", K1)))), {"encrypted": sealed}, {})
    assert status == 500
    assert "no key with id 'k9'" in body["message"]


# ----------------------------------------------------------------------------- KMS


@pytest.fixture
def kms() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("kms", region_name="eu-west-1")
        key_id = client.create_key(Description="wayline test")["KeyMetadata"]["KeyId"]
        yield client, key_id


def test_kms_data_keys_round_trip_in_another_process_with_one_decrypt_each(
    kms: tuple[Any, str],
) -> None:
    client, key_id = kms
    now = [0.0]
    writer = Encryption(KmsKeys(key_id, client=client, reuse_s=60, clock=lambda: now[0]))
    a, b = writer.encrypt(SECRET), writer.encrypt("b")
    assert a["dk"] == b["dk"]  # one data key reused within reuse_s
    now[0] = 61
    c = writer.encrypt("c")
    assert c["dk"] != a["dk"]
    assert "123-45-6789" not in json.dumps(a)

    calls: list[str] = []

    class Counting:
        def decrypt(self, **kwargs: Any) -> Any:
            calls.append(kwargs["KeyId"])
            return client.decrypt(**kwargs)

    reader = Encryption(KmsKeys(key_id, client=Counting()))  # a fresh process: no cache
    assert [reader.decrypt(v) for v in (a, b, c)] == [SECRET, "b", "c"]
    assert len(calls) == 2  # one KMS Decrypt per distinct data key

    with pytest.raises(DecryptionError, match="carries no data key"):
        reader.decrypt({k: v for k, v in a.items() if k != "dk"})
