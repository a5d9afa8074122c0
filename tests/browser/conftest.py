"""Fixtures for the browser suite: the dashboard of a real ``wayline dev`` (subprocess, real
SQLite) driving a real app (official ``inngest`` SDK, see ``demo_app``), in real headless
Chromium — Debian's ``chromium`` driven by Playwright (``playwright install`` cannot download
browsers here, so the system binary is always passed as ``executable_path``).

Playwright's sync driver lives only while this module runs (module-scoped), so it cannot
leak its event loop into other suites of the same worker. One server + app pair is shared
by the module (startup dominates the suite's time); tests
that change state (send, cancel) act on their own runs. Screenshots go to
``tests/browser/artifacts/`` (gitignored; CI may upload it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from compat.harness import COMPLETED, FAILED, Compat, DevServer, free_port

from .demo_app import APP_ID, functions

ARTIFACTS = Path(__file__).with_name("artifacts")
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise pytest.UsageError(
        "the browser suite needs Debian's chromium (apt-get install -y chromium); "
        ".ci/run installs it"
    )


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, timezone_id="UTC", locale="en-US"
    )
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


@dataclass
class Demo:
    """The shared server: its URL, the harness, and the run ids the setup created."""

    compat: Compat
    url: str
    runs: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    compat = Compat(tmp_path_factory.mktemp("browser"))
    try:
        client = compat.client(APP_ID)
        compat.serve("fastapi", client, functions(client))
        # Sent together so the flaky function's retries overlap the others.
        sent = {
            "flaky": compat.send("demo/flaky"),
            "greet": compat.send("demo/greet", {"user_id": "u1"}),
            "charge": compat.send("demo/charge", {"order_id": "o-17"}),
            "onboard": compat.send("demo/onboard", {"user_id": "u2"}),
        }
        runs = {
            "greet": compat.wait_run(sent["greet"], status=COMPLETED),
            "charge": compat.wait_run(sent["charge"], status=FAILED),
            "onboard": _wait_step(compat, sent["onboard"], "wait-3-days"),
            "flaky": compat.wait_run(sent["flaky"], status=COMPLETED, timeout=30),
        }
        yield Demo(compat=compat, url=compat.server_url, runs=runs)
    finally:
        compat.close()


@pytest.fixture(scope="module")
def fresh_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo app on its own server with no runs yet: for tests that act (rerun, replay,
    pause) and must not change what the read-only tests of another module count."""
    compat = Compat(tmp_path_factory.mktemp("fresh"))
    try:
        client = compat.client(APP_ID)
        compat.serve("fastapi", client, functions(client))
        yield Demo(compat=compat, url=compat.server_url, runs={})
    finally:
        compat.close()


def _wait_step(compat: Compat, event_id: str, step: str) -> dict[str, Any]:
    from compat.harness import wait_until

    found: dict[str, Any] = {}

    def reached() -> bool:
        runs = compat.runs_for_event(event_id)
        if not runs:
            return False
        run = compat.get_run(runs[0]["run_id"])
        found.update(run)
        return any(s["name"] == step for s in run.get("steps") or [])

    wait_until(reached, message=f"run of event {event_id} never reached step {step!r}")
    return found


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``wayline dev`` with no app and no data: the empty states."""
    tmp = tmp_path_factory.mktemp("empty")
    server = DevServer(
        port=free_port(),
        db_path=tmp / "empty.db",
        log_path=tmp / "dev.log",
        app_urls=[],
        retry_interval=1,
        cwd=tmp,
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
