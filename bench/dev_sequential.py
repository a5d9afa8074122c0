"""Benchmark: a 10-step sequential function through `wayline dev` with the official SDK.

Not a test: it prints numbers and, with ``--record``, appends them to bench/RESULTS.md.

What it measures (all over real loopback HTTP, the dev server in its own process, the app
served by uvicorn in this process):

* throughput: N runs started by one event request, until all are Completed: runs/s and
  steps/s;
* latency: sequential single runs (no other load): median and p90 from the event POST to
  the run's ``ended_at`` as recorded by the server;
* baseline, in the same process: median time of one direct POST to the SDK endpoint that
  executes a no-step function (what one SDK call costs with no engine at all), and the
  ratio of the engine's per-call cost to it.

* server CPU per step: the dev server process's user + system CPU seconds (its own
  ``/proc/<pid>/stat``, children excluded) spent during the throughput phase, divided by
  the steps run (``--cpu``; W2-like: ``--runs 500``).

    .venv/bin/python bench/dev_sequential.py [--runs 200] [--latency-runs 30] [--cpu] [--record]

``WAYLINE_BENCH_WRAPPER`` prefixes the dev server's command (split like a shell), e.g.
``"py-spy record -o /tmp/dev.svg --"``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import uvicorn

STEPS = 10
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_app(server_url: str) -> tuple[fastapi.FastAPI, inngest.Inngest]:
    client = inngest.Inngest(
        app_id="bench", is_production=False, api_base_url=server_url, event_api_base_url=server_url
    )

    @client.create_function(
        fn_id="ten-steps", trigger=inngest.TriggerEvent(event="bench/go"), retries=0
    )
    async def ten_steps(ctx: inngest.Context) -> dict[str, int]:
        total = 0
        for i in range(STEPS):
            total += await ctx.step.run(f"step-{i}", lambda i=i: i)  # type: ignore[misc]
        return {"total": total}

    @client.create_function(
        fn_id="no-steps", trigger=inngest.TriggerEvent(event="bench/none"), retries=0
    )
    async def no_steps(ctx: inngest.Context) -> dict[str, int]:
        return {"total": 0}

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [ten_steps, no_steps])
    return app, client


def start_app(app: fastapi.FastAPI, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server


def start_dev(port: int, app_url: str, db: Path) -> subprocess.Popen[bytes]:
    wrapper = os.environ.get("WAYLINE_BENCH_WRAPPER")  # e.g. a profiler command prefix
    cmd = [
        *(shlex.split(wrapper) if wrapper else []),
        sys.executable,
        "-m",
        "wayline",
        "dev",
        "--port",
        str(port),
        "--db",
        str(db),
        "-u",
        app_url,
    ]
    env = {**os.environ, "WAYLINE_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def runs_of(http: httpx.Client, event_id: str) -> list[dict[str, Any]]:
    return list(http.get(f"/v1/events/{event_id}/runs").json()["data"])


def parse_iso(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (Linux ``/proc``), children excluded."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def server_pid(dev: subprocess.Popen[bytes]) -> int:
    """The dev server's own process: the wrapper's child when a wrapper runs it."""
    if not os.environ.get("WAYLINE_BENCH_WRAPPER"):
        return dev.pid
    children = Path(f"/proc/{dev.pid}/task/{dev.pid}/children").read_text().split()
    return int(children[0]) if children else dev.pid


def throughput(http: httpx.Client, runs: int) -> dict[str, float]:
    t0 = time.monotonic()
    ids = http.post("/e/bench", json=[{"name": "bench/go"} for _ in range(runs)]).json()["ids"]
    # Runs finish roughly in start order: poll the oldest unfinished one only, so the
    # polling adds ~20 requests/s to the server's work, not one per run per round.
    pending = list(ids)
    while pending:
        found = runs_of(http, pending[0])
        if found and found[0]["status"] == "Completed":
            pending.pop(0)
            continue
        if found and found[0]["status"] == "Failed":
            raise RuntimeError(f"run failed: {found[0]}")
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    return {
        "runs": runs,
        "seconds": elapsed,
        "runs_per_s": runs / elapsed,
        "steps_per_s": runs * STEPS / elapsed,
    }


def latency(http: httpx.Client, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        sent = time.time()
        (event_id,) = http.post("/e/bench", json={"name": "bench/go"}).json()["ids"]
        box: dict[str, Any] = {}

        def done(event_id: str = event_id, box: dict[str, Any] = box) -> bool:
            found = runs_of(http, event_id)
            box["run"] = found[0] if found else None
            return bool(found) and found[0]["status"] == "Completed"

        wait_for(done, 30, "run did not complete")
        samples.append(parse_iso(box["run"]["ended_at"]) - sent)
    return samples


def baseline_call(app_port: int, count: int) -> list[float]:
    """One direct SDK call (no engine): POST a call request for the no-step function."""
    body = {
        "event": {"name": "bench/none", "data": {}, "user": {}, "id": "x", "ts": 1},
        "events": [],
        "steps": {},
        "version": 2,
        "use_api": False,
        "ctx": {
            "run_id": "01BENCH",
            "attempt": 0,
            "max_attempts": 1,
            "env": "dev",
            "step_id": "step",
            "disable_immediate_execution": False,
            "use_api": False,
            "stack": {"stack": [], "current": 0},
        },
    }
    url = f"http://127.0.0.1:{app_port}/api/inngest?fnId=bench-no-steps&stepId=step"
    samples = []
    with httpx.Client() as direct:
        for _ in range(count):
            t0 = time.perf_counter()
            resp = direct.post(url, json=body)
            samples.append(time.perf_counter() - t0)
            assert resp.status_code == 200, resp.text
    return samples


def p(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--record", action="store_true")
    parser.add_argument(
        "--cpu", action="store_true", help="report the server's CPU ms per step (throughput)"
    )
    args = parser.parse_args()

    dev_port, app_port = free_port(), free_port()
    server_url = f"http://127.0.0.1:{dev_port}"
    app, _ = build_app(server_url)
    app_server = start_app(app, app_port)
    with tempfile.TemporaryDirectory() as tmp:
        dev = start_dev(dev_port, f"http://127.0.0.1:{app_port}/api/inngest", Path(tmp) / "b.db")
        try:
            with httpx.Client(base_url=server_url, timeout=30) as http:
                wait_for(lambda: _functions_ready(http), 30, "app did not sync")
                latency(http, 3)  # warm-up
                lat = latency(http, args.latency_runs) or [float("nan")]
                base = baseline_call(app_port, 200)
                pid = server_pid(dev)
                cpu_before = cpu_seconds(pid)
                thr = throughput(http, args.runs)
                cpu = cpu_seconds(pid) - cpu_before
        finally:
            # A profiler wrapper writes its report on SIGINT.
            wrapped = bool(os.environ.get("WAYLINE_BENCH_WRAPPER"))
            dev.send_signal(signal.SIGINT if wrapped else signal.SIGTERM)
            dev.wait(60)
            app_server.should_exit = True
    calls_per_run = STEPS + 1
    result = {
        **thr,
        "latency_median_ms": statistics.median(lat) * 1000,
        "latency_p90_ms": p(lat, 0.9) * 1000,
        "baseline_sdk_call_median_ms": statistics.median(base) * 1000,
        "engine_ms_per_call": statistics.median(lat) * 1000 / calls_per_run,
    }
    if args.cpu:
        result["server_cpu_s"] = cpu
        result["server_cpu_ms_per_step"] = cpu * 1000 / (thr["runs"] * STEPS)
    result["per_call_ratio_to_baseline"] = (
        result["engine_ms_per_call"] / result["baseline_sdk_call_median_ms"]
    )
    print(json.dumps(result, indent=2))
    if args.record:
        record(result, args)


def _functions_ready(http: httpx.Client) -> bool:
    try:
        resp = http.get("/v1/apps/bench/functions")
    except httpx.TransportError:
        return False
    return resp.status_code == 200 and len(resp.json()["data"]) == 2


def record(result: dict[str, float], args: argparse.Namespace) -> None:
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"inngest {importlib.metadata.version('inngest')}"
    )
    line = (
        f"| {dt.date.today().isoformat()} | {machine} | {int(result['runs'])} "
        f"| {result['runs_per_s']:.1f} | {result['steps_per_s']:.0f} "
        f"| {result['latency_median_ms']:.1f} | {result['latency_p90_ms']:.1f} "
        f"| {result['baseline_sdk_call_median_ms']:.2f} | {result['engine_ms_per_call']:.2f} "
        f"| {result['per_call_ratio_to_baseline']:.1f}x |\n"
    )
    with (ROOT / "bench" / "RESULTS.md").open("a") as fh:
        fh.write(line)


if __name__ == "__main__":
    main()
