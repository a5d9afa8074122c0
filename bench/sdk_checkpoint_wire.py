"""SDK calls and bytes of an N-step run on Wayline's own SDK on ``wayline dev``, with the
SDK's checkpointing on and off (``Wayline(checkpointing=...)``), counted at the server's edge.

A FastAPI app in this process (N sequential ``step.run``s, each returning ~100 bytes, as
bench/peers W4) and a real ``wayline dev`` subprocess, with recording proxies on both
directions (server -> app calls, app -> server checkpoints; tests/sdk/fault_proxy.py).

    .venv/bin/python bench/sdk_checkpoint_wire.py --steps 10 200
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import fastapi

import wayline
import wayline.fastapi

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]  # the compat harness and the recording proxy

from compat.harness import COMPLETED, Compat  # noqa: E402
from sdk.fault_proxy import FaultProxy  # noqa: E402


def body(i: int) -> dict[str, object]:
    return {"i": i, "pad": "x" * 88}


def measure(steps: int, *, checkpointing: bool) -> str:
    compat = Compat(Path(tempfile.mkdtemp(prefix="sdk-ckpt-wire-")))
    api = FaultProxy(compat.server_url)
    settings = wayline.Checkpointing(enabled=checkpointing, max_runtime=timedelta(minutes=10))
    client = wayline.Wayline(app_id="wire", is_dev=True, base_url=api.url, checkpointing=settings)

    @client.function(id="many", trigger=wayline.TriggerEvent(event="wire/many"), retries=0)
    async def many(ctx: wayline.Context) -> int:
        for i in range(int(ctx.event.data["n"])):
            await ctx.step.run(f"s{i}", body, i)
        return steps

    app = fastapi.FastAPI()
    handler = wayline.fastapi.serve(app, client, [many])
    fronts: list[FaultProxy] = []

    def front(port: int) -> FaultProxy:
        fronts.append(FaultProxy(f"http://127.0.0.1:{port}"))
        return fronts[0]

    try:
        compat.serve_app(app, app_id="wire", function_ids=handler.function_ids, front=front)
        started = time.monotonic()
        run = compat.wait_run(compat.send("wire/many", {"n": steps}), status=COMPLETED, timeout=900)
        wall = time.monotonic() - started
        calls = fronts[0].calls(run["run_id"])
        checkpoints = api.checkpoints(run["run_id"])
    finally:
        compat.close()
        api.stop()
        client.close()
    return (
        f"| {steps} | {'on' if checkpointing else 'off'} | {len(calls)} "
        f"| {sum(c.request_bytes for c in calls)} | {len(checkpoints)} "
        f"| {sum(c.request_bytes for c in checkpoints)} | {wall:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 200])
    args = parser.parse_args()
    print(
        "| steps | checkpointing | SDK calls | call request bytes | checkpoints "
        "| checkpoint bytes | wall s |"
    )
    print("|---|---|---|---|---|---|---|")
    for steps in args.steps:
        for checkpointing in (False, True):
            print(measure(steps, checkpointing=checkpointing), flush=True)


if __name__ == "__main__":
    main()
