"""A sync made through one process is seen by every other warm process on the same store.

Two ``Service`` objects share one store (a SQLite file, or one DynamoDB table on moto), as
the AWS api Lambda (which handles syncs) and a warm ingest Lambda do. The ingest side has
already loaded its functions; the api side then adds, changes or removes one. After the
check interval the warm side starts runs of the new function, follows the changed
trigger and starts none of the removed function.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.conftest import BACKENDS
from wayline.engine.events import validate_event
from wayline.engine.model import App, FunctionDef, Trigger
from wayline.engine.service import Service

from .sim import Entropy
from .test_windows import Clock

CHECK_MS = 1_000
APP = App(id="app", url="http://127.0.0.1:1/api")


def fn(name: str, event: str) -> FunctionDef:
    return FunctionDef(
        id=f"app-{name}",
        app_id="app",
        name=name,
        url=APP.url,
        triggers=(Trigger(event),),
        retries=0,
    )


class Pair:
    def __init__(self, backend: str, tmp: Path) -> None:
        self.opened = BACKENDS[backend](tmp)
        self.clock = Clock()
        self.api = Service(self.opened.open(), self.clock, Entropy(random.Random(1)))
        self.ingest = Service(
            self.opened.open(), self.clock, Entropy(random.Random(2)), sync_check_ms=CHECK_MS
        )

    def runs_of(self, function_id: str) -> int:
        return len(self.ingest.store.runs.list_runs(function_id=function_id))

    def send(self, name: str) -> None:
        self.ingest.send_events([validate_event({"name": name, "data": {}})])


@pytest.fixture(params=["sqlite-file", "dynamodb-moto"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    made = Pair(request.param, tmp_path)
    made.api.sync_app(APP, [fn("old", "e/old")])
    made.send("e/old")  # the ingest side is warm: it has loaded its functions
    assert made.runs_of("app-old") == 1
    yield made
    made.opened.close()


def test_a_function_synced_elsewhere_starts_runs_in_a_warm_process(pair: Pair) -> None:
    pair.api.sync_app(APP, [fn("old", "e/old"), fn("new", "e/new")])
    pair.clock.now += CHECK_MS
    pair.send("e/new")
    assert pair.runs_of("app-new") == 1


def test_a_changed_trigger_applies_in_a_warm_process(pair: Pair) -> None:
    pair.api.sync_app(APP, [fn("old", "e/renamed")])
    pair.clock.now += CHECK_MS
    pair.send("e/old")
    pair.send("e/renamed")
    assert pair.runs_of("app-old") == 2  # the first run, and one for the new trigger


def test_a_removed_function_gets_no_new_runs_in_a_warm_process(pair: Pair) -> None:
    pair.api.sync_app(APP, [fn("other", "e/other")])
    pair.clock.now += CHECK_MS
    pair.send("e/old")
    assert pair.runs_of("app-old") == 1


def test_within_the_interval_a_warm_process_reads_no_function_list(pair: Pair) -> None:
    """The cost side: between checks a warm process serves from memory."""
    calls: list[str] = []
    apps = pair.ingest.store.apps
    original = apps.list_functions

    def counting(app_id: str | None = None) -> list[FunctionDef]:
        calls.append("list")
        return original(app_id)

    apps.list_functions = counting  # type: ignore[method-assign]
    for _ in range(5):
        pair.send("e/old")
    assert calls == []
    assert pair.runs_of("app-old") == 6


def test_a_reader_during_a_reload_never_gets_the_old_list(pair: Pair) -> None:
    """The AWS dispatcher reads the cache from several threads. One reading while another
    reloads (here: from inside the reload's list read) checks for itself instead of taking
    the old list as fresh, so a just-synced function is never treated as removed."""
    pair.ingest.function("app-old")  # loaded, generation seen
    pair.api.sync_app(APP, [fn("old", "e/old"), fn("fresh", "e/fresh")])
    pair.clock.now += CHECK_MS + 1
    apps = pair.ingest.store.apps
    list_functions = apps.list_functions
    seen_meanwhile: list[FunctionDef | None] = []
    entered: list[bool] = []

    def interleaved(app_id: str | None = None) -> list[FunctionDef]:
        if not entered:  # the other reader, once, between the counter read and the list
            entered.append(True)
            seen_meanwhile.append(pair.ingest.function("app-fresh"))
        return list_functions(app_id)

    apps.list_functions = interleaved  # type: ignore[method-assign]
    try:
        assert pair.ingest.function("app-fresh") is not None
    finally:
        apps.list_functions = list_functions  # type: ignore[method-assign]
    assert seen_meanwhile[0] is not None and seen_meanwhile[0].id == "app-fresh"
