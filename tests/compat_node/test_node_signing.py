"""Request signing with the official JS SDK in cloud mode (it then verifies signatures).

The app (``NODE_COMPAT_CLOUD=1``) gets ``INNGEST_SIGNING_KEY``; the server gets
``--signing-key``. The JS SDK authenticates its out-of-band sync with
``Authorization: Bearer signkey-test-<sha256>`` (it keeps the key's prefix),
and refuses any call whose ``X-Inngest-Signature`` it cannot verify.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import httpx
import pytest

from compat.harness import COMPLETED
from wayline.signing import canonical_json, sign

from .node_harness import APP_ID, NodeCompat, step_counts

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]

SIGNING_KEY = "signkey-test-" + "12ab" * 16
OTHER_KEY = "signkey-test-" + "34cd" * 16


def _call_body(run_id: str) -> dict[str, Any]:
    """A minimal call request for ``no-steps`` (the shape the server sends)."""
    event = {"name": "node/no-steps", "data": {}, "user": {}, "id": "evt-1", "ts": 1}
    return {
        "event": event,
        "events": [event],
        "steps": {},
        "version": -1,
        "use_api": False,
        "ctx": {
            "run_id": run_id,
            "attempt": 0,
            "max_attempts": 1,
            "env": "",
            "step_id": "step",
            "disable_immediate_execution": False,
            "use_api": False,
            "stack": {"stack": [], "current": 0},
        },
    }


def _post_call(node_compat: NodeCompat, run_id: str, key: str | None) -> httpx.Response:
    assert node_compat.node_app is not None
    body = canonical_json(_call_body(run_id))
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-inngest-signature"] = sign(body, key, unix_s=int(time.time()))
    query = urllib.parse.urlencode({"fnId": f"{APP_ID}-no-steps", "stepId": "step"})
    return httpx.post(
        f"{node_compat.node_app.serve_url}?{query}", content=body, headers=headers, timeout=10.0
    )


def test_signed_run_completes(node_compat_unstarted: NodeCompat) -> None:
    node_compat = node_compat_unstarted
    # Registration succeeding proves the server accepted the SDK's bearer token.
    node_compat.start(signing_key=SIGNING_KEY)

    run = node_compat.wait_run(node_compat.send("node/two-steps"), status=COMPLETED)

    assert run["output"] == {"a": 1, "b": {"prev": 1, "value": 2}}
    record = node_compat.app_run(run["run_id"])
    assert step_counts(record) == {"a": 1, "b": 1}
    # One call: both steps were checkpointed with the SDK's hashed-key bearer token
    # (a refused checkpoint would have made the SDK fall back to one call per step).
    assert record["handler"] == 1


def test_sdk_verifies_the_server_signature_scheme(node_compat_unstarted: NodeCompat) -> None:
    node_compat = node_compat_unstarted
    node_compat.start(signing_key=SIGNING_KEY)

    unsigned = _post_call(node_compat, "run-unsigned", None)
    wrong = _post_call(node_compat, "run-wrong-key", OTHER_KEY)
    good = _post_call(node_compat, "run-good-key", SIGNING_KEY)

    assert unsigned.status_code == 401, unsigned.text
    assert wrong.status_code == 401, wrong.text
    assert good.status_code == 200, good.text
    assert good.json() == {"hello": "world"}
    runs = node_compat.app_runs()
    assert "run-good-key" in runs
    assert "run-unsigned" not in runs
    assert "run-wrong-key" not in runs
