"""``wayline send`` and ``wayline runs list|show|cancel`` against a real ``wayline dev``
serving a Wayline SDK app (FastAPI) over loopback HTTP; exit codes as gh/aws users expect."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

import wayline
from api.conftest import make_client
from compat.harness import CANCELLED, FAILED, RUNNING, Compat, wait_until
from functional.support import Dev, Functions, serve
from wayline.api.rest import ApiConfig
from wayline.cli import main

APP_ID = "clitest"


class BoomError(Exception):
    pass


def build(client: wayline.Wayline) -> Functions:
    @client.function(id="greet", trigger=wayline.TriggerEvent(event="cli/greet"))
    async def greet(ctx: wayline.Context) -> str:
        return await ctx.step.run("hello", lambda: f"hi {ctx.event.data['name']}")

    @client.function(id="flaky", trigger=wayline.TriggerEvent(event="cli/flaky"), retries=1)
    async def flaky(ctx: wayline.Context) -> str:
        def boom() -> str:
            raise BoomError("the card was declined")

        return await ctx.step.run("charge", boom)

    @client.function(id="nap", trigger=wayline.TriggerEvent(event="cli/nap"))
    async def nap(ctx: wayline.Context) -> None:
        await ctx.step.sleep("long-nap", timedelta(hours=1))

    return [greet, flaky, nap]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with serve("fastapi", build, tmp_path_factory, app_id=APP_ID, retry_interval=0.2) as running:
        yield running


@pytest.fixture
def url(dev: Dev, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("WAYLINE_URL", dev.compat.server_url)
    for name in ("WAYLINE_SIGNING_KEY", "INNGEST_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    return dev.compat.server_url


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse: --version, usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def send(capsys: pytest.CaptureFixture[str], name: str, data: dict[str, Any]) -> str:
    code, out, _ = cli(capsys, "send", name, "--data", json.dumps(data), "--json")
    assert code == 0
    (event_id,) = json.loads(out)["ids"]
    return str(event_id)


def run_of(compat: Compat, event_id: str, status: str | None = None) -> dict[str, Any]:
    return compat.wait_run(event_id, status=status)


def test_version_from_the_installed_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wayline", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"wayline {wayline.__version__}"


def test_send_then_list_and_show_the_run(
    dev: Dev, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "send", "cli/greet", "--data", '{"name": "Ada"}')
    assert code == 0 and out.startswith("sent cli/greet: event ")
    event_id = out.split()[-1]
    run = run_of(dev.compat, event_id)
    assert run["output"] == "hi Ada"

    code, out, _ = cli(capsys, "runs", "list", "--function", f"{APP_ID}-greet", "--json")
    assert code == 0
    assert run["run_id"] in [r["run_id"] for r in json.loads(out)]

    code, out, err = cli(capsys, "runs", "list", "--if", 'event.data.name == "Ada"', "--json")
    assert run["run_id"] in [r["run_id"] for r in json.loads(out)]
    assert "--if read" in err
    run_of(dev.compat, send(capsys, "cli/greet", {"name": "Cy"}))
    code, out, err = cli(capsys, "runs", "list", "--limit", "1", "--json")
    (newest,) = json.loads(out)
    cursor = err.split("--cursor ")[1].split(")")[0]
    code, out, _ = cli(capsys, "runs", "list", "--limit", "1", "--cursor", cursor, "--json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)] != [newest["run_id"]]

    code, out, _ = cli(capsys, "runs", "list", "--status", "completed")
    lines = out.splitlines()
    assert lines[0].split() == ["RUN", "ID", "FUNCTION", "STATUS", "CREATED", "ENDED"]
    assert any(run["run_id"] in line and "Completed" in line for line in lines[1:])

    code, out, _ = cli(capsys, "runs", "show", run["run_id"])
    assert code == 0
    assert f"Run:        {run['run_id']}" in out and "Status:     Completed" in out
    (step_line,) = [line for line in out.splitlines() if line.startswith("hello ")]
    assert "Completed" in step_line and '-> "hi Ada"' in step_line


def test_show_lists_every_attempt_of_a_failed_step(
    dev: Dev, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_of(dev.compat, send(capsys, "cli/flaky", {}), status=FAILED)
    code, out, _ = cli(capsys, "runs", "show", run["run_id"])
    assert code == 0
    assert "Error:      BoomError: the card was declined" in out
    attempts = [line for line in out.splitlines() if line.strip().startswith("attempt ")]
    assert len(attempts) == 2
    assert "retry at" in attempts[0] and "retry at" not in attempts[1]
    assert all("BoomError: the card was declined" in line for line in attempts)
    code, out, _ = cli(capsys, "runs", "show", run["run_id"], "--json")
    (step,) = json.loads(out)["steps"]
    assert [a["status"] for a in step["history"]] == ["Failed", "Failed"]
    assert "BoomError" in step["history"][0]["error"]["stack"]


def test_cancel_a_sleeping_run(dev: Dev, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    event_id = send(capsys, "cli/nap", {})
    run = run_of(dev.compat, event_id, status=RUNNING)
    wait_until(lambda: bool(dev.compat.get_run(run["run_id"])["steps"]))
    code, out, _ = cli(capsys, "runs", "cancel", run["run_id"])
    assert code == 0 and out.strip() == f"run {run['run_id']} is cancelled"
    code, out, _ = cli(capsys, "runs", "show", run["run_id"], "--json")
    shown = json.loads(out)
    assert shown["status"] == CANCELLED
    assert [s["status"] for s in shown["steps"]] == [CANCELLED]
    code, out, _ = cli(capsys, "runs", "cancel", run["run_id"])  # again: nothing changes
    assert code == 0 and out.strip() == f"run {run['run_id']} is cancelled"
    done = run_of(dev.compat, send(capsys, "cli/greet", {"name": "Bo"}))
    code, out, _ = cli(capsys, "runs", "cancel", done["run_id"])
    assert code == 0 and out.strip() == f"run {done['run_id']} had already finished: Completed"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["runs", "show", "01NOSUCHRUN0000000000000000"], 1, "not found"),
        (["runs", "cancel", "01NOSUCHRUN0000000000000000"], 1, "not found"),
        (["send", "cli/greet", "--data", "[1, 2]"], 2, "--data must be a JSON object"),
        (["send", "cli/greet", "--data", "{nope"], 2, "--data is not valid JSON"),
        (["runs", "list", "--status", "Done"], 2, "invalid choice"),
        (["runs", "list", "--limit", "0"], 2, "--limit"),
        (["runs"], 2, "required"),
        (["runs", "list", "--if", "event.data =="], 1, "if"),
        (["runs", "list", "--cursor", "nope"], 1, "cursor"),
        (["runs", "list", "--url", "http://127.0.0.1:9"], 1, "cannot reach the Wayline server"),
    ],
)
def test_failures_exit_nonzero_with_the_reason_on_stderr(
    url: str, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    got, out, err = cli(capsys, *argv)
    assert got == code
    assert out == ""
    assert message in err


def test_the_signing_key_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for api in make_client(ApiConfig(signing_keys=("signkey-test-12345678",))):
        url = str(api.base_url)
        monkeypatch.delenv("WAYLINE_SIGNING_KEY", raising=False)
        monkeypatch.delenv("INNGEST_SIGNING_KEY", raising=False)
        code, _, err = cli(capsys, "runs", "list", "--url", url)
        assert code == 1 and "set WAYLINE_SIGNING_KEY" in err
        monkeypatch.setenv("INNGEST_SIGNING_KEY", "signkey-test-12345678")
        code, _, err = cli(capsys, "runs", "list", "--url", url)
        assert code == 0 and err == "no runs found\n"
