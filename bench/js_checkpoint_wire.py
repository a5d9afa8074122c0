"""SDK calls and bytes of an N-step npm ``inngest`` v4 run on ``wayline dev``, with
checkpointing on and off (``WAYLINE_CHECKPOINTING=0``), counted at the server's edge.

The Node app of tests/compat_node (``many-steps``: N sequential ``step.run``s) and a real
``wayline dev`` subprocess, with counting proxies on both directions (server -> app calls,
app -> server checkpoints). Needs node >= 20 and ``npm ci`` in tests/compat_node/app.

    .venv/bin/python bench/js_checkpoint_wire.py --steps 10 200
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]  # the compat_node harness and its proxy

from compat.harness import COMPLETED  # noqa: E402
from compat_node.node_harness import APP_DIR, NodeCompat  # noqa: E402


def measure(steps: int, *, checkpointing: bool) -> str:
    os.environ["WAYLINE_CHECKPOINTING"] = "1" if checkpointing else "0"
    harness = NodeCompat(Path(tempfile.mkdtemp()), APP_DIR)
    try:
        harness.start(count_traffic=True)
        assert harness.api_proxy is not None and harness.app_proxy is not None
        started = time.monotonic()
        harness.wait_run(harness.send("node/many", {"n": steps}), status=COMPLETED, timeout=900)
        wall = time.monotonic() - started
        calls = harness.app_proxy.exchanges(method="POST", path_part="/api/inngest")
        checkpoints = harness.api_proxy.exchanges(method="POST", path_part="/v1/checkpoint/")
    finally:
        harness.close()
    return (
        f"| {steps} | {'on' if checkpointing else 'off'} | {len(calls)} "
        f"| {sum(c.request_bytes for c in calls)} | {sum(c.response_bytes for c in calls)} "
        f"| {len(checkpoints)} | {sum(c.request_bytes for c in checkpoints)} | {wall:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 200])
    args = parser.parse_args()
    print(
        "| steps | checkpointing | SDK calls | call request bytes | call response bytes "
        "| checkpoints | checkpoint bytes | wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for steps in args.steps:
        for checkpointing in (False, True):
            print(measure(steps, checkpointing=checkpointing), flush=True)


if __name__ == "__main__":
    main()
