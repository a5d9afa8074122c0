"""Wire parity with the official Python SDK: same requests in, same responses out.

The same program is written with both SDKs and served by FastAPI; each case replays a
sequence of call requests (memos, targeted steps, attempts, ``disable_immediate_execution``)
against both apps in-process (``httpx.ASGITransport``) and compares status, body and the
headers the server acts on. Stack traces and the wake-up times of sleeps are normalized.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest

import wayline
import wayline.fastapi
from wayline.sdk.execution import retry_after_header


def h(step_id: str) -> str:
    return hashlib.sha1(step_id.encode(), usedforsecurity=False).hexdigest()


class BoomError(Exception):
    pass


def one() -> int:
    return 1


def boom() -> int:
    raise BoomError("nope")


async def one_async() -> int:  # the official SDK types async functions' steps as async
    return 1


async def boom_async() -> int:
    raise BoomError("nope")


def build_official() -> fastapi.FastAPI:
    client = inngest.Inngest(app_id="shop", is_production=False)
    fns: list[inngest.Function[Any]] = []

    def add(fn_id: str, retries: int = 1) -> Callable[[Callable[..., Any]], Any]:
        def register(handler: Callable[..., Any]) -> Any:
            trigger = inngest.TriggerEvent(event="e")
            fn = client.create_function(fn_id=fn_id, trigger=trigger, retries=retries)(handler)
            fns.append(fn)
            return fn

        return register

    @add("steps")
    async def steps(ctx: inngest.Context) -> Any:
        a = await ctx.step.run("a", one_async)
        for _ in range(2):
            await ctx.step.run("loop", one_async)
        await ctx.step.sleep("nap", timedelta(seconds=1))
        ev = await ctx.step.wait_for_event(
            "wait", event="x/y", if_exp="event.data.k == async.data.k", timeout=timedelta(hours=1)
        )
        got = await ctx.step.invoke_by_id("inv", function_id="child", data={"z": 1})
        return {"a": a, "ev": None if ev is None else ev.name, "got": got}

    @add("groups")
    async def groups(ctx: inngest.Context) -> Any:
        await ctx.group.parallel(
            (lambda: ctx.step.run("p1", one_async), lambda: ctx.step.run("p2", one_async))
        )
        await ctx.group.parallel(
            (
                lambda: ctx.step.run("r1", one_async),
                lambda: ctx.step.sleep("r2", timedelta(seconds=2)),
            ),
            parallel_mode=inngest.ParallelMode.RACE,
        )
        return await ctx.step.run("after", one_async)

    @add("errors", retries=2)
    async def errors(ctx: inngest.Context) -> Any:
        with contextlib.suppress(inngest.StepError):
            await ctx.step.run("caught", boom_async)
        await ctx.step.run("uncaught", boom_async)

    @add("control")
    def control(ctx: inngest.ContextSync) -> Any:
        kind = ctx.event.data.get("kind")

        def nested() -> int:
            return ctx.step.run("inner", one)

        if kind == "nested":
            ctx.step.run("outer", nested)
        if kind == "non-retriable":
            ctx.step.run("stop", _raise, inngest.NonRetriableError("stop"))
        if kind == "retry-after":
            raise inngest.RetryAfterError("later", timedelta(seconds=30))
        if kind == "none":
            return None
        return kind

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, fns)
    return app


def _raise(error: Exception) -> int:
    raise error


def build_wayline() -> fastapi.FastAPI:
    client = wayline.Wayline(app_id="shop", is_dev=True, environ={})
    fns: list[wayline.Function[Any, Any]] = []

    def trigger() -> wayline.TriggerEvent:
        return wayline.TriggerEvent(event="e")

    @client.function(id="steps", trigger=trigger(), retries=1)
    async def steps(ctx: wayline.Context) -> Any:
        a = await ctx.step.run("a", one)
        for _ in range(2):
            await ctx.step.run("loop", one)
        await ctx.step.sleep("nap", timedelta(seconds=1))
        ev = await ctx.step.wait_for_event(
            "wait", event="x/y", if_="event.data.k == async.data.k", timeout="1h"
        )
        got = await ctx.step.invoke_by_id("inv", function_id="shop-child", data={"z": 1})
        return {"a": a, "ev": None if ev is None else ev.name, "got": got}

    @client.function(id="groups", trigger=trigger(), retries=1)
    async def groups(ctx: wayline.Context) -> Any:
        await ctx.group.parallel([lambda: ctx.step.run("p1", one), lambda: ctx.step.run("p2", one)])
        await ctx.group.parallel(
            [lambda: ctx.step.run("r1", one), lambda: ctx.step.sleep("r2", "2s")], mode="race"
        )
        return await ctx.step.run("after", one)

    @client.function(id="errors", trigger=trigger(), retries=2)
    async def errors(ctx: wayline.Context) -> Any:
        with contextlib.suppress(wayline.StepError):
            await ctx.step.run("caught", boom)
        await ctx.step.run("uncaught", boom)

    @client.function(id="control", trigger=trigger(), retries=1)
    def control(ctx: wayline.SyncContext) -> Any:
        kind = ctx.event.data.get("kind")

        def nested() -> int:
            return ctx.step.run("inner", one)

        if kind == "nested":
            ctx.step.run("outer", nested)
        if kind == "non-retriable":
            ctx.step.run("stop", _raise, wayline.NonRetriableError("stop"))
        if kind == "retry-after":
            raise wayline.RetryAfterError("later", timedelta(seconds=30))
        if kind == "none":
            return None
        return kind

    fns += [steps, groups, errors, control]
    app = fastapi.FastAPI()
    wayline.fastapi.serve(app, client, fns)
    return app


# (function, stepId, memos, attempt, max_attempts, disable_immediate_execution, event data)
Case = tuple[str, str, dict[str, Any], int, int, bool, dict[str, Any]]
ERR = {"error": {"name": "BoomError", "message": "nope", "stack": "Traceback ..."}}
ONE = {"data": 1}
FIVE = {"data": 5}
EVENT = {"name": "x/y", "data": {}}
STEPS_DONE = {
    h("a"): {"data": 1},
    h("loop"): {"data": 1},
    h("loop:1"): {"data": 1},
    h("nap"): None,
}
GROUPS_DONE = {h("p1"): {"data": 1}, h("p2"): {"data": 1}}
CASES: dict[str, Case] = {
    "first step runs inline": ("steps", "step", {}, 0, 2, False, {}),
    "repeated ids are suffixed": ("steps", "step", {h("a"): ONE, h("loop"): ONE}, 0, 2, False, {}),
    "sleep": ("steps", "step", {h("a"): ONE, h("loop"): ONE, h("loop:1"): ONE}, 0, 2, False, {}),
    "wait for event": ("steps", "step", STEPS_DONE, 0, 2, False, {}),
    "invoke": ("steps", "step", {**STEPS_DONE, h("wait"): EVENT}, 0, 2, False, {}),
    "done": ("steps", "step", {**STEPS_DONE, h("wait"): None, h("inv"): FIVE}, 0, 2, False, {}),
    "immediate execution disabled": ("steps", "step", {}, 0, 2, True, {}),
    "a group is planned": ("groups", "step", {}, 0, 2, False, {}),
    "a planned step runs when targeted": ("groups", h("p2"), {}, 0, 2, False, {}),
    "a racing group is planned": ("groups", "step", GROUPS_DONE, 0, 2, False, {}),
    "a racing step runs when targeted": ("groups", h("r1"), GROUPS_DONE, 0, 2, False, {}),
    "after the groups, with immediate execution disabled": (
        "groups", "step", {**GROUPS_DONE, h("r1"): {"data": 1}, h("r2"): None}, 0, 2, True, {},
    ),
    "an unknown target": ("groups", h("nowhere"), GROUPS_DONE, 0, 2, False, {}),
    "a step error with retries left": ("errors", "step", {}, 0, 3, False, {}),
    "a step error on the last attempt": ("errors", "step", {}, 2, 3, False, {}),
    "a memoized error can be caught": ("errors", "step", {h("caught"): ERR}, 0, 3, False, {}),
    "an uncaught memoized error fails the function": (
        "errors", "step", {h("caught"): ERR, h("uncaught"): ERR}, 0, 3, False, {},
    ),
    "a nested step": ("control", "step", {}, 0, 2, False, {"kind": "nested"}),
    "non-retriable inside a step": ("control", "step", {}, 0, 2, False, {"kind": "non-retriable"}),
    "retry after": ("control", "step", {}, 0, 2, False, {"kind": "retry-after"}),
    "returning None": ("control", "step", {}, 0, 2, False, {"kind": "none"}),
    "returning a value": ("control", "step", {}, 0, 2, False, {"kind": "ok"}),
}  # fmt: skip


def normalize(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: normalize(v) for k, v in value.items()}
        if out.get("op") == "Sleep":
            # A deliberate difference: the official SDK sends the wake-up time on its own
            # clock; Wayline sends the duration (name and opts.duration), as the JS SDK does.
            out["name"] = "<sleep target>"
            out.pop("opts", None)
        if isinstance(out.get("stack"), str):
            out["stack"] = "<stack>"
        if out.get("code") == "step_unexpected":
            # The same failure, caught one step earlier here (at the end of the group whose
            # branches were all skipped) and named NonDeterminismError, not StepUnexpectedError.
            out["name"] = out["message"] = "<non-determinism>"
        if out.get("code") == "step_nested":
            out["name"] = out["stack"] = "<nested>"  # CodedError there, NestedStepError here
        return out
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


@pytest.fixture(scope="module")
def apps() -> Iterator[tuple[fastapi.FastAPI, fastapi.FastAPI]]:
    yield build_official(), build_wayline()


async def _post(app: fastapi.FastAPI, case: Case) -> httpx.Response:
    fn, step, memos, attempt, max_attempts, disable, data = case
    event = {"name": "e", "data": data, "id": "ev1", "ts": 1}
    body = {
        "event": event,
        "events": [event],
        "steps": memos,
        "use_api": False,
        "version": 2,
        "ctx": {
            "run_id": "run1",
            "attempt": attempt,
            "max_attempts": max_attempts,
            "disable_immediate_execution": disable,
            "stack": {"stack": list(memos), "current": len(memos)},
        },
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        return await http.post(f"/api/inngest?fnId=shop-{fn}&stepId={step}", json=body)


@pytest.mark.parametrize("name", list(CASES))
def test_same_response_as_the_official_sdk(
    name: str, apps: tuple[fastapi.FastAPI, fastapi.FastAPI]
) -> None:
    official_app, wayline_app = apps
    official = asyncio.run(_post(official_app, CASES[name]))
    ours = asyncio.run(_post(wayline_app, CASES[name]))
    assert ours.status_code == official.status_code
    assert normalize(ours.json()) == normalize(official.json())
    for header in ("x-inngest-no-retry", "x-inngest-req-version", "content-type"):
        assert ours.headers.get(header) == official.headers.get(header), header
    assert ("retry-after" in ours.headers) == ("retry-after" in official.headers)
    assert ours.headers["x-inngest-sdk"].startswith("wayline-py:v")


def test_retry_after_a_delay_is_sent_as_delta_seconds() -> None:
    """The official SDK sends ``now + delay`` on the app's clock; a delay is sent as one,
    so the server's clock measures it (issue 12, item 7)."""
    ours = asyncio.run(_post(build_wayline(), CASES["retry after"]))
    assert ours.headers["retry-after"] == "30"


