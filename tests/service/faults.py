"""Fault injection for the service's store: every port call can fail or "crash".

``FaultyStore`` wraps each port of a real store (SQLite or DynamoDB on moto). Before a
call, or after a write call took effect, a seeded schedule may raise:

* ``StoreError`` - the write failed (before) or succeeded but reported an error (after:
  an ambiguous write, as DynamoDB's 500 after commit);
* ``Crash`` - the process died there. It is a ``BaseException`` so that no handler in the
  code under test can swallow it, exactly as nothing runs after a ``kill -9``.

Either way the driver loses what it was doing and the work item is delivered again when
its lease expires; nothing else is rolled back, because nothing else would be.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from wayline.engine.ports import Store
from wayline.errors import StoreError

WRITES = frozenset(
    {
        "put_events",
        "put_app",
        "create_run",
        "save_run",
        "ack_outbox",
        "claim",
        "enqueue",
        "ack",
        "defer",
        "add_wait",
        "take_wait",
        "acquire",
        "release",
        "put",
        "delete",
        "wake",
        "park",
        "unpark",
        "take_oldest",
    }
)
PORTS = ("events", "apps", "runs", "queue", "waits", "idempotency", "leases", "counters", "parked")


class Crash(BaseException):
    """The process died at this point."""


@dataclass
class FaultPlan:
    """Which calls fail: the ``targeted`` ones, and each call with probability ``rate``
    until ``budget`` runs out."""

    rng: random.Random = field(default_factory=random.Random)
    rate: float = 0.0
    budget: int = 0
    enabled: bool = True
    injected: list[str] = field(default_factory=list)
    targeted: list[tuple[str, bool, bool]] = field(default_factory=list)
    """(where, after the write?, crash?) faults to inject once each, at their next call."""

    def fail_next(self, where: str, *, after: bool = False, crash: bool = True) -> None:
        """Fail the next call of ``where`` (``"runs.save_run"``): before it, or after it
        took effect; as a crash or as a reported error."""
        self.targeted.append((where, after, crash))

    def maybe_fail(self, where: str, *, applied: bool) -> None:
        for target in self.targeted:
            if target[:2] == (where, applied):
                self.targeted.remove(target)
                self._fail(where, applied=applied, crash=target[2])
        if not self.enabled or self.budget <= 0 or self.rng.random() >= self.rate:
            return
        self.budget -= 1
        self._fail(where, applied=applied, crash=self.rng.random() < 0.5)

    def _fail(self, where: str, *, applied: bool, crash: bool) -> None:
        self.injected.append(
            f"{'crash' if crash else 'error'} {'after' if applied else 'before'} {where}"
        )
        if crash:
            raise Crash(where)
        raise StoreError(f"injected: {where} {'reported an error' if applied else 'failed'}")


class _FaultyPort:
    def __init__(self, name: str, inner: Any, plan: FaultPlan) -> None:
        self._name, self._inner, self._plan = name, inner, plan

    def __getattr__(self, method: str) -> Callable[..., Any]:
        target = getattr(self._inner, method)
        where = f"{self._name}.{method}"
        plan = self._plan

        def call(*args: Any, **kwargs: Any) -> Any:
            plan.maybe_fail(where, applied=False)
            result = target(*args, **kwargs)
            if method in WRITES:
                plan.maybe_fail(where, applied=True)
            return result

        return call


def faulty(store: Store, plan: FaultPlan) -> Store:
    """``store`` with every port call subject to ``plan``."""
    ports = {name: _FaultyPort(name, getattr(store, name), plan) for name in PORTS}
    return replace(store, **ports)
