"""``backoff=`` and ``step_backoff=``: checked where the function is declared, and sent in
its FunctionConfig in the form the server parses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import wayline
from wayline.engine.backoff import Backoff as ServerBackoff
from wayline.engine.backoff import parse_policy


def test_the_config_carries_both_policies_and_the_server_reads_them() -> None:
    client = wayline.Wayline(app_id="shop", is_dev=True, environ={})

    @client.function(
        id="f",
        trigger=wayline.TriggerEvent(event="x"),
        backoff=wayline.Backoff(initial=timedelta(seconds=5), factor=1.5, max="10m", jitter="2s"),
        step_backoff={"charge": wayline.Backoff(initial="1m")},
    )
    def fn(ctx: wayline.SyncContext) -> None: ...

    config = fn.configs("http://app/")[0]
    assert config["backoff"] == {"initial": "5s", "factor": 1.5, "max": "10m", "jitter": "2s"}
    assert config["stepBackoff"] == {"charge": {"initial": "1m", "factor": 2.0, "max": "1d"}}
    policy = parse_policy(config, where="f")
    assert policy.function == ServerBackoff(5_000, 1.5, 600_000, 2_000)
    assert policy.for_step("charge") == ServerBackoff(60_000, 2.0, 86_400_000, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"initial": "500ms"}, "backoff.initial"),
        ({"initial": "1s", "factor": 0.5}, "backoff.factor"),
        ({"initial": "1m", "max": "30s"}, "backoff.max"),
        ({"initial": "1s", "jitter": "2h"}, "backoff.jitter"),
    ],
)
def test_a_bad_backoff_fails_where_it_is_declared(args: dict[str, Any], message: str) -> None:
    with pytest.raises(wayline.ConfigError, match=message):
        wayline.Backoff(**args)
