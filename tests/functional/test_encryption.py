"""Encryption through a real ``wayline dev``: the server's SQLite files hold no plaintext of
step outputs, the function's output or the sent events' encrypted fields, while the app sees
plaintext; and a key rotation in the middle of a run (old memos decrypt with the previous key,
new values use the current one)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

import wayline
from compat.harness import COMPLETED, Compat, start_web_app
from wayline.middleware import DataKey, Encryption, StaticKeys, generate_key

from .support import build_web_app, wait_for_step

K1, K2 = generate_key(), generate_key()


class Deployed:
    """The app's keys, swapped by the test as a redeploy with rotated keys would."""

    def __init__(self, keys: StaticKeys) -> None:
        self.keys = keys

    def encryption_key(self) -> DataKey:
        return self.keys.encryption_key()

    def decryption_key(self, key_id: str, wrapped: str | None) -> bytes:
        return self.keys.decryption_key(key_id, wrapped)


def _database_bytes(db: Path) -> bytes:
    # The WAL holds recent writes until a checkpoint: read every file of the database.
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_the_server_stores_only_ciphertext_and_keys_rotate_mid_run(compat: Compat) -> None:
    deployed = Deployed(StaticKeys(("k1", K1)))
    encryption = Encryption(deployed)
    client = wayline.Wayline(
        app_id="enc", is_dev=True, base_url=compat.server_url, middleware=[encryption]
    )
    key = uuid.uuid4().hex
    secrets = {
        "trigger": f"trigger-ssn-{key}",
        "before": f"before-card-{key}",
        "after": f"after-card-{key}",
        "go": f"go-token-{key}",
        "sent": f"sent-email-{key}",
    }

    @client.function(id="profile", trigger=wayline.TriggerEvent(event="enc/start"))
    async def profile(ctx: wayline.Context) -> dict[str, Any]:
        before = await ctx.step.run("before", lambda: {"card": secrets["before"]})
        go = await ctx.step.wait_for_event("go", event="enc/go", match="data.key", timeout="1m")
        assert go is not None
        after = await ctx.step.run("after", lambda: {"card": secrets["after"]})
        await ctx.step.send_event(
            "notify",
            wayline.Event(name="enc/notify", data={"key": key, "encrypted": secrets["sent"]}),
        )
        return {
            "trigger": ctx.event.data["encrypted"],
            "before": before,
            "go": go.data["encrypted"],
            "after": after,
        }

    web_app, ids = build_web_app("fastapi", client, [profile])
    compat.serve_app(web_app, app_id="enc", function_ids=ids, retry_interval=0.2)
    [event_id] = client.send(
        wayline.Event(name="enc/start", data={"key": key, "encrypted": secrets["trigger"]})
    )
    wait_for_step(compat, event_id, "enc-profile", "go")

    # A redeploy with a new current key; the old one is still known for what it sealed.
    deployed.keys = StaticKeys(("k2", K2), previous={"k1": K1})
    client.send(wayline.Event(name="enc/go", data={"key": key, "encrypted": secrets["go"]}))
    run = compat.wait_run(event_id, "enc-profile", status=COMPLETED)

    sealed_output = run["output"]
    assert sealed_output["__ENCRYPTED__"] is True and sealed_output["kid"] == "k2"
    assert encryption.decrypt(sealed_output) == {
        "trigger": secrets["trigger"],
        "before": {"card": secrets["before"]},
        "go": secrets["go"],
        "after": {"card": secrets["after"]},
    }
    kids = {s["name"]: (s.get("output") or {}).get("kid") for s in run["steps"]}
    assert kids["before"] == "k1" and kids["after"] == "k2"
    notify = compat.list_events("enc/notify")
    assert notify and notify[0]["data"]["encrypted"]["kid"] == "k2"

    # The dashboard shows the sealed values as they are and does not fail on them.
    run_id = run["run_id"] if "run_id" in run else run["id"]
    page = compat.http.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert "__ENCRYPTED__" in page.text and secrets["after"] not in page.text

    stored = _database_bytes(compat.db_path)
    assert key.encode() in stored  # the check can see plaintext: unencrypted fields are there
    for what, secret in secrets.items():
        assert secret.encode() not in stored, f"the {what} secret is stored in plaintext"


def test_invoke_data_is_sealed_by_the_caller_and_opened_by_the_invoked_function(
    compat: Compat,
) -> None:
    """Same app and another app holding the same key: the server sees ciphertext only."""
    keys = StaticKeys(("k1", K1))
    client = wayline.Wayline(
        app_id="enc", is_dev=True, base_url=compat.server_url, middleware=[Encryption(keys)]
    )
    peer = wayline.Wayline(
        app_id="enc-peer", is_dev=True, base_url=compat.server_url, middleware=[Encryption(keys)]
    )
    key = uuid.uuid4().hex
    secrets = {"same": f"same-app-ssn-{key}", "peer": f"peer-app-ssn-{key}"}
    never = wayline.TriggerEvent(event="enc/never")

    @client.function(id="child", trigger=never)
    def child(ctx: wayline.SyncContext) -> dict[str, Any]:
        return {"child_saw": ctx.event.data["encrypted"], "key": ctx.event.data["key"]}

    @peer.function(id="child", trigger=never)
    def peer_child(ctx: wayline.SyncContext) -> dict[str, Any]:
        return {"peer_saw": ctx.event.data["encrypted"], "key": ctx.event.data["key"]}

    @client.function(id="parent", trigger=wayline.TriggerEvent(event="enc/parent"))
    def parent(ctx: wayline.SyncContext) -> dict[str, Any]:
        same = ctx.step.invoke(
            "same", function=child, data={"key": key, "encrypted": secrets["same"]}
        )
        other = ctx.step.invoke_by_id(
            "peer", function_id="enc-peer-child", data={"key": key, "encrypted": secrets["peer"]}
        )
        return {**same, **other}

    peer_app, _ = build_web_app("fastapi", peer, [peer_child])
    peer_server = start_web_app(peer_app)
    try:
        web_app, ids = build_web_app("fastapi", client, [child, parent])
        compat.serve_app(web_app, app_id="enc", function_ids=ids, retry_interval=0.2)
        # The peer syncs itself with the server, as a deployed app does on its PUT.
        synced = httpx.put(f"http://127.0.0.1:{peer_server.port}/api/inngest", timeout=10)
        assert synced.status_code == 200, synced.text
        [event_id] = client.send(wayline.Event(name="enc/parent", data={"key": key}))
        run = compat.wait_run(event_id, "enc-parent", status=COMPLETED)
    finally:
        peer_server.stop()

    assert Encryption(keys).decrypt(run["output"]) == {
        "child_saw": secrets["same"],
        "peer_saw": secrets["peer"],
        "key": key,
    }
    invoked = compat.list_events("inngest/function.invoked")
    assert invoked and all(e["data"]["encrypted"]["__ENCRYPTED__"] for e in invoked)
    stored = _database_bytes(compat.db_path)
    assert key.encode() in stored
    for what, secret in secrets.items():
        assert secret.encode() not in stored, f"the {what} invoke data is stored in plaintext"
