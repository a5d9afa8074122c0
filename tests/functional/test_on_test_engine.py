"""The functional scenarios again, on ``wayline.testing.TestEngine`` instead of a
``wayline dev`` subprocess: the same apps, the same assertions, the same results, because the
engine is the same. ``EngineDev`` stands in for ``support.Dev``: ``start`` sends the trigger,
``wait_for_step`` processes what is due without moving the clock (so a test can act while a
run waits), ``wait`` runs until idle in virtual time. Every test of a scenario module whose
only arguments are ``dev`` (and ``flavor``) runs here."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any

import pytest

import wayline
from wayline.api.views import event_view, run_view
from wayline.engine.model import Run
from wayline.testing import TestEngine

from . import (
    test_invoke,
    test_on_failure,
    test_parallel,
    test_pydantic,
    test_retries,
    test_send_event,
    test_steps,
    test_wait_for_event,
    test_wait_step_output,
)
from .support import FLAVORS, Started, event_name, fn_id

JSON = dict[str, Any]


class EngineCompat:
    """The part of ``compat.harness.Compat`` the scenarios use, on a ``TestEngine``."""

    def __init__(self, engine: TestEngine, app_id: str) -> None:
        self.engine = engine
        self.app_id = app_id

    def function_id(self, local_id: str) -> str:
        return f"{self.app_id}-{local_id}"

    def send(self, name: str, data: dict[str, object] | None = None) -> str:
        [event_id] = self.engine.send(wayline.Event(name=name, data=dict(data or {})))
        self.engine.run_until_idle(horizon_ms=0)
        return event_id

    def current_run(self, event_id: str, local_or_full: str | None = None) -> JSON | None:
        runs = [r for r in self.engine.runs_for(event_id) if self._matches(r, local_or_full)]
        return _view(runs[0]) if runs else None

    def wait_run(self, event_id: str, local_or_full: str | None = None, **_: Any) -> JSON:
        self.engine.run_until_idle()
        run = self.current_run(event_id, local_or_full)
        assert run is not None, f"event {event_id} started no run of {local_or_full}"
        return run

    def wait_run_by_id(self, run_id: str, **_: Any) -> JSON:
        self.engine.run_until_idle()
        run = self.engine.service.store.runs.get_run(run_id)
        assert run is not None, f"no run {run_id}"
        return _view(run)

    def list_events(self, name: str) -> list[JSON]:
        events = self.engine.service.store.events.list_events(name=name)
        return [dict(event_view(e)) for e in events]

    def _matches(self, run: Run, wanted: str | None) -> bool:
        return wanted is None or run.function_id in (wanted, self.function_id(wanted))


class EngineDev:
    def __init__(self, engine: TestEngine, app_id: str, client: wayline.Wayline) -> None:
        self.compat = EngineCompat(engine, app_id)
        self.engine = engine
        self.client = client
        self.framework = "test-engine"

    def start(self, scenario: str, flavor: str, **data: Any) -> Started:
        key = uuid.uuid4().hex
        event_id = self.compat.send(event_name(scenario, flavor), {"key": key, **data})  # type: ignore[arg-type]
        return Started(key=key, event_id=event_id, fn_id=fn_id(scenario, flavor))  # type: ignore[arg-type]

    def wait(
        self, started: Started, *, status: str | Collection[str] | None = "Completed", **_: Any
    ) -> JSON:
        self.engine.run_until_idle()
        run = self.compat.current_run(started.event_id, started.fn_id)
        assert run is not None, f"no run of {started.fn_id}"
        if status is not None:
            wanted = {status} if isinstance(status, str) else set(status)
            assert run["status"] in wanted, run
        return run

    def wait_for_step(self, started: Started, step: str) -> JSON:
        self.engine.run_until_idle(horizon_ms=0)
        run = self.compat.current_run(started.event_id, started.fn_id)
        assert run is not None and any(s["name"] == step for s in run["steps"]), run
        return run


def _view(run: Run) -> JSON:
    return dict(run_view(run))


MODULES = [
    test_steps,
    test_retries,
    test_parallel,
    test_pydantic,
    test_wait_step_output,
    test_wait_for_event,
    test_send_event,
    test_invoke,
    test_on_failure,
]
WALL_CLOCK = {
    "test_retry_after_error_is_honoured": "measures wall-clock seconds between two attempts",
    "test_race_mode": "relies on one branch's body sleeping in wall time (SLOW_STEP_SECONDS)",
    "test_invoke_timeout": "waits in wall time for the child to start",
    "test_sleep": "measures the wall-clock length of a sleep",
    "test_sleep_until": "measures the wall-clock length of a sleep",
    "test_client_send": "sends through the client's HTTP event API to a server",
}
"""Scenarios about real time or a real server, which a TestEngine has none of, by design."""


def _scenarios() -> list[Any]:
    cases = []
    for module in MODULES:
        for name, test in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_") or test.__module__ != module.__name__:
                continue
            params = list(inspect.signature(test).parameters)
            if params not in (["dev"], ["dev", "flavor"]) or name in WALL_CLOCK:
                continue
            flavors = FLAVORS if "flavor" in params else [None]
            for flavor in flavors:
                label = f"{module.__name__.rsplit('.', 1)[-1]}::{name}" + (
                    f"[{flavor}]" if flavor else ""
                )
                cases.append(pytest.param(module, test, flavor, id=label))
    return cases


@pytest.mark.parametrize(("module", "test", "flavor"), _scenarios())
def test_scenario_on_the_test_engine(
    module: ModuleType, test: Callable[..., None], flavor: str | None
) -> None:
    app_id = f"{module.__name__.rsplit('.', 1)[-1].removeprefix('test_')}-engine"
    client = wayline.Wayline(app_id=app_id, environ={})
    engine = TestEngine(client, module.build(client))
    try:
        dev = EngineDev(engine, app_id, client)
        test(dev, flavor) if flavor else test(dev)
    finally:
        engine.close()
