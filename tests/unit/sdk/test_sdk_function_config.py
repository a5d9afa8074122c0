"""FunctionConfig JSON: every option, compared with what the official SDK's ``get_config``
produces for the equivalent function (after its ``deep_strip_none``, as it syncs)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import inngest
import pytest
from inngest._internal import transforms

import wayline
from wayline.errors import ConfigError

APP_URL = "http://127.0.0.1:3000/api/inngest"

# (wayline options, official options) for the same function.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "defaults": ({}, {}),
    "name and retries": ({"name": "Send it", "retries": 3}, {"name": "Send it", "retries": 3}),
    "zero retries": ({"retries": 0}, {"retries": 0}),
    "batch_events": (
        {"batch_events": wayline.Batch(max_size=10, timeout="5s", key="event.data.k", if_="x")},
        {
            "batch_events": inngest.Batch(
                max_size=10, timeout=timedelta(seconds=5), key="event.data.k", if_exp="x"
            )
        },
    ),
    "cancel": (
        {
            "cancel": [
                wayline.Cancel(event="user/deleted", if_="event.data.id == async.data.id"),
                wayline.Cancel(event="user/banned", timeout=timedelta(hours=2)),
            ]
        },
        {
            "cancel": [
                inngest.Cancel(event="user/deleted", if_exp="event.data.id == async.data.id"),
                inngest.Cancel(event="user/banned", timeout=timedelta(hours=2)),
            ]
        },
    ),
    "concurrency": (
        {"concurrency": [wayline.Concurrency(limit=2, key="event.data.k", scope="account")]},
        {"concurrency": [inngest.Concurrency(limit=2, key="event.data.k", scope="account")]},
    ),
    "concurrency as a number": (
        {"concurrency": 5},
        {"concurrency": [inngest.Concurrency(limit=5)]},
    ),
    "debounce": (
        {"debounce": wayline.Debounce(period="5m", key="event.data.doc", timeout="1h")},
        {
            "debounce": inngest.Debounce(
                period=timedelta(minutes=5), key="event.data.doc", timeout=timedelta(hours=1)
            )
        },
    ),
    "idempotency": ({"idempotency": "event.data.id"}, {"idempotency": "event.data.id"}),
    "priority": (
        {"priority": wayline.Priority(run="event.data.vip ? 120 : 0")},
        {"priority": inngest.Priority(run="event.data.vip ? 120 : 0")},
    ),
    "rate_limit": (
        {"rate_limit": wayline.RateLimit(limit=10, period="1h", key="event.data.user")},
        {
            "rate_limit": inngest.RateLimit(
                limit=10, period=timedelta(hours=1), key="event.data.user"
            )
        },
    ),
    "throttle": (
        {"throttle": wayline.Throttle(limit=5, period="90s", burst=2, key="event.data.user")},
        {
            "throttle": inngest.Throttle(
                limit=5, period=timedelta(seconds=90), burst=2, key="event.data.user"
            )
        },
    ),
    "throttle default burst": (
        {"throttle": wayline.Throttle(limit=5, period="1m")},
        {"throttle": inngest.Throttle(limit=5, period=timedelta(minutes=1))},
    ),
    "timeouts": (
        {"timeouts": wayline.Timeouts(start="10m", finish=timedelta(days=2))},
        {"timeouts": inngest.Timeouts(start=timedelta(minutes=10), finish=timedelta(days=2))},
    ),
    "singleton": (
        {"singleton": wayline.Singleton(mode="cancel", key="event.data.user")},
        {"singleton": inngest.Singleton(mode="cancel", key="event.data.user")},
    ),
}


def _official(options: dict[str, Any], trigger: Any, on_failure: bool) -> list[dict[str, Any]]:
    client = inngest.Inngest(app_id="shop", is_production=False)

    def failure(ctx: inngest.ContextSync) -> None: ...

    @client.create_function(
        fn_id="send", trigger=trigger, on_failure=failure if on_failure else None, **options
    )
    def fn(ctx: inngest.ContextSync) -> None: ...

    config = fn.get_config(APP_URL)
    configs = [config.main] + ([config.on_failure] if config.on_failure else [])
    dumped = [c.to_dict() for c in configs]
    return [transforms.deep_strip_none(d) for d in dumped if isinstance(d, dict)]


def _ours(options: dict[str, Any], trigger: Any, on_failure: bool) -> list[dict[str, Any]]:
    client = wayline.Wayline(app_id="shop", is_dev=True)

    def failure(ctx: wayline.SyncContext) -> None: ...

    @client.function(
        id="send", trigger=trigger, on_failure=failure if on_failure else None, **options
    )
    def fn(ctx: wayline.SyncContext) -> None: ...

    return fn.configs(APP_URL)


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_option_serializes_as_the_official_sdk_does(case: str) -> None:
    ours, official = CASES[case]
    expected = _official(official, inngest.TriggerEvent(event="user/signed-up"), False)
    assert _ours(ours, wayline.TriggerEvent(event="user/signed-up"), False) == expected


def test_every_option_at_once_with_on_failure_and_several_triggers() -> None:
    ours: dict[str, Any] = {}
    official: dict[str, Any] = {}
    for ours_opts, official_opts in CASES.values():
        if "concurrency" in ours_opts and isinstance(ours_opts["concurrency"], int):
            continue
        ours.update(ours_opts)
        official.update(official_opts)
    expected = _official(
        official,
        [
            inngest.TriggerEvent(event="user/signed-up", expression="event.data.plan == 'pro'"),
            inngest.TriggerCron(cron="TZ=Europe/Paris 0 9 * * *"),
        ],
        True,
    )
    actual = _ours(
        ours,
        [
            wayline.TriggerEvent(event="user/signed-up", expression="event.data.plan == 'pro'"),
            wayline.TriggerCron(cron="TZ=Europe/Paris 0 9 * * *"),
        ],
        True,
    )
    assert actual == expected
    assert [c["id"] for c in actual] == ["shop-send", "shop-send-failure"]
    assert actual[0]["steps"]["step"]["runtime"]["url"] == f"{APP_URL}?fnId=shop-send&stepId=step"


def test_cron_jitter_is_passed_through() -> None:
    trigger = wayline.TriggerCron(cron="*/5 * * * *", jitter="30s")
    assert _ours({}, trigger, False)[0]["triggers"] == [{"cron": "*/5 * * * *", "jitter": "30s"}]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: wayline.Throttle(limit=0, period="1m"), "throttle.limit"),
        (lambda: wayline.Throttle(limit=1, period="1500ms"), "whole number of seconds"),
        (lambda: wayline.RateLimit(limit=1, period="soon"), "not a valid duration"),
        (lambda: wayline.Debounce(period="8d"), "at most 1w"),
        (lambda: wayline.Batch(max_size=10, timeout="0s"), "at least 1s"),
        (lambda: wayline.Concurrency(limit=1, scope="galaxy"), "scope"),  # type: ignore[arg-type]
        (lambda: wayline.Singleton(mode="maybe"), "skip or cancel"),  # type: ignore[arg-type]
        (lambda: wayline.Timeouts(), "start, finish or both"),
        (lambda: wayline.Cancel(event=""), "non-empty"),
        (lambda: wayline.TriggerEvent(event=" "), "non-empty"),
        (lambda: wayline.TriggerCron(cron="* *"), "5 fields"),
    ],
)
def test_bad_options_fail_at_construction(build: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": 21}, "retries must be an integer from 0 to 20"),
        ({"retries": True}, "retries must be an integer"),
        ({"concurrency": [wayline.Concurrency(limit=1)] * 3}, "at most 2 concurrency"),
        ({"cancel": [wayline.Cancel(event="x")] * 6}, "at most 5 cancel"),
        ({"concurrency": ["five"]}, "concurrency must be a Concurrency"),
        ({"trigger": []}, "needs 1 to 10 triggers"),
        ({"trigger": [wayline.TriggerEvent(event="x")] * 11}, "needs 1 to 10 triggers"),
        ({"trigger": "user/signed-up"}, "must be a TriggerEvent"),
        ({"id": ""}, "non-empty id"),
    ],
)
def test_bad_function_options_fail_at_decoration(options: dict[str, Any], message: str) -> None:
    client = wayline.Wayline(app_id="shop", is_dev=True)
    kwargs: dict[str, Any] = {"id": "send", "trigger": wayline.TriggerEvent(event="x"), **options}
    with pytest.raises(ConfigError, match=message):
        client.function(**kwargs)


def test_triggers_with_different_models_are_refused() -> None:
    from pydantic import BaseModel

    class A(BaseModel):
        a: int

    class B(BaseModel):
        b: int

    client = wayline.Wayline(app_id="shop", is_dev=True)
    triggers: list[Any] = [
        wayline.TriggerEvent(event="a", model=A),
        wayline.TriggerEvent(event="b", model=B),
    ]
    decorate = client.function(id="x", trigger=triggers)
    with pytest.raises(ConfigError, match="same model, got: A, B"):

        @decorate
        async def fn(ctx: wayline.Context[Any]) -> None: ...

    mixed: list[Any] = [
        wayline.TriggerEvent(event="a", model=A),
        wayline.TriggerCron(cron="* * * * *"),
    ]
    with pytest.raises(ConfigError, match="same model, got: A, no model"):

        @client.function(id="y", trigger=mixed)
        async def cron_and_typed(ctx: wayline.Context[Any]) -> None: ...
