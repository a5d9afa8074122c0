"""Flow-control configuration: what the official SDK sends parses; bad values are refused
with the field and the limit named."""

from __future__ import annotations

import datetime
from typing import Any

import inngest
import pytest

from wayline.engine.flow.config import (
    Batch,
    CancelOn,
    Concurrency,
    Debounce,
    FlowConfig,
    Rate,
    Singleton,
    clamp_priority,
    flow_config,
    parse_flow,
)
from wayline.engine.model import FunctionDef
from wayline.errors import ValidationError

S = 1000


def official_config(**options: Any) -> dict[str, Any]:
    """The FunctionConfig the official Python SDK registers for these options."""
    client = inngest.Inngest(app_id="app", is_production=False)

    @client.create_function(fn_id="fn", trigger=inngest.TriggerEvent(event="e"), **options)
    def fn(ctx: inngest.ContextSync) -> None:
        return None

    dumped = fn.get_config("http://127.0.0.1:1/api/inngest").main.to_dict()
    assert isinstance(dumped, dict)
    return dumped


def test_official_sdk_options_parse_to_the_same_values() -> None:
    config = official_config(
        concurrency=[
            inngest.Concurrency(limit=2, key="event.data.user"),
            inngest.Concurrency(limit=10, key="event.data.org", scope="env"),
        ],
        throttle=inngest.Throttle(
            limit=5, period=datetime.timedelta(minutes=1), burst=2, key="event.data.user"
        ),
        rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(hours=1)),
        idempotency="event.data.order_id",
        debounce=inngest.Debounce(
            period=datetime.timedelta(seconds=5),
            timeout=datetime.timedelta(minutes=1),
            key="event.data.k",
        ),
        cancel=[
            inngest.Cancel(
                event="order/cancelled",
                if_exp="event.data.id == async.data.id",
                timeout=datetime.timedelta(hours=1),
            )
        ],
        priority=inngest.Priority(run="event.data.vip ? 120 : 0"),
        timeouts=inngest.Timeouts(
            start=datetime.timedelta(seconds=30), finish=datetime.timedelta(minutes=5)
        ),
        singleton=inngest.Singleton(mode="cancel", key="event.data.user"),
    )
    assert parse_flow(config, where="fn") == FlowConfig(
        concurrency=(Concurrency(2, "event.data.user"), Concurrency(10, "event.data.org", "env")),
        throttle=Rate(5, 60 * S, "event.data.user", burst=2),
        rate_limit=Rate(1, 3600 * S),
        idempotency="event.data.order_id",
        debounce=Debounce(5 * S, "event.data.k", 60 * S),
        cancel=(CancelOn("order/cancelled", "event.data.id == async.data.id", 3600 * S),),
        priority="event.data.vip ? 120 : 0",
        start_timeout_ms=30 * S,
        finish_timeout_ms=300 * S,
        singleton=Singleton("cancel", "event.data.user"),
    )


def test_official_sdk_batch_options_parse() -> None:
    config = official_config(
        batch_events=inngest.Batch(
            max_size=10, timeout=datetime.timedelta(seconds=5), key="event.data.k"
        )
    )
    assert parse_flow(config, where="fn").batch == Batch(10, 5 * S, "event.data.k")


def test_no_options_is_the_empty_config() -> None:
    assert parse_flow(official_config(), where="fn") == FlowConfig()


def test_the_failure_handler_config_parses() -> None:
    """The SDK sends ``concurrency: []`` and ``cancel: []`` for on_failure functions."""
    client = inngest.Inngest(app_id="app", is_production=False)

    def handle_failure(ctx: inngest.ContextSync) -> None:
        return None

    @client.create_function(
        fn_id="fn", trigger=inngest.TriggerEvent(event="e"), on_failure=handle_failure
    )
    def fn(ctx: inngest.ContextSync) -> None:
        return None

    failure = fn.get_config("http://127.0.0.1:1/api/inngest").on_failure
    assert failure is not None
    dumped = failure.to_dict()
    assert isinstance(dumped, dict)
    assert parse_flow(dumped, where="fn-failure") == FlowConfig()


