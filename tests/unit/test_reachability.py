"""An unreachable app is said once, then reminded at doubling intervals, then "back"."""

from __future__ import annotations

import errno
import logging

import aiohttp
import pytest

from wayline.devserver.reachability import FIRST_REMINDER_S, MAX_REMINDER_S, Reachability, describe

URL = "http://user:pw@127.0.0.1:3000/api/inngest?fnId=a&stepId=step"
SHOWN = "http://***@127.0.0.1:3000/api/inngest"


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_said_once_then_reminded_with_backoff_then_back(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    reach = Reachability(logging.getLogger("t.reach"), clock=clock)
    caplog.set_level(logging.DEBUG, logger="t.reach")
    for second in range(2000):  # one failed call a second for 2,000 s
        clock.now = float(second)
        reach.failed(URL, "connection refused", {"run_id": "r1"})
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud[0].getMessage() == f"cannot reach app at {SHOWN}: connection refused"
    assert loud[0].run_id == "r1"  # type: ignore[attr-defined]
    assert all("still cannot reach app" in r.getMessage() for r in loud[1:])
    # 30 s, then 60, 120, 240, 480, then every 600 s: 7 lines in 2,000 s, not 2,000.
    assert len(loud) == 7
    assert "(31 failed calls in 30 s)" in loud[1].getMessage()
    assert (FIRST_REMINDER_S, MAX_REMINDER_S) == (30, 600)
    assert reach.is_down(URL)
    caplog.clear()
    reach.reached(URL)
    (back,) = caplog.records
    expected = f"app at {SHOWN} is reachable again (after 2000 failed calls in 1999 s)"
    assert back.getMessage() == expected
    assert not reach.is_down(URL)
    reach.reached(URL)  # reachable all along: nothing to say
    assert len(caplog.records) == 1


def test_reasons_are_words_not_messages() -> None:
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
        OSError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)"),
    )
    assert describe(refused) == "connection refused"
    assert describe(TimeoutError()) == "timed out"
    assert describe(aiohttp.ServerDisconnectedError()) == "ServerDisconnectedError"
