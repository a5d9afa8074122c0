"""The SDK's own CPU per step: Wayline's call handler driven in-process, no server, no app
framework.

Checkpointed: calls that offer checkpointing (``ctx.fn_id``/``ctx.qi_id``) to an N-step
function; every step is POSTed to a minimal checkpoint endpoint (a subprocess that answers
``200`` with an empty body on keep-alive connections, so its CPU is not counted). Classic:
calls without the offer that replay N memos and then run one new step (the request a
long classic run makes at its end). This process's CPU time (``time.process_time``) over
the calls, minus that of a 0-step function / 0 memos, divided by the steps or memos.

    .venv/bin/python bench/sdk_step_cpu.py                 # the table
    .venv/bin/python bench/sdk_step_cpu.py --profile ck    # cProfile of one case
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import wayline
from wayline.engine.ids import hash_step_id
from wayline.sdk.comm import CommHandler, CommRequest

ENDPOINT = textwrap.dedent(
    """
    import asyncio, sys
    OK = b"HTTP/1.1 200 OK\\r\\ncontent-length: 0\\r\\n\\r\\n"
    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                length = 0
                for line in head.split(b"\\r\\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(OK)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()
    asyncio.run(main())
    """
)


def step(i: int) -> dict[str, Any]:
    return {"i": i}


def handler_for(api: str, steps: int) -> CommHandler:
    client = wayline.Wayline(app_id="cpu", is_dev=True, base_url=api)

    @client.function(id="steps", trigger=wayline.TriggerEvent(event="cpu/steps"))
    async def steps_async(ctx: wayline.Context) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i in range(steps):
            out = await ctx.step.run(f"step-{i}", step, i)
        return out

    @client.function(id="steps-sync", trigger=wayline.TriggerEvent(event="cpu/steps"))
    def steps_sync(ctx: wayline.SyncContext) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i in range(steps):
            out = ctx.step.run(f"step-{i}", step, i)
        return out

    return CommHandler(client, [steps_async, steps_sync], framework="bench")


def request(fn: str, run: int, *, checkpoint: bool, memos: int) -> CommRequest:
    ctx: dict[str, Any] = {"run_id": f"01RUN{run:021d}", "attempt": 0}
    if checkpoint:
        ctx.update(fn_id="fn-uuid", qi_id="qi-1")
    hashed = [hash_step_id(f"step-{i}") for i in range(memos)]
    body = {
        "event": {"name": "cpu/steps", "data": {}, "id": "e1", "ts": 1},
        "events": [{"name": "cpu/steps", "data": {}, "id": "e1", "ts": 1}],
        "steps": {h: {"data": {"i": i}} for i, h in enumerate(hashed)},
        "ctx": ctx,
    }
    return CommRequest(
        method="POST",
        url="http://127.0.0.1/api/inngest",
        headers={"x-request-id": f"req-{run}", "x-inngest-generation-id": "1"},
        query={"fnId": fn, "stepId": "step"},
        body=json.dumps(body).encode(),
    )


def cpu_of(handle: Callable[[CommRequest], int], requests: list[CommRequest]) -> float:
    handle(requests[0])  # warm: imports, adapters, the keep-alive connection
    started = time.process_time()
    for each in requests[1:]:
        handle(each)
    return (time.process_time() - started) / (len(requests) - 1)


def measure(api: str, case: str, n: int, calls: int) -> float:
    """CPU seconds per call of ``case`` with ``n`` steps (checkpointed) or memos (classic)."""
    checkpoint = case.startswith("ck")
    fn = "cpu-steps-sync" if case.endswith("sync") else "cpu-steps"
    handler = handler_for(api, n if checkpoint else n + 1)
    memos = 0 if checkpoint else n
    reqs = [request(fn, r, checkpoint=checkpoint, memos=memos) for r in range(calls)]
    expected = 200 if checkpoint else 206
    loop = asyncio.new_event_loop()

    def handle(req: CommRequest) -> int:
        if fn.endswith("sync"):
            res = handler.handle_sync(req)
        else:
            res = loop.run_until_complete(handler.handle(req))
        if res.status != expected:
            raise RuntimeError(f"{case}: HTTP {res.status} {res.body[:300]!r}")
        return res.status

    try:
        return cpu_of(handle, reqs)
    finally:
        loop.close()


CASES = {
    "ck": "checkpointed step, async def",
    "ck-sync": "checkpointed step, def",
    "classic": "replayed memo, async def",
    "classic-sync": "replayed memo, def",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="steps of a checkpointed call")
    parser.add_argument("--memos", type=int, default=200, help="memos of a classic call")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--profile", choices=sorted(CASES), help="cProfile one case instead")
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", ENDPOINT], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        api = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        if args.profile:
            n = args.steps if args.profile.startswith("ck") else args.memos
            profiler = cProfile.Profile()
            profiler.runcall(measure, api, args.profile, n, args.calls)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
            return
        print("| case | per call, 0 steps (us) | per call, N (us) | N | per step or memo (us) |")
        print("| --- | --- | --- | --- | --- |")
        for case, label in CASES.items():
            n = args.steps if case.startswith("ck") else args.memos
            calls = args.calls if case.startswith("ck") else max(20, args.calls // 5)
            empty = measure(api, case, 0, calls)
            full = measure(api, case, n, calls)
            print(
                f"| {label} | {empty * 1e6:.0f} | {full * 1e6:.0f} | {n} "
                f"| **{(full - empty) / n * 1e6:.1f}** |"
            )
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
