"""The quick-start app (examples/quickstart, Wayline SDK), end to end, with a 1 s nudge delay.

The official-SDK version (examples/quickstart_inngest) is tested in tests/compat.
"""

from __future__ import annotations

import httpx
import pytest
from examples.quickstart import app as quickstart

from compat.harness import COMPLETED, FAILED, Compat, step_named, steps_named


def test_quickstart_example(compat: Compat, monkeypatch: pytest.MonkeyPatch) -> None:
    # As `wayline dev --app` (`make dev`) runs it: settings from the environment.
    monkeypatch.setenv("INNGEST_BASE_URL", compat.server_url)
    monkeypatch.setenv("QUICKSTART_NUDGE_DELAY", "1")
    web_app = quickstart.create_app()
    fn_id = f"{quickstart.APP_ID}-{quickstart.FUNCTION_ID}"
    compat.serve_app(web_app, app_id=quickstart.APP_ID, function_ids=[fn_id])
    assert compat.app_server is not None

    lazy = compat.send(quickstart.SIGNED_UP_EVENT, {"email": "lazy@example.com"})
    eager = compat.send(quickstart.SIGNED_UP_EVENT, {"email": "eager@example.com"})
    # The eager user finishes onboarding during the 1 s sleep.
    res = httpx.post(
        f"http://127.0.0.1:{compat.app_server.port}/onboarded",
        json={"email": "eager@example.com"},
    )
    assert res.status_code == 200, res.text

    lazy_run = compat.wait_run(lazy, fn_id, status=COMPLETED)
    assert lazy_run["output"] == {
        "email": "lazy@example.com",
        "welcome_sent": True,
        "onboarded": False,
        "nudged": True,
    }
    assert [(s["name"], s["op"]) for s in lazy_run["steps"]] == [
        ("send-welcome", "StepRun"),
        ("wait-for-onboarding", "Sleep"),
        ("check-onboarding", "StepRun"),
        ("send-nudge", "StepRun"),
    ]
    welcome = step_named(lazy_run, "send-welcome")
    assert welcome["output"] == "welcome email sent to lazy@example.com"
    assert step_named(lazy_run, "check-onboarding")["output"] is False
    assert step_named(lazy_run, "send-nudge")["output"] == "nudge sent to lazy@example.com"

    eager_run = compat.wait_run(eager, fn_id, status=COMPLETED)
    assert eager_run["output"] == {
        "email": "eager@example.com",
        "welcome_sent": True,
        "onboarded": True,
        "nudged": False,
    }
    assert step_named(eager_run, "check-onboarding")["output"] is True
    assert steps_named(eager_run, "send-nudge") == []


def test_a_signup_without_an_email_fails_without_retries(compat: Compat) -> None:
    web_app = quickstart.create_app(base_url=compat.server_url, nudge_delay="1")
    fn_id = f"{quickstart.APP_ID}-{quickstart.FUNCTION_ID}"
    compat.serve_app(web_app, app_id=quickstart.APP_ID, function_ids=[fn_id])

    run = compat.wait_run(compat.send(quickstart.SIGNED_UP_EVENT, {"name": "Ada"}), status=FAILED)
    assert run["output"]["code"] == "non_retriable_error"
    assert "email" in run["output"]["message"]
    assert run["steps"] == []


def test_nudge_delay_is_whole_seconds() -> None:
    assert quickstart.parse_delay_seconds("172800").total_seconds() == 48 * 3600
    assert quickstart.DEFAULT_NUDGE_DELAY == "172800"
    with pytest.raises(ValueError):
        quickstart.parse_delay_seconds("soon")
    with pytest.raises(ValueError):
        quickstart.parse_delay_seconds("-1")
