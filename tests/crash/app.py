"""The crash test's app: an official inngest-py FastAPI app run as its own process, so the
test can ``kill -9`` it. Every step body appends one line to ``--log`` (O_APPEND, so lines
from a killed process are whole), and step "a" returns a fresh random token: a memo that
was overwritten by a re-executed step would show a different token at the end.

    python tests/crash/app.py --port P --server URL --log FILE
"""

from __future__ import annotations

import argparse
import datetime
import os
import uuid

import fastapi
import inngest
import inngest.fast_api
import uvicorn


def build(server: str, log_path: str) -> fastapi.FastAPI:
    client = inngest.Inngest(
        app_id="crash",
        is_production=False,
        api_base_url=server,
        event_api_base_url=server,
    )

    def executed(step: str, n: int) -> None:
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{step} {n}\n".encode())
        finally:
            os.close(fd)

    def run_step(step: str, n: int, value: str) -> str:
        executed(step, n)
        return value

    @client.create_function(
        fn_id="child", retries=20, trigger=inngest.TriggerEvent(event="crash/never")
    )
    def child(ctx: inngest.ContextSync) -> str:
        n = int(str(ctx.event.data["n"]))
        return ctx.step.run("c", run_step, "c", n, f"c-{n}")

    @client.create_function(
        fn_id="parent", retries=20, trigger=inngest.TriggerEvent(event="crash/start")
    )
    def parent(ctx: inngest.ContextSync) -> list[object]:
        n = int(str(ctx.event.data["n"]))
        a = ctx.step.run("a", run_step, "a", n, f"a-{n}-{uuid.uuid4().hex}")
        ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        go = ctx.step.wait_for_event(
            "go",
            event="crash/go",
            if_exp=f"async.data.n == {n}",
            timeout=datetime.timedelta(seconds=3),
        )
        c = ctx.step.invoke("child", function=child, data={"n": n})
        b = ctx.step.run("b", run_step, "b", n, f"b-{n}")
        return [a, go is not None, c, b]

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [parent, child])
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    app = build(args.server, args.log)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
