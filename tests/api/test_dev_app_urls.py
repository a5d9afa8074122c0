"""Issue 12, defect 2: ``wayline dev -u URL`` applies the SSRF checks (private allowed,
metadata never) and no log line or error repeats a URL's credentials."""

from __future__ import annotations

import asyncio
import logging

import pytest

from wayline import cli
from wayline.devserver.discovery import discover_forever
from wayline.engine.ports import Clock


class FixedClock:
    def now_ms(self) -> int:
        return 1_800_000_000_000


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest", "cloud metadata endpoint"),
        ("http://0xA9FEA9FE/latest", "cloud metadata endpoint"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata endpoint"),
        ("http://169.254.1.1:3000/api", "link-local"),
        ("http://user:s3cret@127.0.0.1:3000/api", "must not carry credentials"),
        ("http://[::1", "not a valid URL"),
        ("http://127.0.0.1:99999/api", "Port out of range"),
    ],
)
def test_dev_refuses_unsafe_app_urls_before_starting(
    url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["dev", "--db", ":memory:", "-u", url])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "s3cret" not in err


def test_loopback_app_urls_stay_allowed_in_dev() -> None:
    assert cli._app_url("http://127.0.0.1:3000/api/inngest") == "http://127.0.0.1:3000/api/inngest"
    assert cli._app_url("http://localhost:3000/api/inngest").startswith("http://localhost")


def test_discovery_skips_refused_urls_and_redacts_every_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock: Clock = FixedClock()
    urls = [
        "http://user:s3cret@127.0.0.1:9/api?token=t0ken",
        "http://0xA9FEA9FE/latest",
        "http://127.0.0.1:9/api?token=t0ken",  # allowed, unreachable: logged, redacted
    ]

    async def run_briefly() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(discover_forever(urls, signing_key=None, clock=clock), 1.5)

    with caplog.at_level(logging.INFO, logger="wayline.discovery"):
        asyncio.run(run_briefly())
    text = caplog.text
    assert "not syncing http://***@127.0.0.1:9/api: app URL must not carry credentials" in text
    assert "not syncing http://0xA9FEA9FE/latest: app URL points at a cloud metadata" in text
    assert "cannot reach app at http://127.0.0.1:9/api: connection refused" in text
    assert "s3cret" not in text and "t0ken" not in text and "user" not in text
