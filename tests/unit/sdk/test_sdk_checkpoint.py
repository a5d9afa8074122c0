"""Checkpointing in the SDK (JS v4 async protocol, safe mode), against a real HTTP server on
127.0.0.1 that plays the server's ``/v1/checkpoint/{run}/async`` (records, answers 409/500).

Time is fake (``Clocks``): backoff sleeps are recorded, not slept; the runtime budget reads
a clock the steps move.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sdk_local_api import LocalApi, Seen

import wayline
from wayline import signing
from wayline.engine.ids import hash_step_id
from wayline.middleware import Encryption, StaticKeys, generate_key
from wayline.sdk import checkpoint, protocol, serialize
from wayline.sdk.checkpoint import Clocks
from wayline.sdk.comm import CommHandler, CommRequest, CommResponse
from wayline.sdk.planner import STEP_RUN, Op, StepRef

KEY = "signkey-test-" + "12" * 32
FALLBACK = "signkey-test-" + "34" * 32
APP_URL = "http://app.internal:3000/api/inngest"
ROUTE = ("POST", "/v1/checkpoint/r1/async")


@dataclass
class Fake:
    """Fake time: sleeps are recorded, the monotonic clock moves only when a step says so."""

    now_s: float = 0.0
    slept: list[float] | None = None

    def clocks(self) -> Clocks:
        self.slept = []

        def sleep(seconds: float) -> None:
            assert self.slept is not None
            self.slept.append(seconds)

        async def sleep_async(seconds: float) -> None:
            sleep(seconds)

        return Clocks(
            now_ms=lambda: 1_764_400_000_000,
            monotonic_s=lambda: self.now_s,
            sleep=sleep,
            sleep_async=sleep_async,
            jitter_s=lambda: 0.01,
        )


def _call(
    *, attempt: int = 0, qi_id: str | None = "q1", steps: dict[str, Any] | None = None
) -> CommRequest:
    ctx: dict[str, Any] = {
        "run_id": "r1",
        "attempt": attempt,
        "disable_immediate_execution": False,
        "fn_id": "fn-uuid-1",
    }
    if qi_id is not None:
        ctx["qi_id"] = qi_id
    body = {"event": {"name": "x", "data": {}}, "steps": steps or {}, "ctx": ctx}
    headers = {"x-request-id": "req-1", "x-inngest-generation-id": "3"}
    query = {"fnId": "shop-f", "stepId": "step"}
    return CommRequest("POST", APP_URL, headers, query, json.dumps(body).encode())


def _serve(
    client: wayline.Wayline, fn: wayline.Function[Any, Any], fake: Fake, request: CommRequest
) -> CommResponse:
    handler = CommHandler(client, [fn], framework="test", checkpoint_clocks=fake.clocks())
    if fn.is_async:
        return asyncio.run(handler.handle(request))
    return handler.handle_sync(request)


def _client(api: str, **args: Any) -> wayline.Wayline:
    return wayline.Wayline(app_id="shop", is_dev=True, base_url=api, environ={}, **args)


def _three_steps(client: wayline.Wayline, ran: list[str], *, is_async: bool) -> Any:
    trigger = wayline.TriggerEvent(event="x")

    def body(name: str) -> str:
        ran.append(name)
        return name.upper()

    if is_async:

        @client.function(id="f", trigger=trigger)
        async def f_async(ctx: wayline.Context) -> Any:
            return [await ctx.step.run(name, body, name) for name in ("a", "b", "c")]

        return f_async

    @client.function(id="f", trigger=trigger)
    def f_sync(ctx: wayline.SyncContext) -> Any:
        return [ctx.step.run(name, body, name) for name in ("a", "b", "c")]

    return f_sync


def _steps(seen: list[Seen]) -> list[dict[str, Any]]:
    return [step for s in seen for step in s.body["steps"]]


@pytest.mark.parametrize("is_async", [True, False])
def test_steps_run_in_one_request_each_acked_before_the_next(
    local_api: LocalApi, is_async: bool
) -> None:
    ran: list[str] = []
    ran_at_checkpoint: list[list[str]] = []

    def save(request: Seen) -> tuple[int, Any]:
        ran_at_checkpoint.append(list(ran))
        return 200, {}

    local_api.routes[ROUTE] = save
    client = _client(local_api.url, signing_key=KEY)
    fn = _three_steps(client, ran, is_async=is_async)
    response = _serve(client, fn, Fake(), _call())
    assert response.status == 200
    assert json.loads(response.body) == ["A", "B", "C"]
    # Safe mode: step b's body starts only after a's checkpoint was answered.
    assert ran_at_checkpoint == [["a"], ["a", "b"], ["a", "b", "c"]]
    first = local_api.seen[0]
    assert first.headers["authorization"] == f"Bearer {signing.hash_signing_key(KEY)}"
    assert first.headers["content-type"] == "application/json"
    assert {k: v for k, v in first.body.items() if k != "steps"} == {
        "run_id": "r1",
        "fn_id": "fn-uuid-1",
        "qi_id": "q1",
        "request_id": "req-1",
        "generation_id": 3,
        "request_started_at": 1_764_400_000_000,
        "ts": 1_764_400_000_000,
    }
    assert [
        (s["op"], s["id"], s["name"], s["displayName"], s["data"]) for s in _steps(local_api.seen)
    ] == [("StepRun", hash_step_id(n), n, n, n.upper()) for n in ("a", "b", "c")]


def test_a_checkpointed_step_carries_the_classic_answers_bytes(local_api: LocalApi) -> None:
    local_api.routes[ROUTE] = (200, {})
    ran: list[str] = []
    classic_client = _client(local_api.url, checkpointing=False)
    classic = _serve(
        classic_client, _three_steps(classic_client, ran, is_async=True), Fake(), _call()
    )
    assert classic.status == 206 and local_api.seen == []
    client = _client(local_api.url)
    _serve(client, _three_steps(client, ran, is_async=True), Fake(), _call())
    checkpointed = _steps(local_api.seen)[0]
    assert checkpointed.pop("timing") == {"b": 0}  # the fake clock did not move
    assert checkpointed == json.loads(classic.body)[0]


def test_the_code_after_a_step_sees_what_a_replay_sees(local_api: LocalApi) -> None:
    """js#1622: the value goes through JSON (a tuple comes back a list, as on replay)."""
    local_api.routes[ROUTE] = (200, {})
    client = _client(local_api.url)
    seen: list[Any] = []

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
    def f(ctx: wayline.SyncContext) -> None:
        seen.append(ctx.step.run("a", lambda: {"pair": (1, 2), "n": 1.5}))

    assert _serve(client, f, Fake(), _call()).status == 200
    replayed = _call(steps={hash_step_id("a"): {"data": _steps(local_api.seen)[0]["data"]}})
    assert _serve(_client(local_api.url, checkpointing=False), f, Fake(), replayed).status == 200
    assert seen[0] == seen[1] == {"pair": [1, 2], "n": 1.5}


