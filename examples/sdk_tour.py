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
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import fastapi
import pydantic

import wayline
import wayline.aws_lambda
import wayline.fastapi
import wayline.testing
from wayline.middleware import Encryption, LoggingContext, OpenTelemetry, StaticKeys, generate_key

logger = logging.getLogger("shop")


# ----------------------------------------------------------------------------- typed events


class SignedUp(pydantic.BaseModel):
    """``user/signed-up`` data: validated on the way in, typed in the function."""

    user_id: int
    email: str
    plan: str = "free"


class UserRef(pydantic.BaseModel):
    user_id: int


class CardAdded(pydantic.BaseModel):
    user_id: int
    encrypted: dict[str, str]
    """Sealed by the Encryption middleware before the event leaves the app."""


# One EventType per event: typed construction (mypy), typed triggers and waits, and, once
# registered on the client, validation of every such event the app sends, at the call.
SIGNED_UP = wayline.EventType("user/signed-up", SignedUp)
VERIFIED = wayline.EventType("user/verified", UserRef)
DELETED = wayline.EventType("user/deleted", UserRef)
PROCESS = wayline.EventType("user/process", UserRef)
CARD_ADDED = wayline.EventType("card/added", CardAdded)


# ----------------------------------------------------------------------------- middleware


class Audit(wayline.Middleware):
    """A custom middleware: hooks may be sync or async; this one notes failed steps."""

    async def on_error(
        self, call: wayline.CallInfo, error: Exception, step: wayline.StepInfo | None
    ) -> None:
        where = step.step_id if step else "the function"
        logger.warning("run %s: %s failed: %s", call.run_id, where, error)


# Keys and URLs come from WAYLINE_* (or INNGEST_*) variables; dev mode only with WAYLINE_DEV.
client = wayline.Wayline(
    app_id="shop",
    logger=logger,
    events=[SIGNED_UP, VERIFIED, DELETED, PROCESS, CARD_ADDED],
    # In order: the first sees each call first and its result last.
    middleware=[LoggingContext(), OpenTelemetry(), Audit()],
)

# Card data is sealed in the app (AES-256-GCM); the server stores only ciphertext. Rotate by
# moving the current key to `previous` and adding a new current one.
encryption = Encryption(
    StaticKeys(("2026-11", os.environ.get("SHOP_ENCRYPTION_KEY") or generate_key()))
)


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
    trigger=SIGNED_UP.trigger(),
    retries=3,
    backoff=wayline.Backoff(initial="10s", factor=2, max="10m", jitter="5s"),
    step_backoff={"charge": wayline.Backoff(initial="1m", factor=3, max="2h")},
    on_failure=notify_ops,
    cancel=wayline.Cancel(event=DELETED.name, match="data.user_id"),
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
        "verified", event=VERIFIED, match="data.user_id", timeout=timedelta(hours=24)
    )  # an Event[UserRef] | None
    if verified is None:
        await ctx.step.run("nudge", send_email, user.email, subject="Please verify")

    ids = await ctx.step.send_event("fan-out", [PROCESS(UserRef(user_id=user.user_id))])
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
        "verified": verified is not None and verified.data.user_id == user.user_id,
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
    # Consecutive steps run in one request, each stored by the server before the next
    # (checkpointing, on by default); this one may keep a request busy for 30 s.
    checkpointing=wayline.Checkpointing(max_runtime=timedelta(seconds=30)),
)
def import_rows(ctx: wayline.SyncContext) -> int:
    """Batched: ``ctx.events`` holds up to 100 events."""

    def flaky() -> str:
        if ctx.attempt == 0:
            raise wayline.RetryAfterError("the API is busy", timedelta(seconds=30))
        return call_flaky_api()

    ctx.step.run("check-api", flaky)
    return len(ctx.events)


@client.function(id="store-card", trigger=CARD_ADDED.trigger(), middleware=[encryption])
async def store_card(ctx: wayline.Context[CardAdded]) -> dict[str, str]:
    """Its own middleware (after the client's): event field, step output and result sealed."""
    card = ctx.event.data.encrypted  # plaintext here, ciphertext on the server
    token = await ctx.step.run("tokenize", lambda: f"tok_{card['number'][-4:]}")
    return {"token": token}


@client.function(
    id="vault-card", trigger=wayline.TriggerEvent(event="card/vault"), middleware=[encryption]
)
async def vault_card(ctx: wayline.Context) -> str:
    """Invoked by ``sync_rates`` with sealed data: opened here by the same key."""
    return f"vaulted {ctx.event.data['encrypted']['last4']}"


class Rates(pydantic.BaseModel):
    base: str
    rates: dict[str, float]


@client.function(
    id="sync-rates",
    trigger=wayline.TriggerEvent(event="rates/sync"),
    retries=5,
    middleware=[encryption],
)
async def sync_rates(ctx: wayline.Context) -> dict[str, Any]:
    """``step.fetch``: the server makes the request and memoizes the answer (the app may be
    down meanwhile; 5xx answers are retried), and ``ctx.publish`` streams progress to a page
    subscribed with a token (see ``progress_token``)."""
    channel = f"rates:{ctx.event.data['account']}"
    await ctx.publish(channel, "progress", {"stage": "fetching"})
    res = await ctx.step.fetch(
        "rates",
        "https://api.example.com/v1/rates?base=EUR",
        headers={"authorization": f"Bearer {os.environ.get('RATES_API_TOKEN', '')}"},
        timeout=timedelta(seconds=30),
    )
    if not res.ok:
        raise wayline.NonRetriableError(f"rates API answered {res.status}")
    rates = Rates.model_validate(res.json())
    await ctx.publish(channel, "progress", {"stage": "fetched", "currencies": len(rates.rates)})
    # With the Encryption middleware, invoke data is sealed before it leaves the app.
    vaulted = await ctx.step.invoke(
        "vault", function=vault_card, data={"encrypted": {"last4": "4242"}}
    )
    # A durable publish: a step, so sent once even if the function retries after it.
    await ctx.step.publish("announce-done", channel, "progress", {"stage": "done"})
    return {"base": rates.base, "currencies": sorted(rates.rates), "vault": vaulted}


def progress_token(account: str) -> wayline.SubscriptionToken:
    """For a page: ``new EventSource(`${server}/v1/realtime/subscribe?channel=rates:${account}
    &token=${token.key}`)`` receives ``sync_rates``'s progress, and nothing else."""
    return client.get_subscription_token(f"rates:{account}", ["progress"], ttl_seconds=600)


FUNCTIONS: list[wayline.Function[Any, Any]] = [
    send_welcome,
    build_report,
    daily_digest,
    import_rows,
    store_card,
    vault_card,
    sync_rates,
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
    event = SIGNED_UP(SignedUp(user_id=1, email="ada@example.com"))  # typed: mypy checks data
    try:
        return client.send(event)  # a registered event with bad data raises ValidationError
    except wayline.SendEventsError as err:
        logger.error("accepted before the failure: %s", err.ids)
        raise


def try_it() -> wayline.testing.TestResult:
    """Run the welcome flow in-process: mocked email, an injected verification."""
    return wayline.testing.run(
        send_welcome,
        SIGNED_UP(SignedUp(user_id=7, email="ada@example.com")),
        mocks={"send": lambda to, subject: Receipt(message_id="test", to=to)},
        events={"verified": VERIFIED(UserRef(user_id=7))},
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    result = try_it()
    print(result.status, result.steps)
    print(result.output)
