"""The dashboard's pages over real loopback HTTP (no browser): content is server-rendered,
bad input is a 4xx that says what is wrong and stores nothing, actions need our own
origin, pages answer only to loopback names and never contain a key."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import httpx
import pytest

from wayline.api.dashboard import DashboardConfig
from wayline.api.rest import ApiConfig, create_app
from wayline.engine.model import (
    App,
    Attempt,
    FunctionDef,
    Run,
    RunStatus,
    StepRecord,
    StepStatus,
    Trigger,
)
from wayline.engine.service import Service
from wayline.store.sqlite import SqliteStore

from .conftest import CountingEntropy, FixedClock
from .serving import serving

SIGNING_KEY = "signkey-test-0123456789abcdef"
EVENT_KEY = "event-key-secret-42"


@pytest.fixture
def service() -> Iterator[Service]:
    sqlite = SqliteStore(":memory:")
    yield Service(sqlite.store(), FixedClock(), CountingEntropy())
    sqlite.close()


@pytest.fixture
def http(service: Service) -> Iterator[httpx.Client]:
    app = create_app(
        service,
        ApiConfig(signing_keys=(SIGNING_KEY,), event_keys=(EVENT_KEY,)),
        dashboard=DashboardConfig(probe_apps=False),
    )
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _sync(service: Service) -> None:
    fn = FunctionDef(
        id="shop-greet",
        app_id="shop",
        name="Greet",
        url="http://user:pw@127.0.0.1:9/api/inngest",
        triggers=(Trigger(event="shop/greet"),),
        retries=0,
    )
    service.sync_app(App(id="shop", url=fn.url, sdk="py:v0.5"), [fn])


def _run(service: Service, run_id: str, status: RunStatus, **extra: object) -> Run:
    now = service.now()
    created_at = extra.pop("created_at", now - 5000)
    run = Run(
        id=run_id,
        function_id="shop-greet",
        app_id="shop",
        status=status,
        events=({"name": "shop/greet", "data": {"user": "<script>x</script>"}, "id": "e"},),
        event_ids=("e",),
        created_at=created_at,  # type: ignore[arg-type]
        ended_at=now - 1000 if status.is_terminal else None,
        **extra,  # type: ignore[arg-type]
    )
    assert service.store.runs.create_run(run)
    return run


def test_pages_render_their_content_server_side(service: Service, http: httpx.Client) -> None:
    _sync(service)
    failed = _run(
        service,
        "01JFAILED00000000000000000",
        RunStatus.FAILED,
        output={"name": "ValueError", "message": "boom", "stack": "Traceback: line 7"},
    )
    _run(service, "01JDONE000000000000000000Z", RunStatus.COMPLETED)
    home = http.get("/")
    assert home.status_code == 200
    assert failed.id in home.text
    assert home.headers["content-security-policy"].startswith("default-src 'self'")

    only_failed = http.get("/runs", params={"status": "Failed"}).text
    assert failed.id in only_failed and "01JDONE000000000000000000Z" not in only_failed

    page = http.get(f"/runs/{failed.id}").text
    assert "ValueError" in page and "Traceback: line 7" in page
    # Payloads are escaped, never rendered as markup.
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert "Cancel run" not in page  # a finished run has no Cancel button

    assert "shop-greet" in http.get("/functions").text
    apps = http.get("/apps").text
    assert "pw@" not in apps and "127.0.0.1:9/api/inngest" in apps  # URL password redacted


def test_no_page_contains_a_key(service: Service, http: httpx.Client) -> None:
    _sync(service)
    _run(service, "01JLIVE000000000000000000Z", RunStatus.RUNNING)
    for path in ("/", "/runs", "/runs/01JLIVE000000000000000000Z", "/events", "/functions"):
        text = http.get(path).text
        assert SIGNING_KEY not in text and EVENT_KEY not in text
        assert "0123456789abcdef" not in text


def test_empty_states_and_not_found(http: httpx.Client) -> None:
    assert "No runs yet — and no app synced" in http.get("/runs").text
    assert "No events yet" in http.get("/events").text
    assert "No functions yet" in http.get("/functions").text
    assert "No app synced yet" in http.get("/apps").text
    missing = http.get("/runs/01JNOPE")
    assert missing.status_code == 404 and "No run 01JNOPE" in missing.text
    filtered = http.get("/runs", params={"status": "Failed"}).text
    assert "No runs match: status = Failed" in filtered


def test_a_bad_filter_is_a_400_naming_the_parameter(http: httpx.Client) -> None:
    res = http.get("/runs", params={"status": "Exploded"})
    assert res.status_code == 400
    assert "status &#39;Exploded&#39; is not a run status" in res.text
    bad_if = http.get("/runs", params={"if": "event.data.x =="})
    assert bad_if.status_code == 400 and "if" in bad_if.text
    bad_last = http.get("/runs", params={"last": "3y"})
    assert bad_last.status_code == 400 and "last must be one of 15m, 1h, 24h, 7d" in bad_last.text


def test_runs_list_uses_the_search_api_filters_and_pages(
    service: Service, http: httpx.Client
) -> None:
    _sync(service)
    for i in range(55):
        _run(service, f"01JRUN{i:020d}", RunStatus.COMPLETED, created_at=service.now() - i)
    first = http.get("/runs")
    assert first.text.count('data-testid="run-row"') == 50
    older = re.search(r'href="(/runs\?cursor=[^"]+)" data-testid="older"', first.text)
    assert older is not None
    second = http.get(older.group(1).replace("&amp;", "&"))
    assert second.text.count('data-testid="run-row"') == 5
    assert 'data-poll="' not in second.text.split("run-rows")[1][:80]  # no live swap on page 2
    matched = http.get("/runs", params={"if": 'event.data.user == "nobody"'})
    assert matched.status_code == 200
    assert "Scanned 55 runs · 0 matches" in matched.text


def test_send_event_form_shows_json_errors_inline_and_stores_nothing(
    service: Service, http: httpx.Client
) -> None:
    bad = http.post("/events", data={"name": "shop/greet", "data": '{\n  "a": 1,,\n}'})
    assert bad.status_code == 400
    assert re.search(r"Line 2, column \d+: Expecting property name", bad.text)
    assert service.store.events.list_events() == []

    not_object = http.post("/events", data={"name": "shop/greet", "data": "[1]"})
    assert not_object.status_code == 400 and "data must be a JSON object" in not_object.text
    reserved = http.post("/events", data={"name": "inngest/x", "data": "{}"})
    assert reserved.status_code == 400 and "inngest/" in reserved.text
    assert service.store.events.list_events() == []

    ok = http.post("/events", data={"name": "shop/greet", "data": '{"user": "u1"}'})
    assert ok.status_code == 303  # post/redirect/get: a reload does not send again
    shown = http.get(ok.headers["location"])
    assert shown.status_code == 200 and "Accepted" in shown.text
    [event] = service.store.events.list_events()
    assert event.name == "shop/greet" and dict(event.data) == {"user": "u1"}


def test_actions_refuse_other_origins_and_other_hosts(service: Service, http: httpx.Client) -> None:
    _sync(service)
    run = _run(service, "01JLIVE000000000000000000Z", RunStatus.RUNNING)
    cross = http.post(f"/runs/{run.id}/cancel", headers={"origin": "https://evil.example"})
    assert cross.status_code == 403
    sneaky = http.post(f"/runs/{run.id}/cancel", headers={"sec-fetch-site": "cross-site"})
    assert sneaky.status_code == 403
    got = service.store.runs.get_run(run.id)
    assert got is not None and got.status is RunStatus.RUNNING

    rebound = http.get("/runs", headers={"host": "attacker.example:8288"})
    assert rebound.status_code == 403

    own = http.post(
        f"/runs/{run.id}/cancel",
        headers={"origin": str(http.base_url).rstrip("/")},
        follow_redirects=False,
    )
    assert own.status_code == 303 and own.headers["location"] == f"/runs/{run.id}"
    got = service.store.runs.get_run(run.id)
    assert got is not None and got.status is RunStatus.CANCELLED
    page = http.get(f"/runs/{run.id}").text
    assert "cancelled from the dashboard" in page


def test_sleeping_step_shows_its_wake_time(service: Service, http: httpx.Client) -> None:
    _sync(service)
    now = service.now()
    wake = now + 3 * 86_400_000
    _run(
        service,
        "01JSLEEP00000000000000000Z",
        RunStatus.RUNNING,
        steps=(
            StepRecord(
                id="s" * 40,
                name="wait-3-days",
                op="Sleep",
                status=StepStatus.SLEEPING,
                started_at=now - 4000,
                output={"until": wake},
            ),
        ),
    )
    page = http.get("/runs/01JSLEEP00000000000000000Z").text
    assert "Sleep until" in page and "in 3 d" in page
    assert "until" in http.get("/runs").text


def test_an_app_url_that_never_synced_shows_why(service: Service) -> None:
    with socket.socket() as sock:  # a loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        dead = f"http://user:secret@127.0.0.1:{sock.getsockname()[1]}/api/inngest"
    app = create_app(service, ApiConfig(), dashboard=DashboardConfig(app_urls=(dead,)))
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        page = http.get("/apps").text
    assert "Not synced" in page
    assert "cannot reach app at http://127.0.0.1:" in page
    assert "secret" not in page


def test_a_run_page_names_the_functions_flow_control(service: Service, http: httpx.Client) -> None:
    fn = FunctionDef(
        id="shop-limited",
        app_id="shop",
        name="Limited",
        url="http://127.0.0.1:9/api/inngest",
        triggers=(Trigger(event="shop/limited"),),
        retries=0,
        config={"concurrency": [{"limit": 2, "key": "event.data.account"}]},
    )
    service.sync_app(App(id="shop", url=fn.url), [fn])
    run = Run(
        id="01JQUEUED0000000000000000Z",
        function_id=fn.id,
        app_id="shop",
        status=RunStatus.QUEUED,
        events=({"name": "shop/limited", "data": {}},),
        event_ids=("e",),
        created_at=service.now(),
    )
    assert service.store.runs.create_run(run)
    page = http.get(f"/runs/{run.id}").text
    assert "Queued — waiting to start (this function has concurrency" in page
    assert "event.data.account" in page


def test_a_run_whose_app_is_down_says_so_and_when_it_retries(
    service: Service, http: httpx.Client
) -> None:
    _sync(service)
    now = service.now()
    refused = {"name": "ConnectionRefused", "message": "cannot reach app: connection refused"}
    _run(
        service,
        "01JDOWN000000000000000000Z",
        RunStatus.RUNNING,
        call_failures=(
            Attempt(
                number=1,
                started_at=now - 3000,
                ended_at=now - 2990,
                status=StepStatus.FAILED,
                error=refused,
                retry_at=now + 12_000,
            ),
        ),
    )
    page = http.get("/runs/01JDOWN000000000000000000Z").text
    assert "Calls to the app that failed outside a step" in page
    assert "connection refused" in page and "in 12.0 s" in page
    assert 'data-kind="call"' in page  # and a row of the waterfall
    listed = http.get("/runs").text
    assert "↻ retry at" in listed and "ConnectionRefused" in listed