def test_retry_after_an_absolute_time_is_an_iso_utc_time() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert retry_after_header(wayline.RetryAfterError("later", at)) == "2030-01-02T03:04:05.000Z"


def test_a_sleep_is_sent_as_a_duration() -> None:
    """The Sleep opcode carries no time read from the app's clock (issue 12, item 7)."""
    ours = asyncio.run(_post(build_wayline(), CASES["sleep"]))
    (op,) = ours.json()
    assert op["op"] == "Sleep"
    assert op["opts"] == {"duration": "1s"}
    assert op["name"] == "1s"


def test_unserializable_output_is_non_retriable_here() -> None:
    """The one deliberate difference: the official SDK answers a retriable 500 for an
    unserializable step output, though no retry can fix it; Wayline adds no-retry."""
    client = wayline.Wayline(app_id="shop", is_dev=True, environ={})

    @client.function(id="bad", trigger=wayline.TriggerEvent(event="e"))
    async def bad(ctx: wayline.Context) -> None:
        await ctx.step.run("returns-a-set", lambda: {object()})

    app = fastapi.FastAPI()
    wayline.fastapi.serve(app, client, [bad])
    response = asyncio.run(_post(app, ("bad", "step", {}, 0, 5, False, {})))
    assert response.status_code == 500
    assert response.headers["x-inngest-no-retry"] == "true"
    body = response.json()
    assert body["code"] == "output_unserializable"
    assert 'step "returns-a-set"' in body["message"] and "set" in body["message"]


