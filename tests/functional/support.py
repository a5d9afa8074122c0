"""Helpers for the functional suite: Wayline SDK apps on FastAPI, Flask and Django.

Each scenario module builds its functions with a ``wayline.Wayline`` client and serves them,
through :func:`serve`, with one framework on loopback, in front of a real ``wayline dev``
subprocess (both started by ``compat.harness``). One app and one server serve a whole module
for one framework; every test sends its own trigger event carrying a unique ``key``, so tests
never see each other's runs, and records what the app did in a shared :class:`Tally` under
that key.

Every scenario exists in two flavours served by the same app: an ``async def`` function taking
a ``wayline.Context`` (id ``<scenario>-async``, event ``fn/<scenario>.async``) and a ``def``
function taking a ``wayline.SyncContext`` (``<scenario>-sync``, ``fn/<scenario>.sync``).
Django mounts an async view for an app with any ``async def`` function, so these apps run both
flavours from its async view; test_steps.py also covers the sync view of a ``def``-only app.
"""

from __future__ import annotations

import contextlib
import sys
import types
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast

import fastapi
import flask
import pytest

import wayline
import wayline.django
import wayline.fastapi
import wayline.flask
from compat.harness import COMPLETED, RUN_TIMEOUT, Compat, JSONDict, WebApp, wait_until

Framework: TypeAlias = Literal["fastapi", "flask", "django"]
Flavor: TypeAlias = Literal["async", "sync"]
Functions: TypeAlias = list[wayline.Function[Any, Any]]
Builder: TypeAlias = Callable[[wayline.Wayline], Functions]

FRAMEWORKS: list[Framework] = ["fastapi", "flask", "django"]
FLAVORS: list[Flavor] = ["async", "sync"]

#: ``@flavors`` parametrizes a test over ``flavor`` (the framework comes from the module's app).
flavors = pytest.mark.parametrize("flavor", FLAVORS)

#: The server's fixed retry interval unless a module asks for another one.
DEFAULT_RETRY_INTERVAL = 0.5


def event_name(scenario: str, flavor: Flavor) -> str:
    """The event that triggers ``scenario`` in ``flavor``: ``fn/<scenario>.<flavor>``."""
    return f"fn/{scenario}.{flavor}"


def trigger(scenario: str, flavor: Flavor) -> wayline.TriggerEvent:
    return wayline.TriggerEvent(event=event_name(scenario, flavor))


def fn_id(scenario: str, flavor: Flavor) -> str:
    """The local id of ``scenario``'s function in ``flavor``: ``<scenario>-<flavor>``."""
    return f"{scenario}-{flavor}"


def key_of(ctx: wayline.Context | wayline.SyncContext) -> str:
    """The test key the trigger event carries."""
    return str(ctx.event.data["key"])


@dataclass(frozen=True)
class Started:
    """A trigger event sent by a test: its unique key, event id and the function it starts."""

    key: str
    event_id: str
    fn_id: str


class Dev:
    """A running app (one framework) + ``wayline dev`` pair, shared by a module's tests."""

    def __init__(self, compat: Compat, framework: Framework, client: wayline.Wayline) -> None:
        self.compat = compat
        self.framework = framework
        self.client = client

    def __repr__(self) -> str:
        return f"Dev({self.framework}, {self.compat!r})"

    def start(self, scenario: str, flavor: Flavor, **data: Any) -> Started:
        """Send ``fn/<scenario>.<flavor>`` with a fresh ``key`` (plus ``data``)."""
        key = uuid.uuid4().hex
        event_id = self.compat.send(event_name(scenario, flavor), {"key": key, **data})
        return Started(key=key, event_id=event_id, fn_id=fn_id(scenario, flavor))

    def wait(
        self,
        started: Started,
        *,
        status: str | Collection[str] | None = COMPLETED,
        timeout: float = RUN_TIMEOUT,
    ) -> JSONDict:
        """The run ``started`` started, once it has ``status`` (fails at once on another end)."""
        return self.compat.wait_run(started.event_id, started.fn_id, status=status, timeout=timeout)

    def wait_for_step(self, started: Started, step: str) -> JSONDict:
        """Wait until the run reports a step named ``step`` (e.g. a pending wait); the run."""
        return wait_for_step(self.compat, started.event_id, started.fn_id, step)


