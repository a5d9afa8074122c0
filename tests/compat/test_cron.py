"""TriggerCron fires when the server's (test) clock crosses a minute boundary."""

from __future__ import annotations

import inngest
import pytest

from .harness import COMPLETED, Compat, Counter, Framework, frameworks, wait_until

pytestmark = pytest.mark.compat

SCHEDULED_EVENT = "inngest/scheduled.timer"


@frameworks
def test_cron_fires_when_clock_advances(compat: Compat, framework: Framework) -> None:
    client = compat.client()
    calls = Counter()

    @client.create_function(
        fn_id="every-minute", retries=0, trigger=inngest.TriggerCron(cron="* * * * *")
    )
    def tick(ctx: inngest.ContextSync) -> dict[str, str]:
        calls.incr()
        return {"event": ctx.event.name}

    compat.serve(framework, client, [tick])
    compat.advance_clock(61_000)
    compat.advance_clock(61_000)

    def completed_runs() -> list[dict[str, object]]:
        runs = compat.runs_for_events_named(SCHEDULED_EVENT, "every-minute")
        return [r for r in runs if r.get("status") == COMPLETED]

    wait_until(
        lambda: len(completed_runs()) >= 1,
        message=lambda: f"no completed cron run; events: {compat.list_events(SCHEDULED_EVENT)}",
    )
    run = compat.get_run(str(completed_runs()[0]["run_id"]))
    assert run["output"] == {"event": SCHEDULED_EVENT}
    assert run["function_id"] == compat.function_id("every-minute")
    assert calls.value >= 1
