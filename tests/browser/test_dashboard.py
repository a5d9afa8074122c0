"""The dashboard in real headless Chromium against a real ``wayline dev`` and app: find,
read and act on runs without curl. Each test leaves a screenshot in ``artifacts/``."""

from __future__ import annotations

import datetime as dt
import re

from playwright.sync_api import Browser, Page, expect

from compat.harness import CANCELLED, wait_until

from .conftest import Demo, shot


def _row(page: Page, function: str) -> object:
    return page.locator("tr[data-testid=run-row]", has=page.get_by_role("link", name=function))


def test_runs_list_shows_every_run_with_its_status(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/")
    rows = page.locator("tr[data-testid=run-row]")
    expect(rows.first).to_be_visible()
    for function, status in (("demo-greet", "Completed"), ("demo-charge", "Failed")):
        row = page.locator(
            f"tr[data-testid=run-row][data-run-id='{demo.runs[function[5:]]['run_id']}']"
        )
        expect(row).to_contain_text(function)
        expect(row.locator(".pill")).to_have_text(re.compile(status))
    sleeping = page.locator(f"tr[data-run-id='{demo.runs['onboard']['run_id']}']")
    expect(sleeping).to_contain_text("sleeping until")
    shot(page, "runs")


def test_filter_by_status_changes_the_url_and_the_rows(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/runs")
    page.get_by_label("Status").select_option("Failed")
    expect(page).to_have_url(re.compile(r"status=Failed"))
    rows = page.locator("tr[data-testid=run-row]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-status", "Failed")
    page.reload()  # the view is in the URL
    expect(page.get_by_label("Status")).to_have_value("Failed")
    expect(page.locator("tr[data-testid=run-row]")).to_have_count(1)
    shot(page, "runs-filtered-failed")
    page.get_by_label("Status").select_option("Skipped")
    expect(page.get_by_test_id("empty")).to_contain_text("No runs match: status = Skipped")
    shot(page, "runs-filtered-empty")
    page.goto(demo.url + "/runs")
    page.get_by_label(re.compile("^if")).fill('event.data.order_id == "o-17"')
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tr[data-testid=run-row]")).to_have_count(1)
    expect(page.locator("tr[data-testid=run-row]")).to_contain_text("demo-charge")
    expect(page.get_by_test_id("scanned")).to_contain_text("1 match")
    shot(page, "runs-filtered-cel")


def test_a_failed_run_shows_its_error_and_stack(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/runs?status=Failed")
    page.get_by_role("link", name="demo-charge").first.click()
    expect(page).to_have_url(re.compile(r"/runs/" + demo.runs["charge"]["run_id"]))
    expect(page.locator("h1")).to_have_text("demo-charge")
    panel = page.get_by_test_id("step-panel")
    expect(panel).to_contain_text("charge-card")
    expect(panel.get_by_test_id("error")).to_contain_text(
        "CardDeclinedError: card declined: insufficient funds"
    )
    stack = panel.get_by_test_id("stack")
    expect(stack).to_contain_text("Traceback (most recent call last)")
    expect(stack).to_contain_text("in charge_card")
    failed_row = page.locator("[data-testid=trace-row][data-status=Failed]", has_text="charge-card")
    expect(failed_row).to_be_visible()
    shot(page, "run-failed")
    page.get_by_role("row", name=re.compile("load-order")).click()
    expect(panel).to_contain_text('"order_id": "o-17"')


def test_a_retried_step_shows_every_attempt(page: Page, demo: Demo) -> None:
    page.goto(f"{demo.url}/runs/{demo.runs['flaky']['run_id']}")
    page.get_by_role("row", name=re.compile("^call-api")).click()
    attempts = page.get_by_test_id("attempts").locator("li")
    expect(attempts).to_have_count(3)
    expect(attempts.nth(0)).to_contain_text("#3")
    expect(attempts.nth(0)).to_contain_text("Completed")
    expect(attempts.nth(2)).to_contain_text("#1")
    expect(attempts.nth(2)).to_contain_text("retry at")
    attempts.nth(2).locator("summary").click()
    expect(attempts.nth(2).get_by_test_id("error")).to_contain_text(
        "UpstreamError: upstream returned 503 (try 1)"
    )
    rows = page.locator("[data-testid=trace-row][data-kind=attempt]")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_attribute("data-status", "Failed")
    expect(rows.nth(2)).to_have_attribute("data-status", "Completed")
    shot(page, "run-retried")


def test_a_sleeping_run_shows_when_it_wakes(page: Page, demo: Demo) -> None:
    run = demo.runs["onboard"]
    page.goto(f"{demo.url}/runs/{run['run_id']}")
    page.get_by_role("row", name=re.compile("wait-3-days")).click()
    wake = page.get_by_test_id("wake-time")
    expect(wake).to_contain_text("Sleep until")
    started = dt.datetime.fromisoformat(run["run_started_at"].replace("Z", "+00:00"))
    expected_day = (started + dt.timedelta(days=3)).strftime("%Y-%m-%d")
    expect(wake).to_contain_text(expected_day)
    expect(wake).to_contain_text(re.compile(r"in 2 d 23 h|in 3 d"))
    expect(page.locator("[data-testid=trace-row]", has_text="wait-3-days")).to_contain_text("until")
    shot(page, "run-sleeping")


def test_send_a_test_event_and_see_its_run_appear_live(
    page: Page, browser: Browser, demo: Demo
) -> None:
    runs_page = browser.new_page(viewport={"width": 1440, "height": 900})
    runs_page.goto(demo.url + "/runs")
    before = runs_page.locator("tr[data-testid=run-row]").count()

    page.goto(demo.url + "/events")
    form = page.get_by_test_id("send-form")
    page.get_by_label("Name").fill("demo/greet")
    data = page.get_by_label("Data")
    data.fill('{\n  "user_id": "u9",,\n}')
    expect(page.get_by_test_id("data-error")).not_to_be_empty()
    expect(form.get_by_role("button", name="Send event")).to_be_disabled()
    shot(page, "events-invalid-json")
    data.fill('{\n  "user_id": "u9"\n}')
    expect(page.get_by_test_id("data-error")).to_be_empty()
    form.get_by_role("button", name="Send event").click()

    sent = page.get_by_test_id("sent")
    expect(sent).to_contain_text("Accepted")
    run_link = sent.get_by_test_id("event-run")
    expect(run_link).to_have_text("demo-greet", timeout=15_000)  # polled in, no reload
    expect(sent.locator(".pill")).to_contain_text("Completed", timeout=15_000)
    shot(page, "events-sent")
    # The runs list, open in another tab, grew by itself.
    expect(runs_page.locator("tr[data-testid=run-row]")).to_have_count(before + 1, timeout=15_000)
    runs_page.close()


def test_cancel_a_run_from_its_page(page: Page, demo: Demo) -> None:
    event_id = demo.compat.send("demo/approve", {"user_id": "u3"})
    wait_until(
        lambda: any(
            s["name"] == "wait-approval"
            for r in demo.compat.runs_for_event(event_id)
            for s in demo.compat.get_run(r["run_id"]).get("steps") or []
        )
    )
    [run] = demo.compat.runs_for_event(event_id)
    page.goto(f"{demo.url}/runs/{run['run_id']}")
    expect(page.get_by_test_id("wake-time")).to_contain_text("Times out")
    shot(page, "run-waiting")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator(".run-title .pill")).to_contain_text("Cancelled")
    expect(page.get_by_test_id("flow-control")).to_contain_text("cancelled from the dashboard")
    step = page.locator("[data-testid=trace-row]", has_text="wait-approval")
    expect(step).to_have_attribute("data-status", "Cancelled")
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    assert demo.compat.get_run(run["run_id"])["status"] == CANCELLED
    shot(page, "run-cancelled")


def test_functions_apps_and_events_pages(page: Page, demo: Demo) -> None:
    page.goto(demo.url + "/functions")
    expect(page.get_by_test_id("function-row")).to_have_count(6)
    shot(page, "functions")
    page.goto(demo.url + "/apps")
    card = page.get_by_test_id("app-card")
    expect(card).to_contain_text("Synced")
    expect(card.get_by_test_id("app-health")).to_contain_text("reachable")
    shot(page, "apps")
    page.goto(demo.url + "/events")
    expect(page.get_by_test_id("event-row").first).to_be_visible()
    shot(page, "events")
    page.get_by_test_id("event-row").filter(has_text="demo/charge").get_by_role(
        "link", name="demo/charge"
    ).click()
    expect(page.locator("h1")).to_have_text("demo/charge")
    expect(page.locator(".json")).to_contain_text('"order_id": "o-17"')
    expect(page.get_by_test_id("event-run")).to_have_text("demo-charge")
    shot(page, "event")
    page.emulate_media(color_scheme="dark")
    page.goto(f"{demo.url}/runs/{demo.runs['charge']['run_id']}")
    shot(page, "run-failed-dark")


def test_empty_states(page: Page, empty_server: str) -> None:
    for path, text in (
        ("/runs", "No runs yet — and no app synced"),
        ("/events", "No events yet"),
        ("/functions", "No functions yet"),
        ("/apps", "No app synced yet"),
        ("/runs/01JNOSUCHRUN", "No run 01JNOSUCHRUN"),
    ):
        page.goto(empty_server + path)
        expect(page.locator("main")).to_contain_text(text)
        shot(page, "empty" + path.replace("/", "-"))