def test_a_stale_dispatch_halts_with_a_non_retriable_400(local_api: LocalApi) -> None:
    local_api.routes[ROUTE] = (409, {"error": "stale dispatch"})
    ran: list[str] = []
    client = _client(local_api.url)
    response = _serve(client, _three_steps(client, ran, is_async=True), Fake(), _call())
    assert response.status == 400
    assert response.headers["x-inngest-no-retry"] == "true"
    assert json.loads(response.body)["code"] == "stale_dispatch"
    assert ran == ["a"]  # nothing after the refused step ran
    assert len(local_api.seen) == 1  # a 409 is not retried


@pytest.mark.parametrize("is_async", [True, False])
@pytest.mark.parametrize("failure", ["500", "429", "unreachable"])
def test_a_failing_endpoint_is_retried_then_the_step_is_answered_classically(
    local_api: LocalApi, is_async: bool, failure: str
) -> None:
    if failure != "unreachable":
        local_api.routes[ROUTE] = (int(failure), {"error": "nope"})
    ran: list[str] = []
    client = _client(local_api.url if failure != "unreachable" else "http://127.0.0.1:9")
    fake = Fake()
    response = _serve(client, _three_steps(client, ran, is_async=is_async), fake, _call())
    assert response.status == 206
    (op,) = json.loads(response.body)
    assert (op["op"], op["id"], op["data"]) == ("StepRun", hash_step_id("a"), "A")
    assert ran == ["a"]
    assert fake.slept == pytest.approx([0.11, 0.21, 0.41, 0.81])
    if failure != "unreachable":
        assert len(local_api.seen) == 5