def test_a_bare_number_of_concurrency_is_one_fn_limit() -> None:
    assert parse_flow({"concurrency": 3}, where="f").concurrency == (Concurrency(3),)


def test_unscoped_cancel_is_allowed_but_warned_about() -> None:
    flow = parse_flow(
        {"cancel": [{"event": "a"}, {"event": "b", "if": "async.data.x == 1"}]}, where="f"
    )
    assert len(flow.warnings) == 1
    assert "'a'" in flow.warnings[0] and "every running run" in flow.warnings[0]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"concurrency": 0}, "concurrency must be an integer from 1 to 100000"),
        ({"concurrency": [{"limit": 1}, {"limit": 2}, {"limit": 3}]}, "the limit is 2"),
        ({"concurrency": [{"limit": 1, "scope": "galaxy"}]}, "'fn', 'env' or 'account'"),
        ({"concurrency": [{"limit": 1, "scope": "env"}]}, "needs a key"),
        ({"concurrency": [{"limit": 1, "key": "event.data.x ==="}]}, "concurrency[0].key"),
        ({"throttle": {"limit": 1}}, "throttle.period is required"),
        ({"throttle": {"limit": 1, "period": "8d"}}, "between 1s and 604800s"),
        ({"throttle": {"limit": 0, "period": "1m"}}, "throttle.limit must be an integer"),
        ({"rateLimit": {"limit": 1, "period": "25h"}}, "between 1s and 86400s"),
        ({"rateLimit": {"limit": 1, "period": "500ms"}}, "between 1s and 86400s"),
        ({"debounce": {"period": "0s"}}, "debounce.period"),
        ({"debounce": {"period": "10s", "timeout": "5s"}}, "debounce.timeout must be between"),
        ({"batchEvents": {"maxSize": 1, "timeout": "5s"}}, "maxSize must be an integer from 2"),
        ({"batchEvents": {"maxSize": 5, "timeout": "2m"}}, "between 1s and 60s"),
        ({"batchEvents": {"maxSize": 5}}, "batchEvents.timeout is required"),
        ({"cancel": [{"event": "a"}] * 6}, "the limit is 5"),
        ({"cancel": [{"if": "true"}]}, "cancel[0].event is required"),
        ({"cancel": [{"event": "a", "if": "(("}]}, "cancel[0].if"),
        ({"priority": {"run": 5}}, "priority.run must be a CEL expression"),
        ({"timeouts": {"start": "0s"}}, "timeouts.start"),
        ({"timeouts": {"finish": "400d"}}, "timeouts.finish"),
        ({"singleton": {"mode": "queue"}}, "'skip' or 'cancel'"),
        ({"idempotency": "event.data."}, "idempotency"),
    ],
)
def test_bad_values_name_the_field_and_limit(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_flow(config, where="function 'app-fn'")
    assert message in str(info.value)
    assert "function 'app-fn'" in (info.value.field or "")


@pytest.mark.parametrize(
    ("value", "clamped"),
    [(0, 0), (120, 120), (9999, 600), (-9999, -600), (1.9, 1), ("high", 0), (None, 0), (True, 0)],
)
def test_priority_is_clamped(value: object, clamped: int) -> None:
    assert clamp_priority(value) == clamped


def test_flow_config_follows_a_resync_of_the_same_function_id() -> None:
    """The per-object cache answers for the object it saw: a function synced again under
    the same id with another config gets its own flow control, not the cached one."""
    limited = FunctionDef(
        id="app-fn",
        app_id="app",
        name="fn",
        url="",
        triggers=(),
        retries=0,
        config={"rateLimit": {"limit": 2, "period": "1m"}},
    )
    plain = FunctionDef(id="app-fn", app_id="app", name="fn", url="", triggers=(), retries=0)
    assert flow_config(limited).rate_limit == Rate(limit=2, period_ms=60 * S)
    assert flow_config(limited) is flow_config(limited)
    assert flow_config(plain).rate_limit is None
    assert flow_config(limited).rate_limit == Rate(limit=2, period_ms=60 * S)
