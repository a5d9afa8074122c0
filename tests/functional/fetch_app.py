"""The app of ``test_fetch.py``, run as its own process so the test can kill and restart it.

``python -m functional.fetch_app <port> <server_url> <target_url>`` serves one function on
FastAPI: it fetches the target durably and returns what it got. Each start appends a line to
``$FETCH_APP_LOG`` so the test can tell which process used the memo.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import fastapi
import uvicorn

import wayline
import wayline.fastapi


def build(server_url: str, target: str) -> fastapi.FastAPI:
    client = wayline.Wayline(app_id="fetch", is_dev=True, base_url=server_url)

    @client.function(
        id="durable",
        trigger=wayline.TriggerEvent(event="fetch/durable"),
        retries=20,
        # While the app is down each call fails: 20 tries 1 s apart outlast a slow restart.
        backoff=wayline.Backoff(initial="1s", factor=1, max="1s"),
    )
    def durable(ctx: wayline.SyncContext) -> dict[str, Any]:
        token = os.environ["FETCH_TOKEN"]  # a credential the server must not keep
        res = ctx.step.fetch(
            "slow",
            f"{target}/slow",
            method="POST",
            json={"q": 1},
            headers={"authorization": f"Bearer {token}"},
        )
        used_by = ctx.step.run("used-by", lambda: os.getpid())
        return {"status": res.status, "body": res.json(), "used_by": used_by}

    @client.function(
        id="checked",
        trigger=wayline.TriggerEvent(event="fetch/checked"),
        retries=2,
    )
    def checked(ctx: wayline.SyncContext) -> dict[str, Any]:
        url = str(ctx.event.data["url"])
        try:
            res = ctx.step.fetch("call", url)
        except wayline.StepError as exc:
            return {"error": exc.name, "message": str(exc)}
        return {"status": res.status, "body": res.body}

    app = fastapi.FastAPI()
    wayline.fastapi.serve(app, client, [durable, checked])
    return app


if __name__ == "__main__":
    port, server_url, target = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with Path(os.environ["FETCH_APP_LOG"]).open("a") as log:
        log.write(f"{os.getpid()}\n")
    uvicorn.run(build(server_url, target), host="127.0.0.1", port=port, log_level="warning")