@pytest.mark.parametrize("is_async", [True, False])
@pytest.mark.parametrize("status", [400, 404, 413])
def test_a_refused_request_falls_back_at_once_without_retries(
    local_api: LocalApi, is_async: bool, status: int
) -> None:
    """The same bytes again cannot pass a 400, a missing route or a size limit: one POST,
    no backoff, then the classic answer."""
    local_api.routes[ROUTE] = (status, {"error": "no"})
    ran: list[str] = []
    client = _client(local_api.url)
    fake = Fake()
    response = _serve(client, _three_steps(client, ran, is_async=is_async), fake, _call())
    assert response.status == 206
    (op,) = json.loads(response.body)
    assert (op["op"], op["id"], op["data"]) == ("StepRun", hash_step_id("a"), "A")
    assert ran == ["a"] and fake.slept == [] and len(local_api.seen) == 1


def test_a_checkpoint_recovers_within_its_retries(local_api: LocalApi) -> None:
    answers = iter([500, 503, 200, 200, 200])
    local_api.routes[ROUTE] = lambda request: (next(answers), {})
    ran: list[str] = []
    client = _client(local_api.url)
    fake = Fake()
    response = _serve(client, _three_steps(client, ran, is_async=False), fake, _call())
    assert response.status == 200
    assert fake.slept == pytest.approx([0.11, 0.21])
    assert [s["id"] for s in _steps(local_api.seen)] == [hash_step_id(n) for n in "aaabc"]


def test_a_rejected_key_is_retried_with_the_fallback(local_api: LocalApi) -> None:
    primary = f"Bearer {signing.hash_signing_key(KEY)}"
    local_api.routes[ROUTE] = lambda r: (
        (401, {})
        if r.headers["authorization"] == primary
        else (
            200,
            {},
        )
    )
    ran: list[str] = []
    client = _client(local_api.url, signing_key=KEY, signing_key_fallback=FALLBACK)
    response = _serve(client, _three_steps(client, ran, is_async=True), Fake(), _call())
    assert response.status == 200
    assert len(local_api.seen) == 6


@pytest.mark.parametrize(
    ("request_", "client_args", "fn_args"),
    [
        (_call(attempt=1), {}, {}),  # a retry: classic (js#1540)
        (_call(qi_id=None), {}, {}),  # fn_id without qi_id: never checkpoint
        (_call(), {"checkpointing": False}, {}),
        (_call(), {}, {"checkpointing": False}),
    ],
    ids=["retry", "no-qi-id", "client-off", "function-off"],
)
def test_classic_when_not_offered_or_switched_off(
    local_api: LocalApi,
    request_: CommRequest,
    client_args: dict[str, Any],
    fn_args: dict[str, Any],
) -> None:
    local_api.routes[ROUTE] = (200, {})
    client = _client(local_api.url, **client_args)
    ran: list[str] = []

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"), **fn_args)
    def f(ctx: wayline.SyncContext) -> None:
        ctx.step.run("a", lambda: ran.append("a"))
        ctx.step.run("b", lambda: ran.append("b"))

    response = _serve(client, f, Fake(), request_)
    assert response.status == 206
    assert [op["op"] for op in json.loads(response.body)] == ["StepRun"]
    assert ran == ["a"] and local_api.seen == []


def test_a_function_can_turn_it_on_when_the_client_turned_it_off(local_api: LocalApi) -> None:
    local_api.routes[ROUTE] = (200, {})
    client = _client(local_api.url, checkpointing=False)
    ran: list[str] = []

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"), checkpointing=True)
    def f(ctx: wayline.SyncContext) -> None:
        ctx.step.run("a", lambda: ran.append("a"))

    assert _serve(client, f, Fake(), _call()).status == 200
    assert len(local_api.seen) == 1


