"""A sleeping run survives `kill -9` of the server and a restart on the same db."""

from __future__ import annotations

import datetime
import time

import inngest
import pytest

from .harness import (
    COMPLETED,
    QUEUED,
    RUNNING,
    Compat,
    Counter,
    Framework,
    frameworks,
    step_named,
    wait_until,
)

pytestmark = pytest.mark.compat


@frameworks
def test_sleeping_run_survives_kill_and_restart(compat: Compat, framework: Framework) -> None:
    client = compat.client()
    calls, before_calls, after_calls = Counter(), Counter(), Counter()

    def before() -> str:
        before_calls.incr()
        return "before"

    def after() -> str:
        after_calls.incr()
        return "after"

    @client.create_function(
        fn_id="durable-sleeper",
        retries=0,
        trigger=inngest.TriggerEvent(event="compat/restart"),
    )
    def fn(ctx: inngest.ContextSync) -> str:
        calls.incr()
        ctx.step.run("before", before)
        ctx.step.sleep("nap", datetime.timedelta(seconds=3))
        ctx.step.run("after", after)
        return "survived"

    compat.serve(framework, client, [fn])
    event_id = compat.send("compat/restart")

    # Call 1 ran "before"; call 2 reported the sleep. The run is now sleeping.
    wait_until(
        lambda: calls.value >= 2,
        message="function never reached the sleep",
    )
    time.sleep(0.2)
    sleeping = compat.current_run(event_id, "durable-sleeper")
    assert sleeping is not None
    assert sleeping["status"] in {QUEUED, RUNNING}, sleeping
    assert after_calls.value == 0

    compat.restart_server(kill9=True)

    run = compat.wait_run(event_id, "durable-sleeper", status=COMPLETED)
    assert run["output"] == "survived"
    assert step_named(run, "before")["output"] == "before"
    assert step_named(run, "after")["output"] == "after"
    assert before_calls.value == 1
    assert after_calls.value == 1
