"""What a step costs on AWS: run a 10-step function through the whole topology on moto and
count every AWS request, Lambda invocation and DynamoDB capacity unit it takes.

    .venv/bin/python bench/aws_cost.py [--runs 20]

The app is written with the official ``inngest`` SDK (one HTTP call per step: it does not
checkpoint several steps per call). Requests are counted with botocore ``before-call``
hooks on every client; requests Lambda's SQS event source mappings make on our behalf
(ReceiveMessage, DeleteMessage) and the SendMessage of EventBridge's rule target are
counted too, since AWS bills them to the account.

DynamoDB capacity: moto answers ``ReturnConsumedCapacity`` with constants, so units are
computed from item sizes as DynamoDB bills them: a write is ceil(max(before, after) / 1 KB)
WRU for the item plus one write per index the item enters, leaves or changes in; a
transaction costs twice that; a strong read ceil(size / 4 KB) RRU, an index (eventually
consistent) query half.

Prices: us-east-1 on-demand list prices from /work/shared/research/aws-anchors.md (no free
tiers): Lambda $0.20 / M requests and $0.0000133334 / GB-s (arm64); SQS standard $0.40 / M
requests; EventBridge custom events $1.00 / M; Scheduler $1.00 / M invocations; DynamoDB
$0.625 / M WRU and $0.125 / M RRU. Lambda duration is not measurable on moto (moto is
~10x slower than DynamoDB), so it is priced at an assumed 40 ms per engine invocation plus
the time the dispatcher waits on the app (measured here, from the app's side).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
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
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
)

import fastapi  # noqa: E402
import inngest  # noqa: E402
import inngest.fast_api  # noqa: E402
from moto import mock_aws  # noqa: E402

from aws.conftest import VirtualClock, provision  # noqa: E402
from aws.driver import SIGNING_KEY, Driver, make_runtime  # noqa: E402
from compat.harness import UvicornAppServer  # noqa: E402
from wayline import signing  # noqa: E402
from wayline.aws.clients import add_event_hook  # noqa: E402
from wayline.aws.eventbridge import EventBus  # noqa: E402
from wayline.engine.model import RunStatus  # noqa: E402
from wayline.store.dynamodb_schema import INDEXES, PK, SK  # noqa: E402

STEPS = 10
PRICE = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s": 0.0000133334,
    "sqs_request": 0.40 / 1e6,
    "eventbridge_event": 1.00 / 1e6,
    "scheduler_invocation": 1.00 / 1e6,
    "wru": 0.625 / 1e6,
    "rru": 0.125 / 1e6,
}
STEP_FUNCTIONS_PER_TRANSITION = 25.0 / 1e6
DURABLE_PER_OPERATION = 8.0 / 1e6
ENGINE_MS = 40
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
        self._local = threading.local()
        self.reader: Any = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        self._local.paused = True
        try:
            yield
        finally:
            self._local.paused = False

    def _on(self) -> bool:
        return not getattr(self._local, "paused", False)

    def install(self) -> None:
        add_event_hook("before-call", self._count)
        add_event_hook("before-parameter-build.dynamodb", self._before_dynamodb)
        add_event_hook("after-call.dynamodb", self._after_dynamodb)

    def _count(self, model: Any, **_: Any) -> None:
        if self._on():
            self.requests[f"{model.service_model.service_id}.{model.name}"] += 1

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
        for op, p, before in context.get("wl_writes", []):
            if op == "ConditionCheckItem":
                units += 1
                continue
            after = None if op == "DeleteItem" else self._get(p["TableName"], self._key(op, p))
            units += write_units(before, after)
            self.write_bytes[str(self._key(op, p)[SK]["S"]).split("#")[0]] += item_size(after)
        factor = 2 if model.name == "TransactWriteItems" else 1
        self.wru += units * factor
        self.wru_by_op[model.name] += units * factor
        if model.name == "GetItem":
            self.rru += max(1, math.ceil(item_size(parsed.get("Item")) / 4096))
        elif model.name == "Query":
            size = sum(item_size(i) for i in parsed.get("Items", []))
            eventual = "IndexName" in params or not params.get("ConsistentRead")
            self.rru += max(1, math.ceil(size / 4096)) * (0.5 if eventual else 1)
        elif model.name == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                self.rru += sum(max(1, math.ceil(item_size(i) / 4096)) for i in items)


# ------------------------------------------------------------------ the run


def step_output(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "x" * 200}


def ten_step_app(app_waits: list[float]) -> tuple[inngest.Inngest, list[inngest.Function[Any]]]:
    client = inngest.Inngest(
        app_id="bench",
        is_production=True,
        signing_key=SIGNING_KEY,
        api_base_url="http://127.0.0.1:9",
        event_api_base_url="http://127.0.0.1:9",
    )

    @client.create_function(fn_id="ten", retries=0, trigger=inngest.TriggerEvent(event="bench/ten"))
    def ten(ctx: inngest.ContextSync) -> int:
        started = time.perf_counter()
        total = 0
        for i in range(STEPS):
            total += int(ctx.step.run(f"step-{i}", step_output, i)["i"])
        app_waits.append(time.perf_counter() - started)
        return total

    return client, [ten]


def drain(driver: Driver, meter: Meter, empty_polls: Counter[str]) -> None:
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


def measure(runs: int) -> dict[str, Any]:
    meter = Meter()
    app_waits: list[float] = []
    with mock_aws():
        meter.install()
        stack = provision("bench")
        meter.reader = stack.ddb
        clock = VirtualClock()
        client, functions = ten_step_app(app_waits)
        web = fastapi.FastAPI()
        inngest.fast_api.serve(web, client, functions)
        server = UvicornAppServer(web)
        try:
            driver = Driver(stack, clock, make_runtime(stack, clock))
            with meter.paused():
                status, body = driver.api(
                    "PUT",
                    "/v1/apps/sync",
                    {"url": f"http://127.0.0.1:{server.port}/api/inngest"},
                    {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
                )
            assert status == 200, body
            bus = EventBus(bus_name=stack.bus, client=stack.events)
            meter.requests.clear()
            meter.wru_by_op.clear()
            meter.write_bytes.clear()
            meter.wru = meter.rru = 0.0
            driver.invocations = dict.fromkeys(driver.invocations, 0)
            empty: Counter[str] = Counter()
            started = time.perf_counter()
            for _ in range(runs):
                bus.publish([{"name": "bench/ten", "data": {}}])
                meter.requests["SQS.SendMessage (rule target)"] += 1
                drain(driver, meter, empty)
            wall = time.perf_counter() - started
            with meter.paused():
                done = driver.runtime.store.runs.list_runs(function_id="bench-ten", limit=runs)
            assert len(done) == runs and all(r.status is RunStatus.COMPLETED for r in done)
        finally:
            server.stop()
    # Empty receives are the idle long polls of the event source mappings, not per step.
    meter.requests["SQS.ReceiveMessage"] -= sum(empty.values())
    return {
        "runs": runs,
        "steps": runs * STEPS,
        "requests": dict(meter.requests),
        "invocations": driver.invocations,
        "wru": meter.wru,
        "wru_by_op": dict(meter.wru_by_op),
        "write_bytes": dict(meter.write_bytes),
        "rru": meter.rru,
        "app_wait_s": sum(app_waits),
        "wall_s": wall,
    }


def report(result: Mapping[str, Any]) -> None:
    steps = result["steps"]
    per_m = 1e6 / steps
    requests: Mapping[str, int] = result["requests"]
    inv: Mapping[str, int] = result["invocations"]
    sqs = sum(n for k, n in requests.items() if k.startswith("SQS."))
    events = requests.get("EventBridge.PutEvents", 0)
    schedules = requests.get("Scheduler.CreateSchedule", 0)
    lambdas = sum(inv.values())
    engine_s = lambdas * ENGINE_MS / 1000 + result["app_wait_s"]
    cost = {
        "Lambda requests": lambdas * PRICE["lambda_request"],
        "Lambda duration (assumed)": engine_s * MEMORY_GB * PRICE["lambda_gb_s"],
        "SQS": sqs * PRICE["sqs_request"],
        "EventBridge": events * PRICE["eventbridge_event"],
        "Scheduler": schedules * PRICE["scheduler_invocation"],
        "DynamoDB writes": result["wru"] * PRICE["wru"],
        "DynamoDB reads": result["rru"] * PRICE["rru"],
    }
    print(f"Wayline on AWS (moto): {result['runs']} runs x {STEPS} steps = {steps} steps")
    print(f"  wall time on moto: {result['wall_s']:.1f} s (not representative of AWS)")
    print("\nAWS requests per step")
    for name, n in sorted(requests.items()):
        print(f"  {name:<42} {n / steps:6.2f}")
    print("\nLambda invocations per step")
    for name, n in inv.items():
        print(f"  {name:<42} {n / steps:6.2f}")
    wru, rru = result["wru"] / steps, result["rru"] / steps
    print(f"\nDynamoDB units per step: {wru:.2f} WRU, {rru:.2f} RRU")
    for name, units in sorted((k, v) for k, v in result["wru_by_op"].items() if v):
        print(f"  {name:<42} {units / steps:6.2f} WRU")
    print("  bytes written per step, by item kind (sort key prefix):")
    for name, size in sorted(result["write_bytes"].items()):
        print(f"    {name:<40} {size / steps:8.0f}")
    print("\nUSD per 1M steps (us-east-1 on-demand, no free tier)")
    for name, usd in cost.items():
        print(f"  {name:<42} {usd * per_m:8.2f}")
    total = sum(cost.values()) * per_m
    print(f"  {'Wayline total':<42} {total:8.2f}")
    transitions = STEPS + 2  # a task state per step, plus start and end
    sfn = transitions * STEP_FUNCTIONS_PER_TRANSITION * 1e6 / STEPS
    durable = (STEPS + 1) * DURABLE_PER_OPERATION * 1e6 / STEPS
    print(f"  {'Step Functions Standard ($25/M transitions)':<42} {sfn:8.2f}")
    print(f"  {'Lambda durable functions ($8/M operations)':<42} {durable:8.2f}")
    print("  (both without their own Lambda compute and data charges)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    report(measure(args.runs))


if __name__ == "__main__":
    main()
