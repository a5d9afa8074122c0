"""The dashboard's buttons for issue 9 over real loopback HTTP (no browser): rerun, redrive,
event replay, pause/resume. Each is a same-origin POST that redirects to what it made; a
refusal re-renders the page with the engine's reason and changes nothing; the read-only
dashboard (``--stack``) draws no button and refuses the routes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from wayline.api.dashboard import DashboardConfig
from wayline.api.rest import ApiConfig, create_app
from wayline.engine.events import EventInput
from wayline.engine.model import Run, RunStatus, StepRecord, StepStatus
from wayline.engine.service import Service
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, FixedClock
from .serving import serving
from .test_dashboard import _run, _sync

FAILED_ID = "01JFAILED00000000000000000"
DONE_ID = "01JDONE000000000000000000Z"
BUTTONS = ("Redrive from failed step", ">Rerun<", "Replay", "‖ Pause", "▶ Resume")


@pytest.fixture
def service() -> Iterator[Service]:
    sqlite = SqliteStore(":memory:")
    yield Service(sqlite.store(), FixedClock(), CountingEntropy())
    sqlite.close()


def _client(service: Service, *, read_only: bool = False) -> Iterator[httpx.Client]:
    app = create_app(
        service, ApiConfig(), dashboard=DashboardConfig(probe_apps=False, read_only=read_only)
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        client.headers["origin"] = url.rstrip("/")
        yield client


@pytest.fixture
def http(service: Service) -> Iterator[httpx.Client]:
    yield from _client(service)


@pytest.fixture
def read_only(service: Service) -> Iterator[httpx.Client]:
    yield from _client(service, read_only=True)


def _failed_run(service: Service) -> Run:
    _sync(service)
    now = service.now()
    step = StepRecord(
        id="a" * 40,
        name="load-order",
        op="StepRun",
        status=StepStatus.COMPLETED,
        started_at=now - 4000,
        ended_at=now - 3900,
        output={"order": 17},
    )
    return _run(
        service,
        FAILED_ID,
        RunStatus.FAILED,
        output={"name": "Error", "message": "card declined"},
        steps=(step,),
        stack=(step.id,),
        memos={step.id: {"data": {"order": 17}}},
    )


def test_a_failed_run_offers_redrive_and_rerun_a_live_one_neither(
    service: Service,
    http: httpx.Client,
) -> None:
    _failed_run(service)
    _run(service, "01JLIVE000000000000000000Z", RunStatus.RUNNING)
    _run(service, DONE_ID, RunStatus.COMPLETED)
    failed = http.get(f"/runs/{FAILED_ID}").text
    assert "Redrive from failed step" in failed and ">Rerun<" in failed
    done = http.get(f"/runs/{DONE_ID}").text
    assert ">Rerun<" in done and "Redrive from failed step" not in done
    live = http.get("/runs/01JLIVE000000000000000000Z").text
    assert "Cancel run" in live and ">Rerun<" not in live and "Redrive" not in live


def test_redrive_goes_to_the_new_run_which_links_back_and_is_listed(
    service: Service,
    http: httpx.Client,
) -> None:
    _failed_run(service)
    made = http.post(f"/runs/{FAILED_ID}/redrive", follow_redirects=False)
    assert made.status_code == 303
    new_id = made.headers["location"].removeprefix("/runs/")
    new = service.store.runs.get_run(new_id)
    assert new is not None and new.rerun_of == FAILED_ID and "a" * 40 in new.seeds
    page = http.get(made.headers["location"]).text
    assert "Redrive of" in page and f'href="/runs/{FAILED_ID}" data-testid="rerun-of"' in page
    assert "Saved results not reached yet" in page and "load-order" in page
    old = http.get(f"/runs/{FAILED_ID}").text
    assert 'data-testid="reruns"' in old and new_id in old
    assert "redrive from the failed step" in old


def test_a_refused_action_says_why_and_changes_nothing(
    service: Service,
    http: httpx.Client,
) -> None:
    _sync(service)
    _run(service, DONE_ID, RunStatus.COMPLETED)
    refused = http.post(f"/runs/{DONE_ID}/redrive", follow_redirects=False)
    assert refused.status_code == 409
    assert 'data-testid="action-error"' in refused.text
    assert (
        f"only a Failed run can be redriven from its failed step; run {DONE_ID} is Completed"
        in (refused.text)
    )
    assert f'data-poll="/runs/{DONE_ID}?fragment=body"' not in refused.text  # finished: no poll
    [only] = service.store.runs.list_runs()
    assert only.id == DONE_ID and only.reruns == ()
    missing = http.post("/runs/01JNOSUCHRUN/rerun", follow_redirects=False)
    assert missing.status_code == 404 and "No run 01JNOSUCHRUN" in missing.text
    unknown = http.post("/functions/shop-nope/pause", follow_redirects=False)
    assert unknown.status_code == 404 and "function &#39;shop-nope&#39; not found" in unknown.text


def test_replay_an_event_goes_to_the_new_event(
    service: Service,
    http: httpx.Client,
) -> None:
    _sync(service)
    [event_id] = service.send_events(
        [EventInput(name="shop/greet", data={"u": 1}, user={}, id=None, ts=None, v=None)]
    )
    assert "Replay" in http.get("/events").text
    assert "Replay event" in http.get(f"/events/{event_id}").text
    made = http.post(f"/events/{event_id}/replay", follow_redirects=False)
    assert made.status_code == 303
    new_id = made.headers["location"].removeprefix("/events/")
    assert new_id != event_id
    page = http.get(made.headers["location"]).text
    assert f'href="/events/{event_id}" data-testid="replay-of"' in page
    new = service.store.events.get_event(new_id)
    assert new is not None and new.replay_of == event_id and dict(new.data) == {"u": 1}
    missing = http.post("/events/01JNOPE/replay", follow_redirects=False)
    assert missing.status_code == 404


def test_pause_and_resume_show_on_the_functions_page(
    service: Service,
    http: httpx.Client,
) -> None:
    _sync(service)
    assert "‖ Pause" in http.get("/functions").text
    paused = http.post("/functions/shop-greet/pause", follow_redirects=False)
    assert paused.status_code == 303 and paused.headers["location"] == "/functions#fn-shop-greet"
    assert service.pauses.paused_since("shop-greet", now=service.now()) is not None
    page = http.get("/functions").text
    assert 'data-testid="paused-badge"' in page and "▶ Resume" in page and "1 paused" in page
    live = _run(service, "01JLIVE000000000000000000Z", RunStatus.RUNNING)
    assert "shop-greet is paused" in http.get(f"/runs/{live.id}").text
    resumed = http.post("/functions/shop-greet/resume", follow_redirects=False)
    assert resumed.status_code == 303
    assert service.pauses.paused_since("shop-greet", now=service.now()) is None
    assert 'data-testid="paused-badge"' not in http.get("/functions").text


def test_actions_refuse_other_origins(service: Service, http: httpx.Client) -> None:
    _failed_run(service)
    for path in (
        f"/runs/{FAILED_ID}/redrive",
        f"/runs/{FAILED_ID}/rerun",
        "/functions/shop-greet/pause",
    ):
        cross = http.post(path, headers={"origin": "https://evil.example"})
        assert cross.status_code == 403, path
    assert [r.id for r in service.store.runs.list_runs()] == [FAILED_ID]
    assert service.pauses.paused_since("shop-greet", now=service.now()) is None


def test_the_read_only_dashboard_has_no_action_buttons(
    service: Service,
    read_only: httpx.Client,
) -> None:
    _failed_run(service)
    service.pauses.set("shop-greet", paused=True, now=service.now())
    [event_id] = service.send_events(
        [EventInput(name="shop/other", data={}, user={}, id=None, ts=None, v=None)]
    )
    pages = [f"/runs/{FAILED_ID}", "/events", f"/events/{event_id}", "/functions"]
    for path in pages:
        text = read_only.get(path).text
        assert not [b for b in BUTTONS if b in text], path
        assert 'method="post"' not in text, path
    assert 'data-testid="paused-badge"' in read_only.get("/functions").text  # state still shown
    for path in (f"/runs/{FAILED_ID}/redrive", f"/events/{event_id}/replay"):
        assert read_only.post(path).status_code == 405
    assert [r.id for r in service.store.runs.list_runs()] == [FAILED_ID]
