"""The SDK's types, as users meet them: ``mypy --strict`` passes on the tour of every
feature (``examples/sdk_tour.py``) and flags the mistakes its signatures exist to catch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import examples.sdk_tour as tour

import wayline.testing

ROOT = Path(__file__).resolve().parents[3]

MISTAKES = """
from typing import Any
import pydantic
import wayline

class SignedUp(pydantic.BaseModel):
    email: str

client = wayline.Wayline(app_id="shop")
typed = wayline.TriggerEvent(event="user/signed-up", model=SignedUp)

@client.function(id="a", trigger=typed)  # E: the trigger is typed, the context is not
async def bare_context(ctx: wayline.Context) -> None: ...

@client.function(id="b", trigger=typed)  # E: a plain def takes a SyncContext
def sync_with_async_context(ctx: wayline.Context[SignedUp]) -> None: ...

@client.function(id="c", trigger=typed)
async def fine(ctx: wayline.Context[SignedUp]) -> int:
    ctx.event.data.emial  # E: typo in a typed field
    text: str = await ctx.step.run("n", lambda: 1)  # E: a step's type is its callable's
    await ctx.step.run("args", lambda x: x, 1, 2)  # E: arguments are checked too
    ev = await ctx.step.wait_for_event("w", event="x", timeout="1h", model=SignedUp)
    ev.data.email  # E: None when the wait times out
    return 1

async def needs_str(ctx: wayline.Context) -> None:
    n: str = await ctx.step.invoke("i", function=fine)  # E: invoke returns the function's type

wayline.Wayline(app_id=1)  # E: app_id is a string
wayline.Throttle(limit=1, period=60)  # E: durations are str or timedelta

class Deleted(pydantic.BaseModel):
    user_id: int

SIGNED_UP = wayline.EventType("user/signed-up", SignedUp)
DELETED = wayline.EventType("user/deleted", Deleted)
typed_client = wayline.Wayline(app_id="shop", events=[SIGNED_UP, DELETED])
typed_client.send(SIGNED_UP(SignedUp(email="a@b.c")))
typed_client.send(SIGNED_UP({"email": "a@b.c"}))  # E: a typed event takes its model
typed_client.send(DELETED(SignedUp(email="a@b.c")))  # E: another event's model
typed_client.send([SIGNED_UP(SignedUp(email="a@b.c")), DELETED(Deleted(user_id=1))])
typed_client.send("user/deleted")  # E: send takes events
wayline.Wayline(app_id="shop", events=["user/deleted"])  # E: events are EventTypes
wayline.Cancel(event="user/deleted", match=1)  # E: match is a field path

@typed_client.function(id="d", trigger=SIGNED_UP.trigger())
async def typed_steps(ctx: wayline.Context[SignedUp]) -> None:
    await ctx.step.send_event("s", DELETED(Deleted(user_id="1")))  # E: user_id is an int
    gone = await ctx.step.wait_for_event("w", event=DELETED, timeout="1h")
    if gone is not None:
        gone.data.email  # E: the waited event is typed by its EventType
"""


def test_the_tour_runs() -> None:
    result = tour.try_it()
    assert result.status == "completed", result.error
    assert result.steps[:3] == ["send", "wait-48h", "verified"]
    assert result.output["charge"].startswith("skipped: nothing to charge")


def test_the_tours_encrypted_function_returns_ciphertext() -> None:
    card = tour.CardAdded(user_id=1, encrypted={"number": "4242424242424242"})
    result = wayline.testing.run(tour.store_card, tour.CARD_ADDED(card))
    assert result.status == "completed", result.error
    assert "4242" not in str(result.output)
    assert tour.encryption.decrypt(result.output) == {"token": "tok_4242"}


def test_mypy_strict_accepts_the_tour_and_rejects_the_mistakes(tmp_path: Path) -> None:
    mistakes = tmp_path / "mistakes.py"
    mistakes.write_text(MISTAKES)
    # In a subprocess: mypy raises the interpreter's recursion limit, which other tests notice.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            # Its own incremental cache (gitignored): warm runs take a second, not seven.
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "sdk-typing-test"),
            str(ROOT / "examples" / "sdk_tour.py"),
            str(mistakes),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    stdout, stderr = result.stdout, result.stderr
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if "sdk_tour.py" in e], stdout + stderr
    flagged = sorted(
        {int(m.group(1)) for e in errors if (m := re.search(r"mistakes\.py:(\d+):", e))}
    )
    expected = [i + 1 for i, line in enumerate(MISTAKES.splitlines()) if "# E:" in line]
    assert flagged == expected, stdout + stderr
