"""A tour of the Wayline SDK: every feature in one typed app (checked with ``mypy --strict``).

Run it against a local dev server::

    wayline dev -u http://127.0.0.1:8000/api/inngest
    WAYLINE_DEV=1 uvicorn --factory examples.sdk_tour:create_app --port 8000

or run its functions in-process, with no server at all::

    WAYLINE_DEV=1 python -m examples.sdk_tour
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import fastapi
import pydantic

import wayline
import wayline.aws_lambda
import wayline.fastapi
import wayline.testing

logger = logging.getLogger("shop")

# Keys and URLs come from WAYLINE_* (or INNGEST_*) variables; dev mode only with WAYLINE_DEV.
client = wayline.Wayline(app_id="shop", logger=logger)


# ----------------------------------------------------------------------------- typed events


class SignedUp(pydantic.BaseModel):
    """``user/signed-up`` data: validated on the way in, typed in the function."""

    user_id: int
    email: str
    plan: str = "free"


@dataclasses.dataclass(frozen=True)
class Receipt:
    """A step result: a dataclass goes out as JSON and comes back as a Receipt."""

    message_id: str
    to: str


class Report(pydantic.BaseModel):
    user_id: int
    score: float


# ----------------------------------------------------------------------------- step bodies


def send_email(to: str, *, subject: str) -> Receipt:
    logger.info("sending %r to %s", subject, to)
    return Receipt(message_id=f"msg-{abs(hash(to)) % 1000}", to=to)


async def score_user(user_id: int) -> float:
    return user_id * 1.5


def fetch_profile(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "name": "Ada"}


def count_logins(user_id: int) -> int:
    return 3


def charge(amount_cents: int) -> str:
    if amount_cents <= 0:
        raise ValueError(f"nothing to charge ({amount_cents} cents)")  # retried, then StepError
    return "ch_123"


def call_flaky_api() -> str:
    return "ok"


# ----------------------------------------------------------------------------- functions


@client.function(id="build-report", trigger=wayline.TriggerEvent(event="report/requested"))
async def build_report(ctx: wayline.Context) -> Report:
    """Invoked by ``send_welcome``; also runs for ``report/requested`` events."""
    user_id = int(ctx.event.data["user_id"])
    score = await ctx.step.run("score", score_user, user_id)
    return Report(user_id=user_id, score=score)


async def notify_ops(ctx: wayline.Context) -> None:
    """``on_failure``: runs once ``send-welcome-email`` has failed for good."""
    error = ctx.event.data.get("error", {})
    ctx.logger.error("welcome flow failed: %s", error.get("message"))


@client.function(
    id="send-welcome-email",
    name="Send the welcome email",
    trigger=wayline.TriggerEvent(event="user/signed-up", model=SignedUp),
    retries=3,
    on_failure=notify_ops,
    cancel=wayline.Cancel(event="user/deleted", if_="event.data.user_id == async.data.user_id"),
    concurrency=[
        wayline.Concurrency(limit=10),
        wayline.Concurrency(limit=1, key="event.data.user_id"),
    ],
    throttle=wayline.Throttle(limit=100, period="1m"),
    rate_limit=wayline.RateLimit(limit=1, period="1h", key="event.data.user_id"),
    idempotency="event.data.user_id",
    priority=wayline.Priority(run="event.data.plan == 'pro' ? 120 : 0"),
    timeouts=wayline.Timeouts(start="10m", finish=timedelta(days=4)),
)
async def send_welcome(ctx: wayline.Context[SignedUp]) -> dict[str, Any]:
    user = ctx.event.data  # a SignedUp: ctx.event.data.email is typed
    if not user.email.strip():
        raise wayline.NonRetriableError(f"user {user.user_id} has no email")  # no retries
    ctx.logger.info("welcoming user %d", user.user_id)  # logged once, not on every replay

    receipt = await ctx.step.run("send", send_email, user.email, subject="Welcome!")
    await ctx.step.sleep("wait-48h", "48h")

    verified = await ctx.step.wait_for_event(
        "verified", event="user/verified", match="data.user_id", timeout=timedelta(hours=24)
    )
    if verified is None:
        await ctx.step.run("nudge", send_email, user.email, subject="Please verify")

    ids = await ctx.step.send_event(
        "fan-out", [wayline.Event(name="user/process", data={"user_id": user.user_id})]
    )
    report = await ctx.step.invoke(
        "report", function=build_report, data={"user_id": user.user_id}, timeout="1h"
    )

    profile, logins = await ctx.group.parallel(
        [
            lambda: ctx.step.run("profile", fetch_profile, user.user_id),
            lambda: ctx.step.run("logins", count_logins, user.user_id),
        ]
    )
    try:
        charge_id = await ctx.step.run("charge", charge, 0 if user.plan == "free" else 900)
    except wayline.StepError as err:  # a step that failed for good, memoized
        charge_id = f"skipped: {err.message}"

    await ctx.step.sleep_until("next-morning", datetime(2030, 1, 1, 9, tzinfo=UTC))
    return {
        "message_id": receipt.message_id,
        "verified": verified is not None,
        "events": ids,
        "score": report.score,
        "profile": profile,
        "logins": logins,
        "charge": charge_id,
    }


@client.function(
    id="daily-digest",
    trigger=[
        wayline.TriggerCron(cron="TZ=Europe/Paris 0 9 * * *"),
        wayline.TriggerEvent(event="digest/requested"),
    ],
    singleton=wayline.Singleton(mode="skip"),
    debounce=wayline.Debounce(period="30s"),
)
def daily_digest(ctx: wayline.SyncContext) -> int:
    """A plain ``def`` function: the same steps, without ``await``."""

    def count(region: str) -> Callable[[], int]:
        return lambda: ctx.step.run(f"count-{region}", len, region)

    counts = ctx.group.parallel([count(r) for r in ("eu", "us")], mode="race")
    ctx.step.sleep("cool-down", timedelta(seconds=5))
    return sum(counts)


@client.function(
    id="import-rows",
    trigger=wayline.TriggerEvent(event="rows/uploaded"),
    batch_events=wayline.Batch(max_size=100, timeout="10s", key="event.data.account"),
)
def import_rows(ctx: wayline.SyncContext) -> int:
    """Batched: ``ctx.events`` holds up to 100 events."""

    def flaky() -> str:
        if ctx.attempt == 0:
            raise wayline.RetryAfterError("the API is busy", timedelta(seconds=30))
        return call_flaky_api()

    ctx.step.run("check-api", flaky)
    return len(ctx.events)


FUNCTIONS: list[wayline.Function[Any, Any]] = [
    send_welcome,
    build_report,
    daily_digest,
    import_rows,
]


def create_app() -> fastapi.FastAPI:
    """The FastAPI app (``uvicorn --factory examples.sdk_tour:create_app``)."""
    app = fastapi.FastAPI()
    wayline.fastapi.serve(app, client, FUNCTIONS)
    return app


def lambda_handler() -> wayline.aws_lambda.LambdaHandler:
    """The same functions behind a Lambda Function URL or API Gateway."""
    return wayline.aws_lambda.serve(client, FUNCTIONS)


def send_a_signup() -> list[str]:
    """Apps send events with ``client.send`` (``send_async`` in async code)."""
    event = wayline.Event(name="user/signed-up", data=SignedUp(user_id=1, email="ada@example.com"))
    try:
        return client.send(event)
    except wayline.SendEventsError as err:
        logger.error("accepted before the failure: %s", err.ids)
        raise


def try_it() -> wayline.testing.TestResult:
    """Run the welcome flow in-process: mocked email, an injected verification."""
    return wayline.testing.run(
        send_welcome,
        wayline.Event(name="user/signed-up", data={"user_id": 7, "email": "ada@example.com"}),
        mocks={"send": lambda to, subject: Receipt(message_id="test", to=to)},
        events={"verified": wayline.Event(name="user/verified", data={"user_id": 7})},
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    result = try_it()
    print(result.status, result.steps)
    print(result.output)
