"""The run-operation subcommands of ``wayline`` against a real API on loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from wayline import cli

from .test_runops_api import register, runs_of, send


def wayline(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_cli_commands_call_the_api(
    client: httpx.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    url = ("--url", str(client.base_url))
    register(client)
    code, paused, _ = wayline(capsys, "functions", "pause", "shop", "ship", *url)
    assert code == 0 and paused["paused"] is True
    event = send(client, "shop/order.paid", {"n": 1})
    (run,) = runs_of(client, event)
    assert run["status"] == "Skipped"
    code, resumed, _ = wayline(capsys, "functions", "resume", "shop", "ship", *url)
    assert code == 0 and resumed["paused"] is False

    code, rerun, _ = wayline(capsys, "runs", "rerun", run["run_id"], *url)
    assert code == 0 and rerun["rerun_of"] == run["run_id"]
    code, _, err = wayline(capsys, "runs", "rerun", run["run_id"], "--from", "failed-step", *url)
    assert code == 1 and "409" in err and "only a Failed run" in err

    code, dry, _ = wayline(
        capsys, "runs", "replay", "--function", "shop-ship", "--status", "Skipped",
        "--since", "2020-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00Z", "--dry-run", *url,
    )  # fmt: skip
    assert code == 0 and dry["count"] == 1 and dry["run_ids"] == [run["run_id"]]

    code, replayed, _ = wayline(capsys, "events", "replay", event, *url)
    assert code == 0 and replayed["event"]["replay_of"] == event

    code, _, err = wayline(capsys, "signal", "nobody", "--data", '{"a": 1}', *url)
    assert code == 1 and "404" in err and "nobody" in err
    code, _, err = wayline(capsys, "signal", "x", "--data", "{", *url)
    assert code == 2 and "--data is not valid JSON" in err


def test_an_unreachable_api_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = wayline(capsys, "events", "replay", "e1", "--url", "http://u:pw@127.0.0.1:9")
    assert code == 1 and "cannot reach http://127.0.0.1:9" in err and "pw" not in err