def wait_for_step(compat: Compat, event_id: str, fn_id: str, step: str) -> JSONDict:
    """Wait until the run of ``fn_id`` that ``event_id`` started reports a step named ``step``."""
    seen: list[JSONDict] = []

    def reached() -> bool:
        run = compat.current_run(event_id, fn_id)
        if run is None:
            return False
        seen[:] = [run]
        return any(s.get("name") == step for s in run.get("steps") or [])

    wait_until(reached, message=lambda: f"step {step!r} never reported; last run: {seen}")
    return seen[0]


# ----------------------------------------------------------------------------- web apps


# tests/sdk configures Django the same way: settings are process-wide, so whichever runs
# first must leave them as the other expects. Each app built here routes through its own
# urlconf (set per request), so several Django apps can be served at once.
_DJANGO_ROOT_URLCONF = "wayline_e2e_django_urls"


def _configure_django() -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    if _DJANGO_ROOT_URLCONF not in sys.modules:
        root = types.ModuleType(_DJANGO_ROOT_URLCONF)
        root.urlpatterns = []  # type: ignore[attr-defined]
        sys.modules[_DJANGO_ROOT_URLCONF] = root
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=_DJANGO_ROOT_URLCONF,
        SECRET_KEY="wayline-e2e-not-a-secret",
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )
    django.setup()


def django_wsgi_app(client: wayline.Wayline, functions: Functions) -> Any:
    """A Django WSGI app whose only URL is ``wayline.django.serve(client, functions)``."""
    _configure_django()
    from django.core.handlers.wsgi import WSGIHandler

    urlconf = types.ModuleType(f"functional_urls_{uuid.uuid4().hex}")
    urlconf.urlpatterns = [wayline.django.serve(client, functions)]  # type: ignore[attr-defined]
    handler = WSGIHandler()
    get_response = handler.get_response

    def routed(request: Any) -> Any:
        request.urlconf = urlconf  # Django resolves this request against its own urlconf
        return get_response(request)

    handler.get_response = routed
    return handler


def build_web_app(
    framework: Framework, client: wayline.Wayline, functions: Functions
) -> tuple[WebApp, list[str]]:
    """``functions`` served with ``framework``; the app and the composite ids it serves."""
    if framework == "fastapi":
        fastapi_app = fastapi.FastAPI()
        return fastapi_app, wayline.fastapi.serve(fastapi_app, client, functions).function_ids
    if framework == "flask":
        flask_app = flask.Flask(f"functional-{client.app_id}")
        return flask_app, wayline.flask.serve(flask_app, client, functions).function_ids
    ids = [h.fn_id for fn in functions for h in fn.handlers()]
    # The harness serves any WSGI callable with werkzeug; its annotation names Flask only.
    return cast(flask.Flask, django_wsgi_app(client, functions)), ids


@contextlib.contextmanager
def serve(
    framework: Framework,
    build: Builder,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    app_id: str,
    retry_interval: float = DEFAULT_RETRY_INTERVAL,
) -> Iterator[Dev]:
    """Serve ``build(client)`` with ``framework`` against a fresh ``wayline dev``."""
    compat = Compat(tmp_path_factory.mktemp(f"{app_id}-{framework}"))
    client = wayline.Wayline(app_id=app_id, is_dev=True, base_url=compat.server_url)
    try:
        web_app, ids = build_web_app(framework, client, build(client))
        compat.serve_app(web_app, app_id=app_id, function_ids=ids, retry_interval=retry_interval)
        yield Dev(compat, framework, client)
    finally:
        try:
            compat.close()
        finally:
            client.close()
