"""Benchmark: peak memory while the event API receives a 16 MiB request.

Not a test: it prints numbers and, with ``--record``, appends them to bench/RESULTS.md.

Two measurements, each in a fresh process:

* ``wayline dev`` (its own process, SQLite on disk): the server's peak RSS (``VmHWM``
  from /proc) when idle, then after it received, validated and stored one 16 MiB
  request (the cap) made of events just under the per-event limit, and after one of
  5 000 small events (the count cap, ~16 MiB too);
* the parser alone (``EventStream`` fed 64 KiB chunks, as the server reads them) against
  the old way (one ``json.loads`` of the whole body, then validation): peak RSS above
  a baseline taken with the body already in memory (the peak is reset after building it).

    .venv/bin/python bench/event_body_memory.py [--record]
    .venv/bin/python bench/event_body_memory.py --cpu   # parse time of worst shapes
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from wayline.engine import json_input
from wayline.engine.event_stream import EventStream
from wayline.engine.events import MAX_EVENT_BYTES, MAX_REQUEST_BYTES, validate_event

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 64 * 1024


def big_events_body() -> bytes:
    """16 MiB exactly: 5 events just under 3 MiB (strings), padded with spaces."""
    part = MAX_EVENT_BYTES - 1024
    events = [
        json.dumps({"name": f"bench/e{i}", "data": {"b": ""}}, separators=(",", ":"))
        for i in range(MAX_REQUEST_BYTES // (part + 1))
    ]
    sized = [e.replace('""', '"' + "x" * (part - len(e)) + '"') for e in events]
    body = ("[" + ",".join(sized) + "]").encode()
    return body[:-1] + b" " * (MAX_REQUEST_BYTES - len(body)) + b"]"


def many_events_body() -> bytes:
    """5 000 events of structured data (numbers, nested objects), about 16 MiB."""
    item = {"sku": "A-1", "qty": 3, "price": 9.99, "tags": ["x", "y"]}
    events = [{"name": "bench/many", "data": {"n": i, "items": [item] * 62}} for i in range(5000)]
    return json.dumps(events, separators=(",", ":")).encode()


def peak_rss_kib() -> int:
    return vm_hwm_kib(os.getpid())


def reset_peak() -> None:
    """Start the peak over from the current RSS (Linux: ``5`` to clear_refs), so what
    building the body cost is not counted."""
    Path("/proc/self/clear_refs").write_text("5")


def parse_in_process(kind: str, how: str) -> None:
    """Child process: print the peak RSS growth (KiB) of parsing one body ``how``."""
    body = big_events_body() if kind == "big" else many_events_body()
    reset_peak()
    base = peak_rss_kib()
    if how == "stream":
        stream = EventStream()
        for start in range(0, len(body), CHUNK):
            stream.feed(body[start : start + CHUNK])
        count = len(stream.finish())
    else:
        decoded = json_input.decode(body)
        assert isinstance(decoded, list)
        count = len([validate_event(e, index=i) for i, e in enumerate(decoded)])
    print(
        json.dumps({"events": count, "bytes": len(body), "peak_growth_kib": peak_rss_kib() - base})
    )


def child(kind: str, how: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, how],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, int] = json.loads(out)
    return result


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc status")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dev_server_peaks() -> dict[str, int]:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wayline", "dev", "--port", str(port), "--db", f"{tmp}/b.db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=120) as http:
                for _ in range(200):
                    try:
                        if http.get("/health").status_code < 500:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                idle = vm_hwm_kib(proc.pid)
                resp = http.post("/e/bench", content=big_events_body())
                resp.raise_for_status()
                after_big = vm_hwm_kib(proc.pid)
                resp = http.post("/e/bench", content=many_events_body())
                resp.raise_for_status()
                after_many = vm_hwm_kib(proc.pid)
            return {"idle": idle, "big": after_big, "many": after_many}
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def cpu_shapes() -> None:
    """``--cpu``: seconds to parse 5 events of one shape (about 13-14 MiB), streamed in
    64 KiB chunks vs one ``json.loads`` + ``json_input`` check."""
    shapes: list[tuple[str, object, int]] = [
        ("long strings", "a", 700_000),
        ("numbers", 1, 1_400_000),
        ("empty objects", {}, 1_000_000),
    ]
    for label, item, count in shapes:
        event = json.dumps({"name": "a", "data": {"l": [item] * count}}, separators=(",", ":"))
        body = ("[" + ",".join([event] * 5) + "]").encode()
        start = time.perf_counter()
        stream = EventStream()
        for at in range(0, len(body), CHUNK):
            stream.feed(body[at : at + CHUNK])
        stream.finish()
        streamed = time.perf_counter() - start
        start = time.perf_counter()
        json_input.parse(body)
        loaded = time.perf_counter() - start
        size = len(body) / 2**20
        print(f"{label}: {size:.1f} MiB, stream {streamed:.2f} s, loads {loaded:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "HOW"))
    parser.add_argument("--cpu", action="store_true", help="time the parser on worst shapes")
    args = parser.parse_args()
    if args.cpu:
        cpu_shapes()
        return
    if args.child:
        parse_in_process(*args.child)
        return
    server = dev_server_peaks()
    parsers = {(k, h): child(k, h) for k in ("big", "many") for h in ("stream", "loads")}
    mib = 1024
    print(
        f"wayline dev peak RSS: idle {server['idle'] / mib:.0f} MiB, after 16 MiB of 5 large "
        f"events {server['big'] / mib:.0f} MiB, after 5000 events {server['many'] / mib:.0f} MiB"
    )
    for (kind, how), r in parsers.items():
        print(
            f"parser {kind:4} {how:6}: {r['events']} events, {r['bytes'] / 2**20:.1f} MiB body, "
            f"peak growth {r['peak_growth_kib'] / mib:.0f} MiB"
        )
    if args.record:
        machine = (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        growth = {f"{k}-{h}": round(r["peak_growth_kib"] / mib) for (k, h), r in parsers.items()}
        row = (
            f"| {dt.date.today()} | {machine} | {server['idle'] / mib:.0f} | "
            f"{server['big'] / mib:.0f} | {server['many'] / mib:.0f} | "
            f"{growth['big-stream']} / {growth['big-loads']} | "
            f"{growth['many-stream']} / {growth['many-loads']} |\n"
        )
        with (ROOT / "bench" / "RESULTS.md").open("a") as results:
            results.write(row)


if __name__ == "__main__":
    main()
