"""Short, bounded, jittered retries of AWS calls that failed for a reason that passes.

botocore already retries throttling and 5xx inside one call (5 attempts within about a
second); what reaches Wayline has outlasted those. Inside a Lambda invocation there is
usually time for a few more tries over a few seconds, which is far cheaper than failing
the record (the next try is then a redelivery: seconds to minutes away). Anything that is
not transient (a rejected parameter, a missing resource, a failed condition) is raised at
once: retrying cannot fix it.

Sleep and jitter are injected so tests spend no wall time here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
)

from wayline.errors import StoreError

from .clients import error_code

__all__ = ["TRANSIENT_CODES", "Backoff", "is_transient", "visibility_backoff_s"]

T = TypeVar("T")

TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionInProgressException",
    }
)
"""AWS error codes that mean "try again shortly" (throttling and server-side faults)."""


def is_transient(exc: BaseException) -> bool:
    """True if ``exc`` (or the AWS error it was translated from) is worth a retry."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ClientError):
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return error_code(cause) in TRANSIENT_CODES or int(status) >= 500
        if isinstance(cause, (ConnectionError, ConnectTimeoutError, ReadTimeoutError)):
            return True
        if isinstance(cause, BotoCoreError):
            return False
        if not isinstance(cause, StoreError):
            return False
        cause = cause.__cause__
    return False


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries, sleeping ``random(0, min(cap, base * 2**n))`` between them (full
    jitter: concurrent retriers spread out instead of colliding again)."""

    attempts: int = 4
    base_s: float = 0.2
    cap_s: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    slept: list[float] = field(default_factory=list, compare=False)
    """Every delay slept, for tests and logs."""

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried while it raises something ``is_transient``."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except Exception as exc:
                if attempt + 1 >= self.attempts or not is_transient(exc):
                    raise
            delay = self.jitter() * min(self.cap_s, self.base_s * 2**attempt)
            self.slept.append(delay)
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


VISIBILITY_BASE_S = 2
VISIBILITY_CAP_S = 900


def visibility_backoff_s(
    receive_count: int,
    *,
    base_s: int = VISIBILITY_BASE_S,
    cap_s: int = VISIBILITY_CAP_S,
    jitter: Callable[[], float] = random.random,
) -> int:
    """How long a failed SQS record stays invisible before its next delivery: exponential in
    the delivery count (2 s, 4 s, 8 s, ...), capped at 15 minutes, with up to +50 % jitter so
    records that failed together do not all come back together."""
    exponent = max(0, min(receive_count - 1, 20))
    delay = min(cap_s, base_s * 2**exponent)
    return int(min(cap_s, delay * (1 + jitter() / 2)))
