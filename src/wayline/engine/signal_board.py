"""Signals through the ports: who waits on a signal, and sending one (``POST /v1/signals``).

The waiter of a signal is one versioned value in the ``Counters`` port, key
``signal:<name>`` -> ``{run_id, step_id, wait_id}``, written by compare-and-set, so two runs
racing to wait on the same signal cannot both win. The loser's step fails with a
``SignalConflictError`` (as on Inngest); its function sees a ``StepError``.

A claim whose run no longer waits on that step (it timed out, was cancelled, or the
signal was sent but the claim not yet cleared) is stale: the next waiter takes it over,
so nothing has to clear claims on every way a wait can end. Costs per signal: a claim is
one read and one conditional write; a send is one read, the run's transition, one delete.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import NotFoundError, StoreError
from . import machine, signals
from .decision import Decision, Env
from .model import JSON, Run, Wait
from .ports import Store

Transition = Callable[[str, Callable[[Run, Env], Decision]], Decision | None]
_MAX_CAS_ATTEMPTS = 20
_CLAIM_SLACK_MS = 60_000


def claim_key(name: str) -> str:
    return f"signal:{name}"


class SignalBoard:
    def __init__(self, store: Store, transition: Transition) -> None:
        self._store = store
        self._transition = transition

    def claim(self, wait: Wait, *, now: int) -> bool:
        """Record ``wait`` as the signal's one waiter, or fail its step (False) if a live
        run already waits on that signal. Repeating a claim for the same wait is a no-op."""
        name = wait.event.removeprefix(signals.EVENT_PREFIX)
        key, counters = claim_key(name), self._store.counters
        holder: dict[str, JSON] = {
            "run_id": wait.run_id,
            "step_id": wait.step_id,
            "wait_id": wait.id,
        }
        ttl = max(wait.expires_at - now, 0) + _CLAIM_SLACK_MS
        for _ in range(_MAX_CAS_ATTEMPTS):
            current = counters.get(key, now=now)
            if current is not None:
                other = current.value if isinstance(current.value, Mapping) else {}
                if other.get("wait_id") == wait.id:
                    return True
                if self._still_waiting(other):
                    self._fail(wait, signals.conflict(name, str(other.get("run_id"))))
                    return False
            version = current.version if current is not None else 0
            if counters.put(key, holder, expected_version=version, now=now, ttl_ms=ttl):
                return True
        raise StoreError(f"{key}: gave up after {_MAX_CAS_ATTEMPTS} conflicting writes")

    def send(self, name: str, data: JSON, *, now: int) -> str:
        """Resolve the run waiting on ``name`` with ``data``; returns its id.

        Raises ``NotFoundError`` when no run waits on the signal (never claimed, or the
        wait already ended)."""
        key, counters = claim_key(name), self._store.counters
        current = counters.get(key, now=now)
        holder = current.value if current is not None else None
        if current is None or not isinstance(holder, Mapping):
            raise NotFoundError(f"no run is waiting for signal {name!r}")
        run_id, step_id = str(holder.get("run_id")), str(holder.get("step_id"))
        resolved = signals.resolution(name, data)

        def resolve(run: Run, env: Env) -> Decision:
            return machine.apply_wait_resolved(run, step_id=step_id, event=resolved, env=env)

        decision = self._transition(run_id, resolve)
        counters.delete(key, expected_version=current.version)
        if decision is None or not decision.changed:
            raise NotFoundError(f"no run is waiting for signal {name!r}")
        return run_id

    def _still_waiting(self, holder: Mapping[str, JSON]) -> bool:
        run = self._store.runs.get_run(str(holder.get("run_id")))
        return (
            run is not None
            and not run.status.is_terminal
            and str(holder.get("step_id")) in run.waiting
        )

    def _fail(self, wait: Wait, resolved: Mapping[str, JSON]) -> None:
        def fail(run: Run, env: Env) -> Decision:
            return machine.apply_wait_resolved(run, step_id=wait.step_id, event=resolved, env=env)

        self._transition(wait.run_id, fail)