def test_past_max_runtime_the_next_step_is_handed_back_planned(local_api: LocalApi) -> None:
    local_api.routes[ROUTE] = (200, {})
    client = _client(local_api.url)
    fake = Fake()

    def slow(name: str) -> str:
        fake.now_s += 4  # each body takes 4 s of the 10 s budget
        return name

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
    def f(ctx: wayline.SyncContext) -> None:
        for name in ("a", "b", "c", "d"):
            ctx.step.run(name, slow, name)

    response = _serve(client, f, fake, _call())
    assert response.status == 206
    (op,) = json.loads(response.body)
    assert (op["op"], op["id"], op["name"]) == ("StepPlanned", hash_step_id("d"), "d")
    assert [(s["name"], s["timing"]) for s in _steps(local_api.seen)] == [
        (name, {"b": 4_000_000_000}) for name in "abc"
    ]


def test_max_runtime_is_configurable(local_api: LocalApi) -> None:
    local_api.routes[ROUTE] = (200, {})
    budget = wayline.Checkpointing(max_runtime=timedelta(seconds=1))
    client = _client(local_api.url, checkpointing=budget)
    fake = Fake()

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
    def f(ctx: wayline.SyncContext) -> None:
        ctx.step.run("a", lambda: setattr(fake, "now_s", 2.0))
        ctx.step.run("b", lambda: None)

    response = _serve(client, f, fake, _call())
    assert [op["op"] for op in json.loads(response.body)] == ["StepPlanned"]
    assert len(local_api.seen) == 1


def test_a_lambda_caps_the_runtime_at_its_remaining_time(local_api: LocalApi) -> None:
    import wayline.aws_lambda

    local_api.routes[ROUTE] = (200, {})
    client = _client(local_api.url)
    ran: list[str] = []

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
    def f(ctx: wayline.SyncContext) -> None:
        ctx.step.run("a", lambda: ran.append("a"))

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1500  # less than the 2 s margin: no time to run a step

    request = _call()
    event = {
        "requestContext": {"http": {"method": "POST"}},
        "rawPath": "/api/inngest",
        "rawQueryString": "fnId=shop-f&stepId=step",
        "headers": dict(request.headers),
        "body": request.body.decode(),
    }
    answer = wayline.aws_lambda.serve(client, [f])(event, Context())
    assert answer["statusCode"] == 206
    assert [op["op"] for op in json.loads(answer["body"])] == ["StepPlanned"]
    assert ran == [] and local_api.seen == []


def test_async_ops_groups_and_errors_end_the_request_as_before(local_api: LocalApi) -> None:
    local_api.routes[ROUTE] = (200, {})
    client = _client(local_api.url)

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"), retries=2)
    async def f(ctx: wayline.Context) -> None:
        await ctx.step.run("a", lambda: 1)
        if ctx.event.data.get("then") == "sleep":
            await ctx.step.sleep("nap", "1m")
        if ctx.event.data.get("then") == "group":
            await ctx.group.parallel([lambda: ctx.step.run("p", lambda: 2)])
        await ctx.step.run("boom", lambda: 1 / 0)

    answers = {}
    for then in ("sleep", "group", "error"):
        request = _call()
        body = json.loads(request.body)
        body["event"]["data"]["then"] = then
        request = CommRequest(
            "POST", APP_URL, request.headers, request.query, json.dumps(body).encode()
        )
        response = _serve(client, f, Fake(), request)
        answers[then] = (response.status, [op["op"] for op in json.loads(response.body)])
    assert answers == {
        "sleep": (206, ["Sleep"]),
        "group": (206, ["StepPlanned"]),
        "error": (206, ["StepError"]),
    }
    assert [s["name"] for s in _steps(local_api.seen)] == ["a", "a", "a"]


class Recorder(wayline.Middleware):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def before_step(self, call: wayline.CallInfo, step: wayline.StepInfo) -> None:
        self.log.append(f"before {step.step_id}")

    def after_step(
        self, call: wayline.CallInfo, step: wayline.StepInfo, error: Exception | None
    ) -> None:
        self.log.append(f"after {step.step_id}")

    def transform_step_output(
        self, call: wayline.CallInfo, step: wayline.StepInfo, data: Any
    ) -> Any:
        self.log.append(f"output {step.step_id}")
        return data


