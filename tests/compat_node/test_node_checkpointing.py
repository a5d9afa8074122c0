"""npm ``inngest`` v4 async checkpointing against ``wayline dev`` (issue 10, item 1).

The server sends ``ctx.fn_id`` / ``ctx.qi_id``; the SDK then runs consecutive steps in
one call and reports each to ``POST /v1/checkpoint/{run}/async``. Both directions pass
through counting proxies (``start(count_traffic=True)``), so the tests count, at the
server's edge, the SDK calls and the checkpoints a run took.
"""

from __future__ import annotations

from typing import Any

import pytest

from compat.harness import COMPLETED, step_named

from .counting_proxy import CountingProxy, Exchange
from .node_harness import NodeCompat, step_counts

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]

CHECKPOINT = "/v1/checkpoint/"


@pytest.fixture
def counted(node_compat_unstarted: NodeCompat) -> NodeCompat:
    node_compat_unstarted.start(count_traffic=True)
    return node_compat_unstarted


def _proxies(compat: NodeCompat) -> tuple[CountingProxy, CountingProxy]:
    assert compat.api_proxy is not None and compat.app_proxy is not None
    return compat.api_proxy, compat.app_proxy


def _calls(compat: NodeCompat) -> list[Exchange]:
    """SDK calls (server -> app) made so far."""
    return _proxies(compat)[1].exchanges(method="POST", path_part="/api/inngest")


def _checkpoints(compat: NodeCompat, run_id: str) -> list[Exchange]:
    return _proxies(compat)[0].exchanges(method="POST", path_part=f"{CHECKPOINT}{run_id}/async")


def _run(compat: NodeCompat, event: str, data: dict[str, Any], status: str) -> dict[str, Any]:
    return compat.wait_run(compat.send(event, data), status=status)


def test_sequential_steps_take_one_call_and_one_checkpoint_each(counted: NodeCompat) -> None:
    run = _run(counted, "node/many", {"n": 10}, COMPLETED)

    assert run["output"] == {"n": 10, "total": 45}
    assert [s["name"] for s in run["steps"]] == [f"s{i}" for i in range(10)]
    assert step_named(run, "s3")["output"] == {"i": 3, "pad": ""}
    checkpoints = _checkpoints(counted, run["run_id"])
    assert [c.status for c in checkpoints] == [200] * 10
    assert len(_calls(counted)) == 1
    record = counted.app_run(run["run_id"])
    assert record["handler"] == 1
    assert step_counts(record) == {f"s{i}": 1 for i in range(10)}
