"""The app and the stack the AWS fault tests run: an official-``inngest``-SDK app served on
loopback that counts every step body it executes, per run, and a ``Cluster`` that plays
Lambda with one runtime per function (as Lambda does), two dispatch containers among them,
every runtime's boto3 clients carrying the same ``Faults``.
"""

from __future__ import annotations

import datetime
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import fastapi
import inngest
import inngest.fast_api
from handlers import dispatch as dispatch_handler

from compat.harness import UvicornAppServer
from wayline import signing
from wayline.aws.eventbridge import EventBus
from wayline.aws.runtime import Runtime
from wayline.engine.model import Run

from .conftest import Stack, VirtualClock
from .driver import SIGNING_KEY, Driver, Handler, make_runtime
from .faults import ContainerDied, Faults, FaultyClients

APP_ID = "faults"


class Executions:
    """Step bodies the app ran, per (run id, step id): thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()

    def ran(self, run_id: str, step: str, value: Any) -> Any:
        with self._lock:
            self.counts[(run_id, step)] += 1
        return value

    def of(self, run_id: str) -> dict[str, int]:
        with self._lock:
            return {step: n for (run, step), n in self.counts.items() if run == run_id}


def build_app(executions: Executions) -> tuple[inngest.Inngest, list[inngest.Function[Any]]]:
    client = inngest.Inngest(
        app_id=APP_ID,
        is_production=True,
        signing_key=SIGNING_KEY,
        api_base_url="http://127.0.0.1:9",
        event_api_base_url="http://127.0.0.1:9",
    )

    def body(ctx: inngest.ContextSync, step: str, value: Any) -> Callable[[], Any]:
        return lambda: executions.ran(ctx.run_id, step, value)

    @client.create_function(fn_id="steps", retries=0, trigger=inngest.TriggerEvent(event="t/steps"))
    def steps(ctx: inngest.ContextSync) -> int:
        a = ctx.step.run("a", body(ctx, "a", 1))
        b = ctx.step.run("b", body(ctx, "b", 2))
        return int(ctx.step.run("c", body(ctx, "c", a + b)))

    @client.create_function(fn_id="five", retries=0, trigger=inngest.TriggerEvent(event="t/five"))
    def five(ctx: inngest.ContextSync) -> int:
        return sum(int(ctx.step.run(f"s{i}", body(ctx, f"s{i}", i))) for i in range(1, 6))

    @client.create_function(fn_id="napper", retries=0, trigger=inngest.TriggerEvent(event="t/nap"))
    def napper(ctx: inngest.ContextSync) -> str:
        ctx.step.run("before", body(ctx, "before", 1))
        ctx.step.sleep("nap", datetime.timedelta(minutes=2))
        return str(ctx.step.run("after", body(ctx, "after", "after")))

    @client.create_function(
        fn_id="waiter", retries=0, trigger=inngest.TriggerEvent(event="t/order")
    )
    def waiter(ctx: inngest.ContextSync) -> Any:
        approved = ctx.step.wait_for_event(
            "approval",
            event="t/approved",
            if_exp="event.data.order == async.data.order",
            timeout=datetime.timedelta(hours=1),
        )
        return None if approved is None else approved.data

    @client.create_function(fn_id="child", retries=0, trigger=inngest.TriggerEvent(event="t/never"))
    def child(ctx: inngest.ContextSync) -> dict[str, int]:
        return {"doubled": int(str(ctx.event.data["n"])) * 2}

    @client.create_function(
        fn_id="parent", retries=0, trigger=inngest.TriggerEvent(event="t/parent")
    )
    def parent(ctx: inngest.ContextSync) -> Any:
        return ctx.step.invoke("call-child", function=child, data={"n": 21})

    return client, [steps, five, napper, waiter, child, parent]


class Cluster(Driver):
    """A ``Driver`` whose functions each get their own runtime (own clients, own caches),
    with two dispatch containers; ``poll("dispatch")`` uses the first, ``dispatch_b`` is
    the second."""

    def __init__(self, stack: Stack, clock: VirtualClock, faults: Faults) -> None:
        self.faults = faults
        self.slept: list[float] = []

        def runtime() -> Runtime:
            return make_runtime(
                stack, clock, clients=FaultyClients(faults=faults), sleep=self.slept.append
            )

        super().__init__(stack, clock, runtime)  # one runtime per function, as Lambda does
        self.observer = make_runtime(stack, clock)
        """A runtime without faults, for the test's own reads."""
        self.runtimes["dispatch_b"] = runtime()
        self.dispatch_b: Handler = dispatch_handler.make_handler(
            lambda: self.runtimes["dispatch_b"]
        )

    def runs(self, fn: str) -> list[Run]:
        return self.observer.store.runs.list_runs(function_id=f"{APP_ID}-{fn}", limit=1000)

    def put_events(self, name: str, data: dict[str, Any] | None = None) -> None:
        bus = EventBus(bus_name=self.stack.bus, client=self.stack.events)
        (result,) = bus.publish([{"name": name, "data": data or {}}])
        assert result.ok

    def dispatch_with(self, handler: Handler, messages: list[dict[str, Any]]) -> None:
        self.deliver(
            "dispatch",
            handler,
            messages,
            self.stack.work_queue_url,
            self.stack.work_queue_arn,
        )


@contextmanager
def serving(
    stack: Stack, clock: VirtualClock, faults: Faults
) -> Iterator[tuple[Cluster, Executions]]:
    """The app on loopback, synced in-band through the api function; the cluster."""
    executions = Executions()
    client, functions = build_app(executions)
    web = fastapi.FastAPI()
    inngest.fast_api.serve(web, client, functions)
    server = UvicornAppServer(web)
    try:
        cluster = Cluster(stack, clock, faults)
        status, body = cluster.api(
            "PUT",
            "/v1/apps/sync",
            {"url": f"http://127.0.0.1:{server.port}/api/inngest"},
            {"authorization": f"Bearer {signing.hash_signing_key(SIGNING_KEY)}"},
        )
        assert (status, body["app_id"]) == (200, APP_ID), body
        yield cluster, executions
    finally:
        server.stop()


__all__ = ["APP_ID", "Cluster", "ContainerDied", "Executions", "build_app", "serving"]