def test_dev_introspection_matches() -> None:
    async def get(app: fastapi.FastAPI) -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            return (await http.get("/api/inngest")).json()

    official, ours = asyncio.run(get(build_official())), asyncio.run(get(build_wayline()))
    assert ours == json.loads(json.dumps(official))


class RegisterCapture:
    """A ``POST /fn/register`` endpoint on 127.0.0.1 that records what apps send."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                capture.bodies.append(json.loads(self.rfile.read(length)))
                capture.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = b'{"ok":true,"modified":true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_out_of_band_sync_sends_the_official_body() -> None:
    capture = RegisterCapture()
    try:
        official_client = inngest.Inngest(
            app_id="shop", is_production=False, api_base_url=capture.url
        )
        ours_client = wayline.Wayline(app_id="shop", is_dev=True, base_url=capture.url, environ={})

        @official_client.create_function(
            fn_id="f", trigger=inngest.TriggerEvent(event="e"), retries=2
        )
        def official_fn(ctx: inngest.ContextSync) -> None: ...

        @ours_client.function(id="f", trigger=wayline.TriggerEvent(event="e"), retries=2)
        def ours_fn(ctx: wayline.SyncContext) -> None: ...

        official_app, ours_app = fastapi.FastAPI(), fastapi.FastAPI()
        inngest.fast_api.serve(official_app, official_client, [official_fn])
        wayline.fastapi.serve(ours_app, ours_client, [ours_fn])

        async def put(app: fastapi.FastAPI) -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                headers = {"x-inngest-server-kind": "dev"}
                return await http.put("/api/inngest?deployId=d1", headers=headers)

        responses = [asyncio.run(put(official_app)), asyncio.run(put(ours_app))]
    finally:
        capture.close()
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.headers["x-inngest-sync-kind"] for r in responses] == ["out_of_band"] * 2
    official, ours = capture.bodies
    assert official.pop("appname") == ours.pop("appName") == "shop"
    assert official.pop("sdk") == "py:v0.5.19" and ours.pop("sdk").startswith("wayline-py:v")
    assert official.pop("capabilities") == {**ours.pop("capabilities"), "connect": "v1"}
    # py spells it deploy_type, which Go's decoder ignores; js and the spec say deployType.
    assert official.pop("deploy_type") == ours.pop("deployType") == "ping"
    assert ours == official  # url, deployType, framework, v and every function config
    for headers in capture.headers:
        assert headers["x-inngest-expected-server-kind"] == "dev"
        assert headers["x-inngest-framework"] == "fast_api"
