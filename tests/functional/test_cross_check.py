"""Cross-check: one scenario written with the official ``inngest`` SDK and with Wayline's.

The journey (steps, a step id reused in a loop, a durable sleep, ``wait_for_event`` and a
parallel group) is served by a FastAPI app of each SDK, each in front of its own (identical)
``wayline dev``. Both get the same trigger and confirmation events; the run output and the
step list (id, name, op, status, output) that ``GET /v1/runs/{id}`` reports must be equal.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import inngest
import pytest

import wayline
from compat.harness import COMPLETED, Compat, JSONDict

from .support import Flavor, Functions, flavors, serve, wait_for_step

APP_ID = "cross"
FN_ID = "journey"
START = "cross/start"
CONFIRMED = "cross/confirmed"
IF_EXPRESSION = "async.data.user == event.data.user"
NAP = datetime.timedelta(seconds=1)
WAIT_TIMEOUT = datetime.timedelta(seconds=30)


# ----------------------------------------------------------------------------- step bodies


def load_user(name: str) -> dict[str, Any]:
    return {"name": name, "plan": "pro"}


def score(name: str, i: int) -> int:
    return len(name) * 10 + i


def side(which: str) -> str:
    return f"{which}-done"


def outcome(
    user: dict[str, Any], scores: list[int], confirmed: dict[str, Any] | None, pair: list[str]
) -> dict[str, Any]:
    return {"user": user, "scores": scores, "confirmed": confirmed, "pair": pair}


# ----------------------------------------------------------------------------- official SDK


def official_journey(client: inngest.Inngest, flavor: Flavor) -> inngest.Function[Any]:
    trigger = inngest.TriggerEvent(event=START)

    if flavor == "sync":

        @client.create_function(fn_id=FN_ID, retries=0, trigger=trigger)
        def journey_sync(ctx: inngest.ContextSync) -> dict[str, Any]:
            name = str(ctx.event.data["user"])
            user = ctx.step.run("load-user", load_user, name)
            scores = [ctx.step.run("score", score, name, i) for i in range(2)]
            ctx.step.sleep("nap", NAP)
            event = ctx.step.wait_for_event(
                "confirmed", event=CONFIRMED, if_exp=IF_EXPRESSION, timeout=WAIT_TIMEOUT
            )
            pair = ctx.group.parallel(
                (
                    lambda: ctx.step.run("left", side, "left"),
                    lambda: ctx.step.run("right", side, "right"),
                )
            )
            confirmed = None if event is None else dict(event.data)
            return outcome(user, scores, confirmed, list(pair))

        return journey_sync

    @client.create_function(fn_id=FN_ID, retries=0, trigger=trigger)
    async def journey_async(ctx: inngest.Context) -> dict[str, Any]:
        name = str(ctx.event.data["user"])

        async def load_user_async() -> dict[str, Any]:
            return load_user(name)

        async def score_async(i: int) -> int:
            return score(name, i)

        async def side_async(which: str) -> str:
            return side(which)

        user = await ctx.step.run("load-user", load_user_async)
        scores = [await ctx.step.run("score", score_async, i) for i in range(2)]
        await ctx.step.sleep("nap", NAP)
        event = await ctx.step.wait_for_event(
            "confirmed", event=CONFIRMED, if_exp=IF_EXPRESSION, timeout=WAIT_TIMEOUT
        )
        pair = await ctx.group.parallel(
            (
                lambda: ctx.step.run("left", side_async, "left"),
                lambda: ctx.step.run("right", side_async, "right"),
            )
        )
        confirmed = None if event is None else dict(event.data)
        return outcome(user, scores, confirmed, list(pair))

    return journey_async


# ----------------------------------------------------------------------------- Wayline SDK


def wayline_journey(client: wayline.Wayline, flavor: Flavor) -> wayline.Function[Any, Any]:
    trigger = wayline.TriggerEvent(event=START)

    if flavor == "sync":

        @client.function(id=FN_ID, retries=0, trigger=trigger)
        def journey_sync(ctx: wayline.SyncContext) -> dict[str, Any]:
            name = str(ctx.event.data["user"])
            user = ctx.step.run("load-user", load_user, name)
            scores = [ctx.step.run("score", score, name, i) for i in range(2)]
            ctx.step.sleep("nap", NAP)
            event = ctx.step.wait_for_event(
                "confirmed", event=CONFIRMED, if_=IF_EXPRESSION, timeout=WAIT_TIMEOUT
            )
            pair = ctx.group.parallel(
                [
                    lambda: ctx.step.run("left", side, "left"),
                    lambda: ctx.step.run("right", side, "right"),
                ]
            )
            confirmed = None if event is None else dict(event.data)
            return outcome(user, scores, confirmed, list(pair))

        return journey_sync

    @client.function(id=FN_ID, retries=0, trigger=trigger)
    async def journey_async(ctx: wayline.Context) -> dict[str, Any]:
        name = str(ctx.event.data["user"])
        user = await ctx.step.run("load-user", load_user, name)
        scores = [await ctx.step.run("score", score, name, i) for i in range(2)]
        await ctx.step.sleep("nap", NAP)
        event = await ctx.step.wait_for_event(
            "confirmed", event=CONFIRMED, if_=IF_EXPRESSION, timeout=WAIT_TIMEOUT
        )
        pair = await ctx.group.parallel(
            [
                lambda: ctx.step.run("left", side, "left"),
                lambda: ctx.step.run("right", side, "right"),
            ]
        )
        confirmed = None if event is None else dict(event.data)
        return outcome(user, scores, confirmed, list(pair))

    return journey_async


# ----------------------------------------------------------------------------- the check


def step_list(run: JSONDict) -> list[tuple[Any, ...]]:
    """(id, name, op, status, output) of every step. A sleep's wake-up time and a matched
    event's id and timestamp differ between any two runs, so they are checked for shape and
    compared without their values."""
    steps: list[tuple[Any, ...]] = []
    for step in run.get("steps") or []:
        output = step["output"]
        if step["op"] == "Sleep":
            assert isinstance(output, dict) and isinstance(output.get("until"), int), step
            output = {"until": "<ms>"}
        if step["op"] == "WaitForEvent" and output is not None:
            assert isinstance(output.get("id"), str) and isinstance(output.get("ts"), int), step
            output = {**output, "id": "<id>", "ts": "<ms>"}
        steps.append((step["id"], step["name"], step["op"], step["status"], output))
    return steps


@contextlib.contextmanager
def official_dev(tmp_path: Path, flavor: Flavor) -> Iterator[Compat]:
    compat = Compat(tmp_path)
    try:
        client = compat.client(APP_ID)
        compat.serve("fastapi", client, [official_journey(client, flavor)])
        yield compat
    finally:
        compat.close()


@flavors
def test_both_sdks_give_the_same_run(
    flavor: Flavor, tmp_path_factory: pytest.TempPathFactory
) -> None:
    def build(client: wayline.Wayline) -> Functions:
        return [wayline_journey(client, flavor)]

    with (
        official_dev(tmp_path_factory.mktemp("official"), flavor) as official,
        serve("fastapi", build, tmp_path_factory, app_id=APP_ID) as ours,
    ):
        servers = {"official": official, "wayline": ours.compat}
        started = {name: c.send(START, {"user": "ada"}) for name, c in servers.items()}
        for name, compat in servers.items():
            wait_for_step(compat, started[name], FN_ID, "confirmed")
            compat.send(CONFIRMED, {"user": "bob", "ok": False})
            compat.send(CONFIRMED, {"user": "ada", "ok": True})
        runs = {
            name: compat.wait_run(started[name], FN_ID, status=COMPLETED)
            for name, compat in servers.items()
        }

    expected_output = {
        "user": {"name": "ada", "plan": "pro"},
        "scores": [30, 31],
        "confirmed": {"user": "ada", "ok": True},
        "pair": ["left-done", "right-done"],
    }
    assert runs["official"]["output"] == expected_output
    assert runs["wayline"]["output"] == runs["official"]["output"]
    assert step_list(runs["wayline"]) == step_list(runs["official"])
    assert [s[1] for s in step_list(runs["official"])] == [
        "load-user",
        "score",
        "score",
        "nap",
        "confirmed",
        "left",
        "right",
    ]
