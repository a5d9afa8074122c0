"""Middleware hooks: their order (an onion: in by registration order, out in reverse), sync
and async hooks in both kinds of function, and what happens when a hook raises. Each call
goes through the real serve endpoint (``CommHandler``) as the server would make it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, Literal

import pytest

import wayline
from wayline.engine.ids import hash_step_id
from wayline.sdk.comm import CommHandler, CommRequest
from wayline.sdk.execution import CallResult

Flavor = Literal["async", "sync"]
Log = list[str]


class Recorder(wayline.Middleware):
    """Appends ``<name>.<hook>`` to a shared log; ``fail`` names hooks that raise."""

    def __init__(
        self, name: str, log: Log, fail: Sequence[str] = (), *, asynchronous: bool = False
    ):
        self.name = name
        self.log = log
        self.fail = set(fail)
        self.asynchronous = asynchronous

    def _hit(self, hook: str, detail: str = "") -> None:
        self.log.append(f"{self.name}.{hook}{detail}")
        if hook in self.fail:
            raise RuntimeError(f"{self.name}.{hook} broke")

    def _observe(self, hook: str, detail: str = "") -> Any:
        if not self.asynchronous:
            self._hit(hook, detail)
            return None

        async def later() -> None:
            await asyncio.sleep(0)
            self._hit(hook, detail)

        return later()

    def transform_input(self, call: wayline.CallInfo, data: wayline.CallInput) -> Any:
        self._hit("transform_input")
        return data

    def before_function(self, call: wayline.CallInfo) -> Any:
        return self._observe("before_function")

    def before_step(self, call: wayline.CallInfo, step: wayline.StepInfo) -> Any:
        return self._observe("before_step", f"({step.step_id})")

    def after_step(
        self, call: wayline.CallInfo, step: wayline.StepInfo, error: Exception | None
    ) -> Any:
        return self._observe("after_step", f"({step.step_id}{', error' if error else ''})")

    def transform_step_output(
        self, call: wayline.CallInfo, step: wayline.StepInfo, data: Any
    ) -> Any:
        self._hit("transform_step_output")
        return {"wrapped-by": self.name, "inner": data}

    def transform_output(self, call: wayline.CallInfo, data: Any) -> Any:
        self._hit("transform_output")
        return {"wrapped-by": self.name, "inner": data}

    def on_error(
        self, call: wayline.CallInfo, error: Exception, step: wayline.StepInfo | None
    ) -> Any:
        return self._observe("on_error", f"({step.step_id if step else 'function'}: {error})")

    def after_function(self, call: wayline.CallInfo, result: CallResult) -> Any:
        return self._observe("after_function", f"({result.status})")


def _serve(
    flavor: Flavor,
    client_mw: Sequence[wayline.Middleware],
    fn_mw: Sequence[wayline.Middleware] = (),
    *,
    body_fails: bool = False,
) -> CommHandler:
    client = wayline.Wayline(app_id="shop", is_dev=True, environ={}, middleware=client_mw)

    def step_body() -> int:
        if body_fails:
            raise ValueError("body broke")
        return 1

    if flavor == "async":

        @client.function(id="f", trigger=wayline.TriggerEvent(event="x"), middleware=fn_mw)
        async def fn_async(ctx: wayline.Context) -> dict[str, int]:
            return {"a": await ctx.step.run("a", step_body)}

        return CommHandler(client, [fn_async], framework="test")

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"), middleware=fn_mw)
    def fn_sync(ctx: wayline.SyncContext) -> dict[str, int]:
        return {"a": ctx.step.run("a", step_body)}

    return CommHandler(client, [fn_sync], framework="test")


def _call(
    handler: CommHandler, steps: dict[str, Any] | None = None
) -> tuple[int, Any, dict[str, str]]:
    body = {
        "event": {"name": "x", "data": {}},
        "events": [{"name": "x", "data": {}}],
        "steps": steps or {},
        "ctx": {"run_id": "r1", "attempt": 0, "disable_immediate_execution": False},
    }
    request = CommRequest(
        "POST",
        "http://app/api/inngest",
        {"TraceParent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {"fnId": "shop-f", "stepId": "step"},
        json.dumps(body).encode(),
    )
    response = asyncio.run(handler.handle(request))
    return response.status, json.loads(response.body), response.headers


FLAVORS: list[Flavor] = ["async", "sync"]


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync-hooks", "async-hooks"])
def test_hooks_wrap_the_call_like_an_onion(flavor: Flavor, asynchronous: bool) -> None:
    log: Log = []
    a, b = Recorder("A", log, asynchronous=asynchronous), Recorder("B", log)
    c = Recorder("C", log, asynchronous=asynchronous)
    status, body, _ = _call(_serve(flavor, [a, b], [c]))
    assert status == 206
    assert log == [
        "A.transform_input",
        "B.transform_input",
        "C.transform_input",
        "A.before_function",
        "B.before_function",
        "C.before_function",
        "A.before_step(a)",
        "B.before_step(a)",
        "C.before_step(a)",
        "C.after_step(a)",
        "B.after_step(a)",
        "A.after_step(a)",
        "C.transform_step_output",
        "B.transform_step_output",
        "A.transform_step_output",
        "C.after_function(206)",
        "B.after_function(206)",
        "A.after_function(206)",
    ]
    # The first middleware wraps last on the way out: its transform is the outermost.
    data = body[0]["data"]
    assert data["wrapped-by"] == "A"
    assert data["inner"]["wrapped-by"] == "B"
    assert data["inner"]["inner"] == {"wrapped-by": "C", "inner": 1}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_replayed_step_runs_no_step_hooks_and_the_output_is_transformed(flavor: Flavor) -> None:
    log: Log = []
    status, body, _ = _call(
        _serve(flavor, [Recorder("A", log), Recorder("B", log)]),
        steps={hash_step_id("a"): {"data": 7}},
    )
    assert status == 200
    assert body == {"wrapped-by": "A", "inner": {"wrapped-by": "B", "inner": {"a": 7}}}
    assert [e for e in log if "step" in e] == []
    assert log[-4:] == [
        "B.transform_output",
        "A.transform_output",
        "B.after_function(200)",
        "A.after_function(200)",
    ]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_failing_step_body_is_told_outward_and_still_retried(flavor: Flavor) -> None:
    log: Log = []
    status, body, _ = _call(
        _serve(flavor, [Recorder("A", log), Recorder("B", log)], body_fails=True)
    )
    assert status == 206
    assert body[0]["op"] == "StepError"
    assert body[0]["error"]["message"] == "body broke"
    assert log[6:] == [
        "B.after_step(a, error)",
        "B.on_error(a: body broke)",
        "A.after_step(a, error)",
        "A.on_error(a: body broke)",
        "B.after_function(206)",
        "A.after_function(206)",
    ]


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("hook", ["transform_input", "before_function", "after_function"])
def test_a_function_hook_that_raises_fails_the_request_retriably(flavor: Flavor, hook: str) -> None:
    log: Log = []
    status, body, headers = _call(_serve(flavor, [Recorder("A", log, fail=[hook])]))
    assert status == 500
    assert body["message"] == f"A.{hook} broke"
    assert "x-inngest-no-retry" not in headers
    if hook != "after_function":
        assert not any("before_step" in e for e in log), "the function must not have run"


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("hook", ["before_step", "after_step", "transform_step_output"])
def test_a_step_hook_that_raises_fails_that_step_attempt(flavor: Flavor, hook: str) -> None:
    status, body, _ = _call(_serve(flavor, [Recorder("A", [], fail=[hook])]))
    assert status == 206
    assert body[0]["op"] == "StepError"  # retried like a step body error
    assert body[0]["error"]["message"] == f"A.{hook} broke"


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_raising_error_hook_is_logged_and_the_original_error_stands(
    flavor: Flavor, caplog: pytest.LogCaptureFixture
) -> None:
    log: Log = []
    with caplog.at_level(logging.ERROR, logger="wayline"):
        status, body, _ = _call(
            _serve(
                flavor, [Recorder("A", log), Recorder("B", log, fail=["on_error"])], body_fails=True
            )
        )
    assert status == 206
    assert body[0]["error"]["message"] == "body broke"
    assert "A.on_error(a: body broke)" in log  # the next middleware is still told
    assert "a middleware's error hook raised" in caplog.text


def test_a_function_error_reaches_on_error_without_a_step() -> None:
    log: Log = []
    client = wayline.Wayline(
        app_id="shop", is_dev=True, environ={}, middleware=[Recorder("A", log)]
    )

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
    def broken(ctx: wayline.SyncContext) -> None:
        raise KeyError("nope")

    status, _, _ = _call(CommHandler(client, [broken], framework="test"))
    assert status == 500
    assert log[-2:] == ["A.on_error(function: 'nope')", "A.after_function(500)"]


def test_middleware_must_be_middleware() -> None:
    with pytest.raises(wayline.ConfigError, match=r"wayline\.Middleware"):
        wayline.Wayline(app_id="shop", is_dev=True, environ={}, middleware=[object()])  # type: ignore[list-item]


class Sent:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send(self, events: Sequence[dict[str, Any]]) -> list[str]:
        self.events.extend(events)
        return [str(i) for i, _ in enumerate(events)]

    async def send_async(self, events: Sequence[dict[str, Any]]) -> list[str]:
        return self.send(events)


class Tag(wayline.Middleware):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def transform_send(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**e, "data": {**e["data"], "tags": [*e["data"].get("tags", []), self.tag]}}
            for e in events
        ]


def test_events_leaving_the_app_pass_transform_send_in_order() -> None:
    sent = Sent()
    client = wayline.Wayline(
        app_id="shop", is_dev=True, environ={}, sender=sent, middleware=[Tag("a"), Tag("b")]
    )
    client.send(wayline.Event(name="x", data={}))
    asyncio.run(client.send_async(wayline.Event(name="y", data={})))
    assert [e["data"]["tags"] for e in sent.events] == [["a", "b"], ["a", "b"]]


# ----------------------------------------------------------------- built-in middleware


def test_otel_spans_join_the_servers_trace_and_nest_steps() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from wayline.middleware import OpenTelemetry

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    status, _, _ = _call(
        _serve("async", [OpenTelemetry(tracer_provider=provider)], body_fails=True)
    )
    assert status == 206
    step, function = exporter.get_finished_spans()
    assert function.name == "wayline.function shop-f"
    assert step.name == "wayline.step a"
    # The request's traceparent: its trace id, and the server's span as the parent.
    assert function.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert function.parent is not None and function.parent.span_id == 0xB7AD6B7169203331
    assert step.parent is not None and step.parent.span_id == function.context.span_id
    assert step.status.status_code.name == "ERROR"
    assert step.events[0].name == "exception"
    assert function.attributes == {
        "wayline.run_id": "r1",
        "wayline.function_id": "shop-f",
        "wayline.attempt": 0,
        "wayline.event_name": "x",
        "wayline.status": 206,
    }


@pytest.mark.parametrize("flavor", FLAVORS)
def test_logging_context_puts_run_function_and_step_ids_on_records(flavor: Flavor) -> None:
    from wayline.middleware import ContextFilter, LoggingContext

    seen: list[tuple[Any, ...]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            fields = ("wayline_run_id", "wayline_function_id", "wayline_step_id")
            seen.append((record.getMessage(), *(getattr(record, f) for f in fields)))

    handler = Collect()
    handler.addFilter(ContextFilter())
    app_logger = logging.getLogger("test.app")
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.INFO)
    client = wayline.Wayline(app_id="shop", is_dev=True, environ={}, middleware=[LoggingContext()])

    def body() -> int:
        app_logger.info("in step")
        return 1

    if flavor == "async":

        @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
        async def fn(ctx: wayline.Context) -> int:
            app_logger.info("in function")
            return await ctx.step.run("a", body)

    else:

        @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
        def fn(ctx: wayline.SyncContext) -> int:
            app_logger.info("in function")
            return ctx.step.run("a", body)

    try:
        _call(CommHandler(client, [fn], framework="test"))
        app_logger.info("after")
    finally:
        app_logger.removeHandler(handler)
    assert seen == [
        ("in function", "r1", "shop-f", None),
        ("in step", "r1", "shop-f", "a"),
        ("after", None, None, None),
    ]
