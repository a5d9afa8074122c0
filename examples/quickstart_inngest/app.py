"""Wayline quick-start app, written with the OFFICIAL inngest SDK and FastAPI.

It is the same flow as ``examples/quickstart/app.py`` (written with Wayline's own SDK),
kept to show that apps built with the official Inngest SDK run on Wayline unchanged.

When a user signs up (event ``user/signed-up`` with ``{"email": ...}``), the
``send-welcome-email`` function:

1. sends a welcome email (step ``send-welcome``),
2. sleeps durably for ``QUICKSTART_NUDGE_DELAY`` seconds (default 48 h; step
   ``wait-for-onboarding``),
3. checks whether the user finished onboarding (step ``check-onboarding``),
4. sends a nudge only if they did not (step ``send-nudge``).

``POST /onboarded {"email": ...}`` marks a user as onboarded.

Run it against a local dev server::

    wayline dev --app examples.quickstart_inngest.app:app
    # or: uvicorn examples.quickstart_inngest.app:app --port 8000
    #     wayline dev -u http://127.0.0.1:8000/api/inngest

The client talks to ``INNGEST_BASE_URL`` (or ``INNGEST_DEV`` when it is a URL),
defaulting to ``http://127.0.0.1:8288``.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading

import fastapi
import inngest
import inngest.fast_api
import pydantic

APP_ID = "quickstart"
FUNCTION_ID = "send-welcome-email"
SIGNED_UP_EVENT = "user/signed-up"
DEFAULT_BASE_URL = "http://127.0.0.1:8288"
DEFAULT_NUDGE_DELAY = str(48 * 3600)

logger = logging.getLogger("quickstart")


def parse_delay_seconds(text: str) -> datetime.timedelta:
    """``QUICKSTART_NUDGE_DELAY`` is whole seconds (default two days)."""
    seconds = int(text)
    if seconds < 0:
        raise ValueError(f"QUICKSTART_NUDGE_DELAY must be >= 0 seconds, got {seconds}")
    return datetime.timedelta(seconds=seconds)


def base_url_from_env() -> str:
    """``INNGEST_BASE_URL``, else ``INNGEST_DEV`` if it is a URL, else the default."""
    base = os.environ.get("INNGEST_BASE_URL", "").strip()
    if base:
        return base
    dev = os.environ.get("INNGEST_DEV", "").strip()
    if dev.startswith(("http://", "https://")):
        return dev
    return DEFAULT_BASE_URL


class OnboardedRequest(pydantic.BaseModel):
    email: str


class OnboardingStore:
    """In-memory record of who finished onboarding (a stand-in for a database)."""

    def __init__(self) -> None:
        self._done: dict[str, bool] = {}
        self._lock = threading.Lock()

    def mark(self, email: str) -> None:
        with self._lock:
            self._done[email] = True

    def is_done(self, email: str) -> bool:
        with self._lock:
            return self._done.get(email, False)


def create_app(
    *,
    base_url: str | None = None,
    nudge_delay: str | None = None,
) -> fastapi.FastAPI:
    """Build the FastAPI app; settings default to the environment."""
    base = base_url or base_url_from_env()
    delay = parse_delay_seconds(
        nudge_delay or os.environ.get("QUICKSTART_NUDGE_DELAY") or DEFAULT_NUDGE_DELAY
    )
    client = inngest.Inngest(
        app_id=APP_ID,
        is_production=False,
        api_base_url=base,
        event_api_base_url=base,
    )
    store = OnboardingStore()

    @client.create_function(
        fn_id=FUNCTION_ID,
        name="Send welcome email",
        trigger=inngest.TriggerEvent(event=SIGNED_UP_EVENT),
    )
    async def send_welcome_email(ctx: inngest.Context) -> dict[str, object]:
        email = str(ctx.event.data.get("email", ""))

        async def send_welcome() -> str:
            logger.info("sending welcome email to %s", email)
            return f"welcome email sent to {email}"

        await ctx.step.run("send-welcome", send_welcome)
        await ctx.step.sleep("wait-for-onboarding", delay)

        async def check_onboarding() -> bool:
            return store.is_done(email)

        onboarded = await ctx.step.run("check-onboarding", check_onboarding)

        nudged = False
        if not onboarded:

            async def send_nudge() -> str:
                logger.info("sending onboarding nudge to %s", email)
                return f"nudge sent to {email}"

            await ctx.step.run("send-nudge", send_nudge)
            nudged = True

        return {"email": email, "welcome_sent": True, "onboarded": onboarded, "nudged": nudged}

    app = fastapi.FastAPI(title="Wayline quick-start")

    @app.post("/onboarded")
    async def mark_onboarded(body: OnboardedRequest) -> dict[str, object]:
        store.mark(body.email)
        return {"email": body.email, "onboarded": True}

    inngest.fast_api.serve(app, client, [send_welcome_email])
    return app


app = create_app()
