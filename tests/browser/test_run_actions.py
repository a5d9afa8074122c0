"""The dashboard's buttons of issue 9 in real headless Chromium against a real ``wayline dev``
and app (official ``inngest`` SDK): redrive a failed run after fixing the code, replay an
event, pause and resume a function. The app's own counters prove what re-executed."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from compat.harness import COMPLETED, FAILED, SKIPPED

from .conftest import Demo, shot
from .demo_app import FULFIL

LIVE_TIMEOUT_MS = 20_000


def test_redrive_a_failed_run_after_fixing_the_code(page: Page, fresh_demo: Demo) -> None:
    compat = fresh_demo.compat
    FULFIL.counts.clear()
    FULFIL.carrier_fixed = False
    failed = compat.wait_run(compat.send("demo/fulfil", {"order_id": "o-5"}), status=FAILED)
    assert FULFIL.counts == {"reserve-stock": 1, "charge-payment": 1, "ship-order": 1}
    page.goto(f"{fresh_demo.url}/runs/{failed['run_id']}")
    expect(page.get_by_test_id("step-panel")).to_contain_text("CarrierError")
    shot(page, "run-failed-with-redrive")

    FULFIL.carrier_fixed = True  # "deploy the fix"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Redrive from failed step").click()

    expect(page).not_to_have_url(re.compile(failed["run_id"] + "$"))
    expect(page.locator(".run-title .pill")).to_contain_text("Completed", timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_test_id("rerun-of")).to_have_text(failed["run_id"])
    seeded = page.get_by_test_id("seeded")
    expect(seeded).to_contain_text("reserve-stock")
    expect(seeded).to_contain_text("charge-payment")
    expect(seeded).not_to_contain_text("ship-order")
    expect(page.locator("[data-testid=trace-row]", has_text="reserve-stock")).to_contain_text(
        "seeded"
    )
    # Steps 1-2 ran once in total (the failed run); only the failed step ran again.
    assert FULFIL.counts == {"reserve-stock": 1, "charge-payment": 1, "ship-order": 2}
    new_id = page.url.rsplit("/", 1)[-1]
    assert compat.get_run(new_id)["status"] == COMPLETED
    page.get_by_role("row", name=re.compile("^charge-payment")).click()
    expect(page.get_by_test_id("seeded-step")).to_contain_text("not executed in this run")
    shot(page, "run-redriven")

    page.get_by_test_id("rerun-of").click()
    reruns = page.get_by_test_id("reruns")
    expect(reruns).to_contain_text(new_id)
    expect(reruns).to_contain_text("redrive from the failed step · 2 steps seeded")
    expect(reruns.locator(".pill")).to_contain_text("Completed")
    shot(page, "run-failed-lists-its-redrive")
    page.emulate_media(color_scheme="dark")
    page.goto(f"{fresh_demo.url}/runs/{new_id}")
    expect(page.get_by_test_id("seeded")).to_be_visible()
    shot(page, "run-redriven-dark")


def test_a_refused_redrive_says_why(page: Page, fresh_demo: Demo) -> None:
    compat = fresh_demo.compat
    done = compat.wait_run(compat.send("demo/greet", {"user_id": "u7"}), status=COMPLETED)
    page.goto(f"{fresh_demo.url}/runs/{done['run_id']}")
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()
    expect(page.get_by_role("button", name="Redrive from failed step")).to_have_count(0)
    # A page can be stale (or a form replayed): the server refuses and says why.
    page.evaluate(
        """(id) => { const f = document.createElement("form"); f.method = "post";
        f.action = "/runs/" + id + "/redrive"; document.body.append(f); f.submit(); }""",
        done["run_id"],
    )
    expect(page.get_by_test_id("action-error")).to_contain_text(
        "only a Failed run can be redriven from its failed step"
    )
    assert compat.get_run(done["run_id"])["reruns"] == []
    shot(page, "run-redrive-refused")


def test_replay_an_event_from_the_events_page(page: Page, fresh_demo: Demo) -> None:
    compat = fresh_demo.compat
    event_id = compat.send("demo/greet", {"user_id": "u8"})
    compat.wait_run(event_id, status=COMPLETED)
    page.goto(fresh_demo.url + "/events")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Replay demo/greet {event_id}").click()

    expect(page).to_have_url(re.compile(r"/events/(?!" + event_id + ")[0-9A-Z]+$"))
    expect(page.get_by_test_id("replay-of")).to_have_text(event_id)
    expect(page.get_by_test_id("event-run")).to_have_text("demo-greet", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("aside .pill")).to_contain_text("Completed", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator(".json").first).to_contain_text('"user_id": "u8"')
    shot(page, "event-replayed")
    page.goto(fresh_demo.url + "/events")
    replayed = page.get_by_test_id("event-row").filter(has_text="replay of")
    expect(replayed).to_have_count(1)
    expect(replayed).to_contain_text(event_id[-10:])
    shot(page, "events-with-replay")


def test_pause_a_function_then_resume_it(page: Page, fresh_demo: Demo) -> None:
    compat = fresh_demo.compat
    page.goto(fresh_demo.url + "/functions")
    row = page.locator("tr[data-function-id=demo-greet]")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Pause demo-greet").click()
    try:
        expect(row.get_by_test_id("paused-badge")).to_contain_text("Paused")
        expect(row).to_have_attribute("data-paused", "true")
        shot(page, "functions-paused")
        page.emulate_media(color_scheme="dark")
        shot(page, "functions-paused-dark")
        page.emulate_media(color_scheme="light")

        event_id = compat.send("demo/greet", {"user_id": "u-paused"})
        skipped = compat.wait_run(event_id, status=SKIPPED)
        page.goto(f"{fresh_demo.url}/events/{event_id}")
        page.get_by_test_id("event-run").click()
        expect(page.locator(".run-title .pill")).to_contain_text("Skipped")
        expect(page.get_by_test_id("flow-control")).to_contain_text("function paused")
        assert page.url.endswith(skipped["run_id"])
        shot(page, "run-skipped-paused")

        page.goto(fresh_demo.url + "/functions")
        row.get_by_role("button", name="Resume demo-greet").click()
        expect(row.get_by_test_id("paused-badge")).to_have_count(0)
        expect(row).to_have_attribute("data-paused", "false")
    finally:
        compat.http.post("/v1/apps/demo/functions/greet/resume")  # never leak a pause
    resumed = compat.send("demo/greet", {"user_id": "u-resumed"})
    compat.wait_run(resumed, status=COMPLETED)
    assert compat.get_run(skipped["run_id"])["status"] == SKIPPED  # a skip stays a skip
    shot(page, "functions-resumed")
