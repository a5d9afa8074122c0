"""The official-SDK quick-start example (examples/quickstart_inngest), end to end, with a
1 s nudge delay: an app built with the official inngest SDK runs on Wayline unchanged.

The Wayline-SDK quick start (examples/quickstart) is tested in tests/functional."""

from __future__ import annotations

import httpx
import pytest
from examples.quickstart_inngest import app as quickstart

from .harness import COMPLETED, Compat, step_named, steps_named

pytestmark = pytest.mark.compat


def test_quickstart_example(compat: Compat, monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_nudge_delay_is_whole_seconds() -> None:
    assert quickstart.parse_delay_seconds("172800").total_seconds() == 48 * 3600
    with pytest.raises(ValueError):
        quickstart.parse_delay_seconds("soon")
    with pytest.raises(ValueError):
        quickstart.parse_delay_seconds("-1")
