"""Pydantic in and out: a typed trigger event, a model step result rebuilt from its memo on
replay, a model function result (plus a typed ``wait_for_event`` and ``invoke``), all as JSON
on the server; data that does not match the model fails the run without retries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

import wayline
from compat.harness import FAILED, Tally, step_named

from .support import Dev, Flavor, Framework, Functions, event_name, flavors, serve

tally = Tally()
CONFIRMED = "fn/typed.confirmed"


class SignedUp(pydantic.BaseModel):
    key: str
    email: str
    age: int
    tags: list[str] = []


class Confirmed(pydantic.BaseModel):
    key: str
    code: int


class Receipt(pydantic.BaseModel):
    to: str
    words: int


class Score(pydantic.BaseModel):
    value: float


class Report(pydantic.BaseModel):
    receipt: Receipt
    score: float
    code: int
    types: list[str]


def compose(user: SignedUp) -> Receipt:
    tally.incr(f"{user.key}:compose")
    return Receipt(to=user.email, words=user.age * 2)


def report(receipt: Receipt, score: Score, confirmed: Confirmed) -> Report:
    types = [type(receipt).__name__, type(score).__name__, type(confirmed).__name__]
    return Report(receipt=receipt, score=score.value, code=confirmed.code, types=types)


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="scorer", trigger=wayline.TriggerEvent(event="fn/never"), retries=0)
    def scorer(ctx: wayline.SyncContext) -> Score:
        return Score(value=float(ctx.event.data["age"]) * 1.5)

    def typed(flavor: Flavor) -> wayline.TriggerEvent[SignedUp]:
        return wayline.TriggerEvent(event=event_name("typed", flavor), model=SignedUp)

    @client.function(id="typed-async", trigger=typed("async"), retries=2)
    async def typed_async(ctx: wayline.Context[SignedUp]) -> Report:
        user = ctx.event.data
        receipt = await ctx.step.run("compose", compose, user)
        score = await ctx.step.invoke("score", function=scorer, data={"age": user.age})
        confirmed = await ctx.step.wait_for_event(
            "confirmed", event=CONFIRMED, match="data.key", timeout="30s", model=Confirmed
        )
        assert confirmed is not None
        return report(receipt, score, confirmed.data)

    @client.function(id="typed-sync", trigger=typed("sync"), retries=2)
    def typed_sync(ctx: wayline.SyncContext[SignedUp]) -> Report:
        user = ctx.event.data
        receipt = ctx.step.run("compose", compose, user)
        score = ctx.step.invoke("score", function=scorer, data={"age": user.age})
        confirmed = ctx.step.wait_for_event(
            "confirmed", event=CONFIRMED, match="data.key", timeout="30s", model=Confirmed
        )
        assert confirmed is not None
        return report(receipt, score, confirmed.data)

    return [scorer, typed_async, typed_sync]


@pytest.fixture(scope="module")
def dev(framework: Framework, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve(framework, build, tmp_path_factory, app_id="typed") as running:
        yield running


@flavors
def test_models_in_and_out(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("typed", flavor, email="ada@example.com", age=21)
    dev.wait_for_step(started, "confirmed")
    dev.compat.send(CONFIRMED, {"key": started.key, "code": 7})
    run = dev.wait(started)

    receipt: dict[str, Any] = {"to": "ada@example.com", "words": 42}
    assert run["output"] == {
        "receipt": receipt,
        "score": 31.5,
        "code": 7,
        # Rebuilt into their annotated types on replay, not handed back as dicts.
        "types": ["Receipt", "Score", "Confirmed"],
    }
    assert step_named(run, "compose")["output"] == receipt
    assert step_named(run, "score")["output"] == {"value": 31.5}
    assert tally.count(f"{started.key}:compose") == 1


@flavors
def test_data_not_matching_the_model_fails_without_retries(dev: Dev, flavor: Flavor) -> None:
    started = dev.start("typed", flavor, email="ada@example.com", age="old")
    run = dev.wait(started, status=FAILED)

    assert run["output"]["code"] == "non_retriable_error"
    assert "SignedUp" in run["output"]["message"]
    assert "age" in run["output"]["message"]
    assert run["steps"] == []
    assert tally.count(f"{started.key}:compose") == 0
