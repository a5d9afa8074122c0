"""Say once, loudly, that an app cannot be reached; then stay quiet, with reminders.

An app that is down makes every call to it fail: each retry of each run, each sync
attempt (once a second). Logging each failure buries the one line that matters, so the
first failure is a WARNING ``cannot reach app at URL: <reason>``, later failures are
DEBUG, a reminder with the count follows after 30 s, 60 s, 120 s... (at most every 10
minutes), and the first success after an outage says the app is back. Each run keeps
its own failures, with the next retry time, in its record (``Run.call_failures`` and the
step history), where the dashboard and ``wayline runs show`` read them.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..engine.protocol import redact_url

FIRST_REMINDER_S = 30.0
MAX_REMINDER_S = 600.0


@dataclass
class _Outage:
    since: float
    failures: int
    next_reminder: float
    interval: float


class Reachability:
    def __init__(self, log: logging.Logger, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._clock = clock
        self._down: dict[str, _Outage] = {}

    def failed(self, url: str, reason: str, extra: Mapping[str, object] | None = None) -> None:
        """A call to the app at ``url`` got no answer (``reason`` says why)."""
        where, now = redact_url(url), self._clock()
        fields = dict(extra or {})
        outage = self._down.get(where)
        if outage is None:
            self._down[where] = _Outage(now, 1, now + FIRST_REMINDER_S, FIRST_REMINDER_S)
            self._log.warning("cannot reach app at %s: %s", where, reason, extra=fields)
            return
        outage.failures += 1
        if now < outage.next_reminder:
            self._log.debug("cannot reach app at %s: %s", where, reason, extra=fields)
            return
        outage.interval = min(outage.interval * 2, MAX_REMINDER_S)
        outage.next_reminder = now + outage.interval
        self._log.warning(
            "still cannot reach app at %s: %s (%d failed calls in %.0f s)",
            where,
            reason,
            outage.failures,
            now - outage.since,
            extra=fields,
        )

    def reached(self, url: str) -> None:
        """A call to the app at ``url`` was answered."""
        if not self._down:  # every call says this: no URL to redact when no app is down
            return
        outage = self._down.pop(redact_url(url), None)
        if outage is not None:
            self._log.info(
                "app at %s is reachable again (after %d failed calls in %.0f s)",
                redact_url(url),
                outage.failures,
                self._clock() - outage.since,
            )

    def is_down(self, url: str) -> bool:
        return redact_url(url) in self._down


def describe(exc: BaseException) -> str:
    """Why a call got no answer, in words (``connection refused``, ``timed out``...).

    Built from the error's kind and errno, not its message, which may quote the URL.
    """
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return "timed out"
    os_error = getattr(exc, "os_error", None)
    code = getattr(os_error, "errno", None) or getattr(exc, "errno", None)
    if code == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(code, int) and code > 0:
        return f"{type(exc).__name__} ({errno.errorcode.get(code, code)})"
    if "ConnectorDNSError" in type(exc).__name__ or "gaierror" in repr(os_error):
        return "host name not found"
    return type(exc).__name__
