"""What a step costs on AWS: run a 10-step and a 50-step function through the whole
topology on moto and count every AWS request, Lambda invocation, DynamoDB capacity unit
and log byte it takes. The figure per step must not grow with the run's length.

    .venv/bin/python bench/aws_cost.py [--runs 4] [--steps 10,50] [--sdk wayline,inngest]

Two apps: one on the official ``inngest`` SDK (the classic path: one HTTP call per step),
one on Wayline's SDK (checkpointing: one call per run, and per step one ``POST
/v1/checkpoint`` to the api function, served through a Function URL stand-in so each is
one invocation of its handler). Requests are counted with botocore ``before-call`` hooks
on every client; requests Lambda's SQS event source mappings make on our behalf
(ReceiveMessage, DeleteMessage) and the SendMessage of EventBridge's rule target are
counted too, since AWS bills them to the account (the mappings' empty long polls are an
idle cost, reported apart).

DynamoDB capacity: moto answers ``ReturnConsumedCapacity`` with constants, so units are
computed from item sizes as DynamoDB bills them: a write is ceil(max(before, after) / 1 KB)
WRU for the item plus one write per index the item enters, leaves or changes in (two
when its index key changes); a transaction costs twice that; a failed conditional write
one unit; a strong read ceil(size / 4 KB) RRU, an eventually consistent one (every index
query, and a GetItem or table Query without ``ConsistentRead``) half.

Lambda duration, for EVERY invocation (moto is ~10x slower than DynamoDB, so it is
modelled, not timed): each function's own CPU time per invocation, measured here with
moto's share taken out and scaled to a 256 MB Lambda's CPU share
(``LAMBDA_CPU_SLOWDOWN``), at least ``ENGINE_BASE_MS``; plus ``AWS_REQUEST_MS`` per AWS
request the invocation makes (the round trip and botocore's own work, which the CPU
measure leaves out with moto); plus, for the dispatcher, the whole time it waits on the
app: the app's own time (measured here, server side) and ``APP_RTT_MS`` per call.

CloudWatch Logs: every byte the handlers print at the template's log level (INFO, with
the EMF metrics Powertools prints), plus ``PLATFORM_LOG_BYTES`` of Lambda's own START /
END / REPORT lines per invocation unless template.yaml filters them (``SystemLogLevel:
WARN``), at $0.50 per GB ingested.

Prices: us-east-1 on-demand list prices from /work/shared/research/aws-anchors.md (no free
tiers): Lambda $0.20 / M requests and $0.0000133334 / GB-s (arm64, 256 MB as in
template.yaml); SQS standard $0.40 / M requests; EventBridge custom events $1.00 / M;
Scheduler $1.00 / M invocations; DynamoDB $0.625 / M WRU and $0.125 / M RRU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # handlers/, and the tests' AWS driver

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "Wayline",
        "POWERTOOLS_LOG_LEVEL": "INFO",  # template.yaml's
        "POWERTOOLS_SERVICE_NAME": "wayline",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
)

import fastapi  # noqa: E402
import inngest  # noqa: E402
import inngest.fast_api  # noqa: E402
from moto import mock_aws  # noqa: E402

import wayline  # noqa: E402
import wayline.fastapi  # noqa: E402
from aws.conftest import VirtualClock, provision  # noqa: E402
from aws.driver import SIGNING_KEY, Driver, make_runtime  # noqa: E402
from aws.function_url_server import FunctionUrl  # noqa: E402
from compat.harness import UvicornAppServer  # noqa: E402
from wayline import signing  # noqa: E402
from wayline.aws.clients import add_event_hook  # noqa: E402
from wayline.aws.eventbridge import EventBus  # noqa: E402
from wayline.engine.model import RunStatus  # noqa: E402
from wayline.sdk.acks import Ack  # noqa: E402
from wayline.sdk.checkpoint import Checkpointer  # noqa: E402
from wayline.sdk.planner import Op  # noqa: E402
from wayline.store.dynamodb_schema import INDEXES, PK, SK  # noqa: E402

PRICE = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s": 0.0000133334,
    "sqs_request": 0.40 / 1e6,
    "eventbridge_event": 1.00 / 1e6,
    "scheduler_invocation": 1.00 / 1e6,
    "wru": 0.625 / 1e6,
    "rru": 0.125 / 1e6,
    "log_gb": 0.50,
}
STEP_FUNCTIONS_PER_TRANSITION = 25.0 / 1e6
DURABLE_PER_OPERATION = 8.0 / 1e6
ENGINE_BASE_MS = 10
"""A warm invocation's own work (event parsing, Powertools, JSON), without its requests:
the floor; the measured CPU time, scaled by ``LAMBDA_CPU_SLOWDOWN``, is used when larger."""
LAMBDA_CPU_SLOWDOWN = 1769 / 256
"""Lambda gives one vCPU at 1,769 MB, proportionally less below: 256 MB is ~1/7 of a core
(taken as this machine's core; Graviton2 is no faster per core)."""
AWS_REQUEST_MS = 6
"""One DynamoDB / SQS / EventBridge request from Lambda in the same region."""
APP_RTT_MS = 15
"""The dispatcher's HTTPS round trip to the app's URL, per call, on top of the app's time."""
PLATFORM_LOG_BYTES = 350
"""Lambda's START, END and REPORT lines of one invocation, when they are shipped."""


def platform_log_bytes(template: Path = ROOT / "template.yaml") -> int:
    """What Lambda's own lines cost per invocation under the template's logging config:
    nothing at ``SystemLogLevel: WARN`` (they are INFO system logs, filtered before
    CloudWatch; WARN ones come only with a crash or a timeout), else ``PLATFORM_LOG_BYTES``."""
    filtered = re.search(r"^\s*SystemLogLevel:\s*WARN\s*$", template.read_text(), re.MULTILINE)
    return 0 if filtered else PLATFORM_LOG_BYTES


MEMORY_GB = 0.25


# ------------------------------------------------------------------ DynamoDB item sizes


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value, as DynamoDB sizes items."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        return len(str(v).lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    return sum(len(str(x).encode()) for x in v)  # SS, NS, BS


def item_size(item: Mapping[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def _index_entry(item: Mapping[str, Any] | None, index: Any) -> tuple[Any, Any] | None:
    """(key, projected attributes) of ``item`` in ``index``; None if it is not in it."""
    if not item or index.pk not in item or index.sk not in item:
        return None
    key = (item[index.pk], item[index.sk])
    if index.projection == "ALL":
        return key, json.dumps(item, sort_keys=True)
    wanted = {PK, SK, index.pk, index.sk, *index.include}
    return key, json.dumps({k: v for k, v in item.items() if k in wanted}, sort_keys=True)


def write_units(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> int:
    units = max(1, math.ceil(max(item_size(before), item_size(after)) / 1024))
    for index in INDEXES:
        old, new = _index_entry(before, index), _index_entry(after, index)
        if old is None and new is None:
            continue
        if old is None or new is None:
            units += 1
        elif old[0] != new[0]:
            units += 2  # the index deletes the old entry and puts the new one
        elif old[1] != new[1]:
            units += 1
    return units


class Meter:
    """Counts requests and DynamoDB units through botocore hooks; ``paused`` hides the
    benchmark's own bookkeeping reads."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.wru_by_op: Counter[str] = Counter()
        self.write_bytes: Counter[str] = Counter()
        self.wru_by_kind: Counter[str] = Counter()
        """Write units by item kind (sort key prefix), index writes included."""
        self.requests_in: Counter[str] = Counter()
        """AWS requests made inside each function's invocations (they take its time)."""
        self.log_bytes: Counter[str] = Counter()
        self.cpu_s: dict[str, float] = {}
        """Thread CPU seconds of each function's own code (its AWS requests, served by moto
        in this thread, taken out): a check of ``ENGINE_BASE_MS``, not an input."""
        self._local = threading.local()
        self.stopped = False
        """Counting is over, on every thread (``paused`` is this thread's alone: the
        store reads a page of runs on a thread pool)."""
        self.reader: Any = None

    @property
    def function(self) -> str | None:
        """The function whose invocation runs on this thread (None: the event source
        mappings, or the app)."""
        return getattr(self._local, "function", None)

    @function.setter
    def function(self, name: str | None) -> None:
        self._local.function = name

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self._local.paused = True
        try:
            yield
        finally:
            self._local.paused = False

    def _on(self) -> bool:
        return not self.stopped and not getattr(self._local, "paused", False)

    def install(self) -> None:
        add_event_hook("provide-client-params", self._request_starts)
        add_event_hook("before-call", self._count)
        add_event_hook("before-parameter-build.dynamodb", self._before_dynamodb)
        add_event_hook("after-call.dynamodb", self._after_dynamodb)
        add_event_hook("after-call", self.request_ends)
        add_event_hook("after-call-error", self.request_ends)

    def _count(self, model: Any, **_: Any) -> None:
        if self._on():
            self.requests[f"{model.service_model.service_id}.{model.name}"] += 1
            if self.function is not None:
                self.requests_in[f"{self.function} {model.name}"] += 1

    def _request_starts(self, **_: Any) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.request_t0 = time.thread_time()
        self._local.depth = depth + 1

    def request_ends(self, **_: Any) -> None:
        """Registered last (after the DynamoDB hooks, whose reads count as moto's)."""
        self._local.depth = getattr(self._local, "depth", 1) - 1
        if self._local.depth == 0:
            self._local.in_aws = getattr(self._local, "in_aws", 0.0) + (
                time.thread_time() - self._local.request_t0
            )

    def in_aws_s(self) -> float:
        """Thread CPU seconds this thread has spent inside AWS requests (moto) so far."""
        return float(getattr(self._local, "in_aws", 0.0))

    def reset(self) -> None:
        self.cpu_s.clear()
        self.requests.clear()
        self.requests_in.clear()
        self.log_bytes.clear()
        self.wru_by_op.clear()
        self.wru_by_kind.clear()
        self.write_bytes.clear()
        self.wru = self.rru = 0.0

    def _get(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        with self.paused():
            item = self.reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return None if item is None else dict(item)

    def _writes(self, params: Mapping[str, Any], model_name: str) -> list[tuple[str, Any]]:
        if model_name in ("PutItem", "UpdateItem", "DeleteItem"):
            return [(model_name, params)]
        if model_name == "TransactWriteItems":
            return [
                (f"{k}Item", v) for action in params["TransactItems"] for k, v in action.items()
            ]
        if model_name == "BatchWriteItem":
            return [
                ("PutItem", {"TableName": table, "Item": r["PutRequest"]["Item"]})
                for table, requests in params["RequestItems"].items()
                for r in requests
                if "PutRequest" in r
            ]
        return []

    @staticmethod
    def _key(op: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if op == "PutItem":
            return {PK: params["Item"][PK], SK: params["Item"][SK]}
        return dict(params["Key"])

    def _before_dynamodb(
        self, params: Mapping[str, Any], model: Any, context: Any, **_: Any
    ) -> None:
        if not self._on():
            return
        writes = self._writes(params, model.name)
        context["wl_writes"] = [
            (op, p, self._get(p["TableName"], self._key(op, p))) for op, p in writes
        ]
        context["wl_params"] = params

    def _after_dynamodb(
        self, parsed: Mapping[str, Any], model: Any, context: Any, **_: Any
    ) -> None:
        if not self._on() or "wl_params" not in context:
            return
        params = context["wl_params"]
        if "Error" in parsed:
            self.wru += 1  # a failed condition still consumes a write
            return
        units = 0
        factor = 2 if model.name == "TransactWriteItems" else 1
        for op, p, before in context.get("wl_writes", []):
            if op == "ConditionCheckItem":
                units += 1
                continue
            after = None if op == "DeleteItem" else self._get(p["TableName"], self._key(op, p))
            kind = str(self._key(op, p)[SK]["S"]).split("#")[0]
            item_units = write_units(before, after)
            units += item_units
            self.wru_by_kind[kind] += item_units * factor
            self.write_bytes[kind] += item_size(after)
        self.wru += units * factor
        self.wru_by_op[model.name] += units * factor
        if model.name == "GetItem":
            eventual = 0.5 if not params.get("ConsistentRead") else 1
            self.rru += max(1, math.ceil(item_size(parsed.get("Item")) / 4096)) * eventual
        elif model.name == "Query":
            size = sum(item_size(i) for i in parsed.get("Items", []))
            eventual = "IndexName" in params or not params.get("ConsistentRead")
            self.rru += max(1, math.ceil(size / 4096)) * (0.5 if eventual else 1)
        elif model.name == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                self.rru += sum(max(1, math.ceil(item_size(i) / 4096)) for i in items)


class LogBytes(io.TextIOBase):
    """Stands in for the handlers' stdout: counts what they print, per function."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter

    def write(self, text: str) -> int:
        # Lines from no function's thread are the app's (it logs through "wayline" too):
        # the user's logs, not the engine's.
        if self._meter.function is not None:
            self._meter.log_bytes[self._meter.function] += len(text.encode())
        return len(text)


@contextlib.contextmanager
def logs_counted(meter: Meter) -> Iterator[None]:
    """Every line the handlers log (Powertools' JSON, the engine's records through it, EMF
    metrics) is counted instead of printed."""
    counter = LogBytes(meter)
    streams = [
        h for h in logging.getLogger("wayline").handlers if isinstance(h, logging.StreamHandler)
    ]
    before = [h.stream for h in streams]
    for h in streams:
        h.setStream(counter)
    try:
        with contextlib.redirect_stdout(counter):
            yield
    finally:
        for h, stream in zip(streams, before, strict=True):
            h.setStream(stream)


def metered(meter: Meter, name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` with its AWS requests and logs attributed to function ``name``."""

    def run(*args: Any) -> Any:
        before, meter.function = meter.function, name
        cpu, aws = time.thread_time(), meter.in_aws_s()
        try:
            return handler(*args)
        finally:
            spent = time.thread_time() - cpu - (meter.in_aws_s() - aws)
            meter.cpu_s[name] = meter.cpu_s.get(name, 0.0) + spent
            meter.function = before

    return run


# ------------------------------------------------------------------ the run


def step_output(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "x" * 200}


class AppTime:
    """The app's time per request, measured server side (ASGI middleware)."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self.calls = 0
        self.seconds = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await self._app(scope, receive, send)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - started


class CheckpointWaits:
    """How long the app waited on its checkpoints, as the SDK's client sees each one
    (``Checkpointer.send``: the request, the api function, the answer): the part of
    the app's time that is not its own. Measured client side, not in the api function,
    because on this one machine the loopback HTTP and the thread hand-offs around the
    handler take longer than the handler (tens of ms per checkpoint): that stands for
    the network path, which ``costs`` models as ``APP_RTT_MS``; left in the app's own
    time, it was counted twice."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        sync, async_ = Checkpointer.send, Checkpointer.send_async

        def send(
            checkpointer: Checkpointer, op: Op, data: bytes, body_s: float = 0.0
        ) -> tuple[Ack, str]:
            started = time.perf_counter()
            try:
                return sync(checkpointer, op, data, body_s)
            finally:
                self._add(time.perf_counter() - started)

        async def send_async(
            checkpointer: Checkpointer, op: Op, data: bytes, body_s: float = 0.0
        ) -> tuple[Ack, str]:
            started = time.perf_counter()
            try:
                return await async_(checkpointer, op, data, body_s)
            finally:
                self._add(time.perf_counter() - started)

        Checkpointer.send = send  # type: ignore[method-assign,assignment]
        Checkpointer.send_async = send_async  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            Checkpointer.send = sync  # type: ignore[method-assign]
            Checkpointer.send_async = async_  # type: ignore[method-assign]

    def _add(self, seconds: float) -> None:
        self.seconds += seconds
        self.calls += 1


def wayline_app(steps: int, api_url: str) -> fastapi.FastAPI:
    """The same function on Wayline's SDK: it checkpoints, so a run is one call."""
    client = wayline.Wayline(
        app_id="bench", signing_key=SIGNING_KEY, base_url=api_url, is_dev=False
    )

    @client.function(
        id=f"steps-{steps}",
        trigger=wayline.TriggerEvent(event=f"bench/{steps}"),
        retries=0,
        checkpointing=wayline.Checkpointing(max_runtime=timedelta(minutes=5)),
    )
    def sequential(ctx: wayline.SyncContext) -> int:
        total = 0
        for i in range(steps):
            total += int(ctx.step.run(f"step-{i}", step_output, i)["i"])
        return total

    web = fastapi.FastAPI()
    wayline.fastapi.serve(web, client, [sequential])
    return web


def inngest_app(steps: int) -> tuple[inngest.Inngest, list[inngest.Function[Any]]]:
    client = inngest.Inngest(
        app_id="bench",
        is_production=True,
        signing_key=SIGNING_KEY,
        api_base_url="http://127.0.0.1:9",
        event_api_base_url="http://127.0.0.1:9",
    )

    @client.create_function(
        fn_id=f"steps-{steps}", retries=0, trigger=inngest.TriggerEvent(event=f"bench/{steps}")
    )
    def sequential(ctx: inngest.ContextSync) -> int:
        total = 0
        for i in range(steps):
            total += int(ctx.step.run(f"step-{i}", step_output, i)["i"])
        return total

    return client, [sequential]


def drain(driver: Driver, empty_polls: Counter[str]) -> None:
    """Play the event source mappings until both queues are empty (Lambda stops polling
    a queue only in our books: empty long polls are an idle cost, reported apart)."""
    while True:
        handled = 0
        for name in ("ingest", "dispatch"):
            n = driver.poll(name)
            if n == 0:
                empty_polls[name] += 1
            handled += n
        if handled == 0:
            return


def measure(runs: int, steps: int, sdk: str) -> dict[str, Any]:
    """``sdk``: "inngest" (the official SDK, classic) or "wayline" (ours, checkpointing)."""
    meter = Meter()
    with mock_aws():
        meter.install()
        stack = provision("bench")
        meter.reader = stack.ddb
        clock = VirtualClock()
        driver = Driver(stack, clock, lambda: make_runtime(stack, clock))
        for name in ("ingest", "dispatch"):
            setattr(driver, name, metered(meter, name, getattr(driver, name)))
        invoke_api = driver.api_handler = metered(meter, "api", driver.api_handler)

        def counted_api(event: dict[str, Any], context: Any) -> Any:
            driver.invocations["api"] += 1
            return invoke_api(event, context)

        url = FunctionUrl(counted_api)
        api_server = UvicornAppServer(url)  # type: ignore[arg-type]
        if sdk == "wayline":
            web = wayline_app(steps, f"http://127.0.0.1:{api_server.port}")
        else:
            client, functions = inngest_app(steps)
            web = fastapi.FastAPI()
            inngest.fast_api.serve(web, client, functions)
        app = AppTime(web)
        server = UvicornAppServer(app)  # type: ignore[arg-type]
        try:
            with meter.paused(), logs_counted(meter):
                status, body = driver.api(
                    "PUT",
                    "/v1/apps/sync",
                    {"url": f"http://127.0.0.1:{server.port}/api/inngest"},
                    {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
                )
            assert status == 200, body
            bus = EventBus(bus_name=stack.bus, client=stack.events)
            meter.reset()
            app.calls, app.seconds = 0, 0.0
            url.calls, url.seconds = 0, 0.0
            waits = CheckpointWaits()
            driver.invocations = dict.fromkeys(driver.invocations, 0)
            empty: Counter[str] = Counter()
            started = time.perf_counter()
            with logs_counted(meter), waits.counting():
                for _ in range(runs):
                    bus.publish([{"name": f"bench/{steps}", "data": {}}])
                    meter.requests["SQS.SendMessage (rule target)"] += 1
                    drain(driver, empty)
            wall = time.perf_counter() - started
            meter.stopped = True
            with meter.paused():
                done = driver.runtime.store.runs.list_runs(
                    function_id=f"bench-steps-{steps}", limit=runs
                )
            assert len(done) == runs and all(r.status is RunStatus.COMPLETED for r in done)
        finally:
            server.stop()
            api_server.stop()
    # Empty receives are the idle long polls of the event source mappings, not per step.
    meter.requests["SQS.ReceiveMessage"] -= sum(empty.values())
    return {
        "runs": runs,
        "steps_per_run": steps,
        "steps": runs * steps,
        "requests": dict(meter.requests),
        "requests_in": dict(meter.requests_in),
        "log_bytes": dict(meter.log_bytes),
        "cpu_s": dict(meter.cpu_s),
        "invocations": driver.invocations,
        "wru": meter.wru,
        "wru_by_op": dict(meter.wru_by_op),
        "write_bytes": dict(meter.write_bytes),
        "wru_by_kind": dict(meter.wru_by_kind),
        "rru": meter.rru,
        "sdk": sdk,
        "app_calls": app.calls,
        "app_s": app.seconds,
        "checkpoints": url.calls,
        "checkpoint_s": url.seconds,
        "checkpoint_wait_s": waits.seconds,
        "wall_s": wall,
    }


def own_ms(result: Mapping[str, Any]) -> dict[str, float]:
    """Each function's own time per invocation on a 256 MB Lambda: its CPU time measured
    here (moto's share out) scaled to the CPU share Lambda gives 256 MB
    (``LAMBDA_CPU_SLOWDOWN``), and never less than ``ENGINE_BASE_MS``."""
    inv: Mapping[str, int] = result["invocations"]
    return {
        name: max(ENGINE_BASE_MS, 1000 * seconds / inv[name] * LAMBDA_CPU_SLOWDOWN)
        for name, seconds in result["cpu_s"].items()
        if inv.get(name)
    }


def costs(result: Mapping[str, Any]) -> dict[str, float]:
    """USD per 1M steps, by line."""
    per_m = 1e6 / result["steps"]
    requests: Mapping[str, int] = result["requests"]
    inv: Mapping[str, int] = result["invocations"]
    invocations = sum(inv.values())
    sqs = sum(n for k, n in requests.items() if k.startswith("SQS."))
    own = own_ms(result)
    engine_ms = sum(n * own.get(name, ENGINE_BASE_MS) for name, n in inv.items())
    engine_ms += sum(result["requests_in"].values()) * AWS_REQUEST_MS
    # The dispatcher waits for the whole call: the app's own time (less its waits on the
    # checkpoints it made, timed by its client here: ``CheckpointWaits``), each checkpoint
    # as the api function takes it on AWS, and a round trip per call and per checkpoint.
    api_calls = inv.get("api", 0)
    api_requests = result["requests_in"].get("api", 0) / max(1, api_calls)
    api_ms = own.get("api", ENGINE_BASE_MS) + AWS_REQUEST_MS * api_requests
    engine_ms += (result["app_s"] - result["checkpoint_wait_s"]) * 1000
    engine_ms += result["checkpoints"] * (api_ms + APP_RTT_MS) + result["app_calls"] * APP_RTT_MS
    log_bytes = sum(result["log_bytes"].values()) + invocations * platform_log_bytes()
    cost = {
        "Lambda requests": invocations * PRICE["lambda_request"],
        "Lambda duration (every invocation)": engine_ms / 1000 * MEMORY_GB * PRICE["lambda_gb_s"],
        "CloudWatch Logs": log_bytes / 1e9 * PRICE["log_gb"],
        "SQS": sqs * PRICE["sqs_request"],
        "EventBridge": requests.get("EventBridge.PutEvents", 0) * PRICE["eventbridge_event"],
        "Scheduler": requests.get("Scheduler.CreateSchedule", 0) * PRICE["scheduler_invocation"],
        "DynamoDB writes": result["wru"] * PRICE["wru"],
        "DynamoDB reads": result["rru"] * PRICE["rru"],
    }
    return {name: usd * per_m for name, usd in cost.items()}


def report(result: Mapping[str, Any]) -> float:
    steps, n = result["steps"], result["steps_per_run"]
    requests: Mapping[str, int] = result["requests"]
    inv: Mapping[str, int] = result["invocations"]
    print(f"\n== {result['sdk']} SDK, {n}-step function: {result['runs']} runs = {steps} steps ==")
    print(f"  wall time on moto: {result['wall_s']:.1f} s (not representative of AWS)")
    print("AWS requests per step")
    for name, count in sorted(requests.items()):
        print(f"  {name:<42} {count / steps:6.2f}")
    print("  made by each function:")
    for name, count in sorted(result["requests_in"].items()):
        print(f"    {name:<40} {count / steps:6.2f}")
    print("Lambda invocations per step")
    for name, count in inv.items():
        print(f"  {name:<42} {count / steps:6.2f}")
    print(
        f"  app calls per step: {result['app_calls'] / steps:.2f},"
        f" app time per call {1000 * result['app_s'] / max(1, result['app_calls']):.1f} ms"
    )
    if result["checkpoints"]:
        per = 1000 / result["checkpoints"]
        print(
            f"  per checkpoint: the app waited {result['checkpoint_wait_s'] * per:.1f} ms,"
            f" the api handler took {result['checkpoint_s'] * per:.1f} ms (on moto; billed as"
            f" modelled, with {APP_RTT_MS} ms of round trip)"
        )
    print("Own CPU per invocation, ms of this machine's core (moto's share taken out;")
    share = f"x{LAMBDA_CPU_SLOWDOWN:.1f} for 256 MB's CPU share"
    print(f"  billed: {share}, at least {ENGINE_BASE_MS} ms)")
    billed = own_ms(result)
    for name, seconds in sorted(result["cpu_s"].items()):
        cpu = 1000 * seconds / max(1, inv.get(name, 0))
        print(f"  {name:<42} {cpu:8.1f}  billed {billed.get(name, 0):6.1f}")
    print("Log bytes per step (handlers' own lines; Lambda's platform lines apart)")
    for name, size in sorted(result["log_bytes"].items()):
        print(f"  {name:<42} {size / steps:8.0f}")
    wru, rru = result["wru"] / steps, result["rru"] / steps
    print(f"DynamoDB units per step: {wru:.2f} WRU, {rru:.2f} RRU")
    for name, units in sorted((k, v) for k, v in result["wru_by_op"].items() if v):
        print(f"  {name:<42} {units / steps:6.2f} WRU")
    print("  per step, by item kind (sort key prefix): WRU (index writes included), bytes")
    for name, size in sorted(result["write_bytes"].items()):
        units = result["wru_by_kind"].get(name, 0) / steps
        print(f"    {name:<32} {units:6.2f} {size / steps:8.0f}")
    print("USD per 1M steps (us-east-1 on-demand, no free tier)")
    cost = costs(result)
    for name, usd in cost.items():
        print(f"  {name:<42} {usd:8.2f}")
    total = sum(cost.values())
    print(f"  {'Wayline total':<42} {total:8.2f}")
    transitions = n + 2  # a task state per step, plus start and end
    sfn = transitions * STEP_FUNCTIONS_PER_TRANSITION * 1e6 / n
    durable = (n + 1) * DURABLE_PER_OPERATION * 1e6 / n
    print(f"  {'Step Functions Standard ($25/M transitions)':<42} {sfn:8.2f}")
    print(f"  {'Lambda durable functions ($8/M operations)':<42} {durable:8.2f}")
    print("  (both without their own Lambda compute and data charges)")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", default="10,50", help="run lengths, comma-separated")
    parser.add_argument(
        "--sdk", default="wayline,inngest", help="wayline (checkpointing), inngest (classic)"
    )
    args = parser.parse_args()
    totals = {}
    for sdk in args.sdk.split(","):
        for n in (int(x) for x in args.steps.split(",")):
            totals[sdk, n] = report(measure(args.runs, n, sdk))
    print("\nUSD per 1M steps")
    labels = {"wayline": "Wayline SDK (checkpointing)", "inngest": "inngest-py (classic)"}
    for (sdk, n), total in totals.items():
        print(f"  {labels.get(sdk, sdk):<30} {n:>3}-step runs: {total:6.2f}")


if __name__ == "__main__":
    main()
