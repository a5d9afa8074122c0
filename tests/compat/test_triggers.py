"""Event triggers: several per function, `expression` filters, wildcards, loose CEL."""

from __future__ import annotations

import time
from typing import Any

import inngest
import pytest

from .harness import (
    COMPLETED,
    POLL_INTERVAL,
    Compat,
    Framework,
    HarnessError,
    Recorder,
    frameworks,
    wait_until,
)

pytestmark = pytest.mark.compat


def _echo_function(
    client: inngest.Inngest,
    fn_id: str,
    trigger: inngest.TriggerEvent | list[inngest.TriggerEvent | inngest.TriggerCron],
    seen: Recorder,
) -> inngest.Function[Any]:
    """A function that records and returns the name and data of its triggering event."""

    @client.create_function(fn_id=fn_id, retries=0, trigger=trigger)
    def fn(ctx: inngest.ContextSync) -> dict[str, Any]:
        out = {"name": ctx.event.name, "data": dict(ctx.event.data)}
        seen.append(out)
        return out

    return fn


def _assert_no_run(compat: Compat, event_id: str, sent_at: float, *, within: float = 1.0) -> None:
    """``event_id`` (sent at monotonic ``sent_at``) has started no run ``within`` s after."""
    remaining = max(sent_at + within - time.monotonic(), POLL_INTERVAL)
    with pytest.raises(HarnessError):
        wait_until(lambda: bool(compat.runs_for_event(event_id)), timeout=remaining)
    assert compat.runs_for_event(event_id) == []


def _stored_event(compat: Compat, name: str, event_id: str) -> dict[str, Any]:
    found = [e for e in compat.list_events(name) if e.get("internal_id") == event_id]
    assert len(found) == 1, f"event {event_id} not listed under {name!r}"
    return found[0]


@frameworks
def test_two_event_triggers_start_one_run_each(compat: Compat, framework: Framework) -> None:
    client = compat.client()
    seen = Recorder()
    triggers: list[inngest.TriggerEvent | inngest.TriggerCron] = [
        inngest.TriggerEvent(event="compat/a"),
        inngest.TriggerEvent(event="compat/b"),
    ]
    compat.serve(framework, client, [_echo_function(client, "multi", triggers, seen)])

    registered = {fn["id"]: fn for fn in compat.wait_registered()}
    assert registered[compat.function_id("multi")]["triggers"] == [
        {"event": "compat/a"},
        {"event": "compat/b"},
    ]

    a_id = compat.send("compat/a", {"which": "a"})
    b_id = compat.send("compat/b", {"which": "b"})
    run_a = compat.wait_run(a_id, "multi", status=COMPLETED)
    run_b = compat.wait_run(b_id, "multi", status=COMPLETED)

    assert run_a["output"] == {"name": "compat/a", "data": {"which": "a"}}
    assert run_b["output"] == {"name": "compat/b", "data": {"which": "b"}}
    assert run_a["run_id"] != run_b["run_id"]
    assert run_a["event_id"] == a_id
    assert run_b["event_id"] == b_id
    assert len(compat.runs_for_event(a_id)) == 1
    assert len(compat.runs_for_event(b_id)) == 1
    assert len(seen) == 2


@frameworks
def test_trigger_expression_filters_events(compat: Compat, framework: Framework) -> None:
    client = compat.client()
    seen = Recorder()
    trigger = inngest.TriggerEvent(event="compat/pro", expression="event.data.plan == 'pro'")
    compat.serve(framework, client, [_echo_function(client, "pro-only", trigger, seen)])

    free_sent = time.monotonic()
    free_id = compat.send("compat/pro", {"plan": "free"})
    pro_id = compat.send("compat/pro", {"plan": "pro"})
    run = compat.wait_run(pro_id, "pro-only", status=COMPLETED)
    assert run["output"] == {"name": "compat/pro", "data": {"plan": "pro"}}

    _assert_no_run(compat, free_id, free_sent)
    # The filtered-out event is still stored.
    assert _stored_event(compat, "compat/pro", free_id)["data"] == {"plan": "free"}
    assert _stored_event(compat, "compat/pro", pro_id)["data"] == {"plan": "pro"}
    assert seen.items == [{"name": "compat/pro", "data": {"plan": "pro"}}]


@frameworks
def test_wildcard_trigger(compat: Compat, framework: Framework) -> None:
    client = compat.client()
    seen = Recorder()
    trigger = inngest.TriggerEvent(event="compat/wild.*")
    compat.serve(framework, client, [_echo_function(client, "wild", trigger, seen)])

    # Not under the wildcard's prefix: no run.
    other_sent = time.monotonic()
    other_id = compat.send("compat/wildx", {"n": 0})
    run = compat.wait_run(compat.send("compat/wild.x", {"n": 1}), "wild", status=COMPLETED)
    assert run["output"] == {"name": "compat/wild.x", "data": {"n": 1}}

    _assert_no_run(compat, other_id, other_sent)
    assert len(seen) == 1


@frameworks
def test_trigger_expressions_use_loose_semantics(compat: Compat, framework: Framework) -> None:
    client = compat.client()
    seen_gt, seen_null = Recorder(), Recorder()
    gt = _echo_function(
        client,
        "amount-gt",
        inngest.TriggerEvent(event="compat/loose.gt", expression="event.data.amount > 10"),
        seen_gt,
    )
    null = _echo_function(
        client,
        "missing-null",
        inngest.TriggerEvent(event="compat/loose.null", expression="event.data.missing == null"),
        seen_null,
    )
    compat.serve(framework, client, [gt, null])

    # Negative controls: a float below the int bound, and a field that is present.
    controls_sent = time.monotonic()
    small_id = compat.send("compat/loose.gt", {"amount": 9.5})
    present_id = compat.send("compat/loose.null", {"missing": "here"})

    # A double compared with an int literal, and a missing field compared with null.
    gt_run = compat.wait_run(
        compat.send("compat/loose.gt", {"amount": 10.5}), "amount-gt", status=COMPLETED
    )
    null_run = compat.wait_run(
        compat.send("compat/loose.null", {"other": 1}), "missing-null", status=COMPLETED
    )
    assert gt_run["output"] == {"name": "compat/loose.gt", "data": {"amount": 10.5}}
    assert null_run["output"] == {"name": "compat/loose.null", "data": {"other": 1}}

    _assert_no_run(compat, small_id, controls_sent)
    assert compat.runs_for_event(present_id) == []
    assert len(seen_gt) == 1
    assert len(seen_null) == 1
