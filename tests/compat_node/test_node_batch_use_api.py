"""inngest-py's ``batch_that_needs_api`` scenario with the official npm SDK on ``wayline dev``:
the app's own ``inngest.send`` posts 8 events of 1 MiB in one request, ``batchEvents``
max size 8 gathers them into one run, and the SDK receives the 8 MiB batch by fetching
``GET /v0/runs/{id}/batch`` (the server inlines at most 4 MiB of state; the Python
twin in tests/compat/test_batch_use_api.py checks the ``use_api`` requests themselves).
"""

from __future__ import annotations

import httpx
import pytest

from compat.harness import COMPLETED

from .node_harness import APP_ID, NodeCompat

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]

MIB = 1024 * 1024


def test_8_one_mib_events_from_inngest_send_run_as_one_batch(node_compat: NodeCompat) -> None:
    app = node_compat.node_app
    assert app is not None
    sent = httpx.post(f"{app.url}/send-big", timeout=60.0)
    assert sent.status_code == 200, sent.text
    ids = sent.json()["ids"]
    assert len(ids) == 8

    run = node_compat.wait_run(ids[0], status=COMPLETED, timeout=60.0)
    assert run["function_id"] == f"{APP_ID}-big-batch"
    assert run["output"] == {"events": 8}
    record = node_compat.app_run(run["run_id"])
    assert record["events"] == [[n, MIB] for n in range(8)]
