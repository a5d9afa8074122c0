"""Wayline quick-start app, written with the Wayline SDK and FastAPI.

When a user signs up (event ``user/signed-up`` with ``{"email": ...}``, validated into
:class:`SignedUp`), the ``send-welcome-email`` function:

1. sends a welcome email (step ``send-welcome``),
2. sleeps durably for ``QUICKSTART_NUDGE_DELAY`` seconds (default 48 h; step
   ``wait-for-onboarding``),
3. checks whether the user finished onboarding (step ``check-onboarding``),
4. sends a nudge only if they did not (step ``send-nudge``),

and returns a :class:`WelcomeResult`. ``POST /onboarded {"email": ...}`` marks a user as
onboarded.

Run it against a local dev server::

    wayline dev --app examples.quickstart.app:app       # what `make dev` runs
    # or: uvicorn examples.quickstart.app:app --port 8000
    #     wayline dev -u http://127.0.0.1:8000/api/inngest

The app always runs in dev mode. Its client talks to ``WAYLINE_BASE_URL`` (or
``INNGEST_BASE_URL``, or ``INNGEST_DEV`` when it is a URL), defaulting to
``http://127.0.0.1:8288``. The same flow written with the official Inngest SDK, which runs on
Wayline unchanged, is ``examples/quickstart_inngest/app.py``.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading

import fastapi
import pydantic

import wayline
import wayline.fastapi

APP_ID = "quickstart"
FUNCTION_ID = "send-welcome-email"
SIGNED_UP_EVENT = "user/signed-up"
DEFAULT_NUDGE_DELAY = str(48 * 3600)

logger = logging.getLogger("quickstart")


class SignedUp(pydantic.BaseModel):
    """The data of a ``user/signed-up`` event."""

    email: str


class WelcomeResult(pydantic.BaseModel):
    """What the function returns (the run's output, as JSON)."""

    email: str
    welcome_sent: bool
    onboarded: bool
    nudged: bool


class OnboardedRequest(pydantic.BaseModel):
    email: str


def parse_delay_seconds(text: str) -> datetime.timedelta:
    """``QUICKSTART_NUDGE_DELAY`` is whole seconds (default two days)."""
    seconds = int(text)
    if seconds < 0:
        raise ValueError(f"QUICKSTART_NUDGE_DELAY must be >= 0 seconds, got {seconds}")
    return datetime.timedelta(seconds=seconds)


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


def send_welcome(email: str) -> str:
    logger.info("sending welcome email to %s", email)
    return f"welcome email sent to {email}"


def send_nudge(email: str) -> str:
    logger.info("sending onboarding nudge to %s", email)
    return f"nudge sent to {email}"


def create_app(
    *,
    base_url: str | None = None,
    nudge_delay: str | None = None,
) -> fastapi.FastAPI:
    """Build the FastAPI app; settings default to the environment."""
    delay = parse_delay_seconds(
        nudge_delay or os.environ.get("QUICKSTART_NUDGE_DELAY") or DEFAULT_NUDGE_DELAY
    )
    client = wayline.Wayline(app_id=APP_ID, is_dev=True, base_url=base_url, logger=logger)
    store = OnboardingStore()

    @client.function(
        id=FUNCTION_ID,
        name="Send welcome email",
        trigger=wayline.TriggerEvent(event=SIGNED_UP_EVENT, model=SignedUp),
    )
    async def send_welcome_email(ctx: wayline.Context[SignedUp]) -> WelcomeResult:
        email = ctx.event.data.email
        await ctx.step.run("send-welcome", send_welcome, email)
        await ctx.step.sleep("wait-for-onboarding", delay)
        onboarded = await ctx.step.run("check-onboarding", store.is_done, email)
        if not onboarded:
            await ctx.step.run("send-nudge", send_nudge, email)
        return WelcomeResult(
            email=email, welcome_sent=True, onboarded=onboarded, nudged=not onboarded
        )

    app = fastapi.FastAPI(title="Wayline quick-start")

    @app.post("/onboarded")
    async def mark_onboarded(body: OnboardedRequest) -> dict[str, object]:
        store.mark(body.email)
        return {"email": body.email, "onboarded": True}

    wayline.fastapi.serve(app, client, [send_welcome_email])
    return app


app = create_app()
