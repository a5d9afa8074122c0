"""The checkpoint crash test's app: a Wayline SDK FastAPI app run as its own process, so the
test can ``kill -9`` it while a checkpointing call is open. Every step body appends its name
to ``--log`` (O_APPEND, so lines from a killed process are whole) and returns a fresh random
token: a memo overwritten by a re-executed step would show a different token at the end.
Step ``s<--stall>`` stalls the first time it runs: until the test kills the app, or until
the file ``--release`` exists.

    python tests/crash/ckpt_app.py --port P --server URL --log FILE --stall 5 --marker FILE
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path

import fastapi
import uvicorn

import wayline
import wayline.fastapi

STEPS = 10


def build(
    server: str, log_path: str, stall: int, marker: Path, release: Path | None
) -> fastapi.FastAPI:
    client = wayline.Wayline(app_id="ckpt-crash", is_dev=True, base_url=server)

    def body(i: int) -> str:
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"s{i}\n".encode())
        finally:
            os.close(fd)
        if i == stall and not marker.exists():
            marker.touch()
            deadline = time.monotonic() + 600  # in flight until killed or released
            while time.monotonic() < deadline and not (release and release.exists()):
                time.sleep(0.05)
        return f"s{i}-{uuid.uuid4().hex}"

    @client.function(id="steps", retries=20, trigger=wayline.TriggerEvent(event="ckpt-crash/start"))
    def steps(ctx: wayline.SyncContext) -> list[str]:
        return [ctx.step.run(f"s{i}", body, i) for i in range(STEPS)]

    app = fastapi.FastAPI()
    wayline.fastapi.serve(app, client, [steps])
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--stall", type=int, required=True)
    parser.add_argument("--marker", required=True)
    parser.add_argument("--release")
    args = parser.parse_args()
    release = Path(args.release) if args.release else None
    app = build(args.server, args.log, args.stall, Path(args.marker), release)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