def test_middleware_sees_checkpointed_steps_as_classic_ones(local_api: LocalApi) -> None:
    log: list[str] = []

    def save(request: Seen) -> tuple[int, Any]:
        log.append("checkpoint")
        return 200, {}

    local_api.routes[ROUTE] = save
    client = _client(local_api.url, middleware=[Recorder(log)])
    ran: list[str] = []
    assert _serve(client, _three_steps(client, ran, is_async=True), Fake(), _call()).status == 200
    per_step = ["before {}", "after {}", "output {}", "checkpoint"]
    assert log == [entry.format(n) for n in "abc" for entry in per_step]


def test_encrypted_steps_are_checkpointed_encrypted_and_read_back_plain(
    local_api: LocalApi,
) -> None:
    local_api.routes[ROUTE] = (200, {})
    encryption = Encryption(StaticKeys(("k1", generate_key())))
    client = _client(local_api.url, middleware=[encryption])
    seen: list[Any] = []

    @client.function(id="f", trigger=wayline.TriggerEvent(event="x"))
    async def f(ctx: wayline.Context) -> None:
        secret = await ctx.step.run("a", lambda: {"ssn": "123-45-6789"})
        seen.append(secret)
        await ctx.step.run("b", lambda: secret["ssn"][-4:])

    assert _serve(client, f, Fake(), _call()).status == 200
    a, b = _steps(local_api.seen)
    assert a["data"]["__ENCRYPTED__"] is True and "6789" not in json.dumps(local_api.seen[0].body)
    assert encryption.decrypt(a["data"]) == {"ssn": "123-45-6789"}
    assert encryption.decrypt(b["data"]) == "6789"
    assert seen == [{"ssn": "123-45-6789"}]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: wayline.Checkpointing(max_runtime=timedelta(seconds=-1)), "max_runtime"),
        (lambda: wayline.Checkpointing(max_runtime=10), "max_runtime"),  # type: ignore[arg-type]
        (lambda: _client("http://127.0.0.1:9", checkpointing="yes"), "the client"),
    ],
)
def test_bad_checkpointing_settings_are_config_errors(make: Any, message: str) -> None:
    with pytest.raises(wayline.ConfigError, match=message):
        make()


@pytest.mark.parametrize("generation", [3, None])
def test_the_checkpoint_body_is_built_from_bytes_as_json_would_write_it(
    generation: int | None,
) -> None:
    target = checkpoint.Target(
        api_origin="http://127.0.0.1:8288",
        run_id='r/1"é',
        fn_id="fn",
        qi_id="q\n1",
        request_id="req",
        generation_id=generation,
        started_at_ms=1_764_400_000_000,
        signing_keys=(KEY,),
        env="branch",
    )
    data = {"x": [1, 2.5, None, "ü"], "s": 'a"b'}
    step = StepRef(hash_step_id("s"), "s", 2)
    op = Op(STEP_RUN, step, "s", opts={"parallelMode": "race"}, data=data)
    wire = checkpoint.wire_of(target)
    built = checkpoint.body_bytes(wire, op, serialize.dumps(data), 1_764_400_000_123, 0.0015)
    expected: dict[str, Any] = {
        "run_id": target.run_id,
        "fn_id": "fn",
        "qi_id": "q\n1",
        "request_id": "req",
        "request_started_at": 1_764_400_000_000,
        "steps": [{**protocol.op_json(op), "timing": {"b": 1_500_000}}],
        "ts": 1_764_400_000_123,
    }
    if generation is not None:
        expected["generation_id"] = generation
    assert built == serialize.dumps(expected)
    assert wire.url == "http://127.0.0.1:8288/v1/checkpoint/r%2F1%22%C3%A9/async"
    assert wire.headers[0]["authorization"] == f"Bearer {signing.hash_signing_key(KEY)}"
    assert wire.headers[0]["x-inngest-env"] == "branch"
