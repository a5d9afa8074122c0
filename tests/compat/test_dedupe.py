"""Two events with the same `id` start one run."""

from __future__ import annotations

import time
import uuid

import inngest
import pytest

from .harness import COMPLETED, Compat, Counter, Framework, Recorder, frameworks

pytestmark = pytest.mark.compat


@frameworks
def test_events_with_same_id_run_once(compat: Compat, framework: Framework) -> None:
    client = compat.client()
    calls, run_ids = Counter(), Recorder()

    @client.create_function(
        fn_id="deduped", retries=0, trigger=inngest.TriggerEvent(event="compat/dedupe")
    )
    def fn(ctx: inngest.ContextSync) -> str:
        calls.incr()
        run_ids.append(ctx.run_id)
        return "once"

    compat.serve(framework, client, [fn])
    dedupe_id = f"dedupe-{uuid.uuid4()}"
    # Sent through the official SDK client, as an app would.
    first_ids = client.send_sync(inngest.Event(name="compat/dedupe", id=dedupe_id, data={"n": 1}))
    client.send_sync(inngest.Event(name="compat/dedupe", id=dedupe_id, data={"n": 2}))
    assert len(first_ids) == 1

    run = compat.wait_run(first_ids[0], "deduped", status=COMPLETED)
    assert run["output"] == "once"

    # Give a wrongly accepted duplicate time to be scheduled and run.
    time.sleep(2.0)
    runs = compat.runs_for_events_named("compat/dedupe", "deduped")
    assert len({r["run_id"] for r in runs}) == 1, runs
    assert calls.value == 1
    assert len(run_ids) == 1
