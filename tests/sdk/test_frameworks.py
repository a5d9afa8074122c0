"""Smoke tests: the Flask and Django adapters against a real ``wayline dev``.

Each serves one ``def`` and one ``async def`` function (two steps each) and runs both to
completion. Flask serves from a sync view (async functions get their own event loop);
Django serves from an async view under WSGI (sync functions run in a worker thread).
"""

from __future__ import annotations

import sys
import threading
import types
import uuid
from typing import Any, cast

import flask
import pytest

import wayline
import wayline.django
import wayline.flask
from compat.harness import COMPLETED, Compat

pytestmark = pytest.mark.timeout(60)


def _functions(client: wayline.Wayline, counts: dict[str, int]) -> list[wayline.Function[Any, Any]]:
    lock = threading.Lock()

    def incr(name: str) -> int:
        with lock:
            counts[name] = counts.get(name, 0) + 1
            return counts[name]

    @client.function(id="sync-two", trigger=wayline.TriggerEvent(event="fw/sync"), retries=0)
    def sync_two(ctx: wayline.SyncContext) -> list[int]:
        return [ctx.step.run("a", incr, "sync-a"), ctx.step.run("b", incr, "sync-b")]

    @client.function(id="async-two", trigger=wayline.TriggerEvent(event="fw/async"), retries=0)
    async def async_two(ctx: wayline.Context) -> list[int]:
        a = await ctx.step.run("a", incr, "async-a")
        b = await ctx.step.run("b", incr, "async-b")
        return [a, b]

    return [sync_two, async_two]


def _run_both(compat: Compat, counts: dict[str, int]) -> None:
    for name, fn_id in (("fw/sync", "sync-two"), ("fw/async", "async-two")):
        event_id = compat.send(name, {"key": uuid.uuid4().hex})
        run = compat.wait_run(event_id, fn_id, status=COMPLETED)
        assert run["output"] == [1, 1]
    assert counts == {"sync-a": 1, "sync-b": 1, "async-a": 1, "async-b": 1}


def test_flask(compat: Compat) -> None:
    client = wayline.Wayline(app_id="fw-flask", is_dev=True, base_url=compat.server_url)
    counts: dict[str, int] = {}
    app = flask.Flask("wayline-e2e")
    handler = wayline.flask.serve(app, client, _functions(client, counts))
    compat.serve_app(app, app_id="fw-flask", function_ids=handler.function_ids)
    _run_both(compat, counts)


def _django_wsgi_app(urlpatterns: list[Any]) -> Any:
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.urls import clear_url_caches

    urls = types.ModuleType("wayline_e2e_django_urls")
    urls.urlpatterns = urlpatterns  # type: ignore[attr-defined]
    sys.modules[urls.__name__] = urls
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            ALLOWED_HOSTS=["127.0.0.1", "localhost"],
            ROOT_URLCONF=urls.__name__,
            SECRET_KEY="wayline-e2e-not-a-secret",
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
        )
        django.setup()
    clear_url_caches()
    return WSGIHandler()


def test_django(compat: Compat) -> None:
    client = wayline.Wayline(app_id="fw-django", is_dev=True, base_url=compat.server_url)
    counts: dict[str, int] = {}
    functions = _functions(client, counts)
    app = _django_wsgi_app([wayline.django.serve(client, functions)])
    ids = [h.fn_id for fn in functions for h in fn.handlers()]
    # The harness serves any WSGI callable with werkzeug; its annotation names Flask only.
    compat.serve_app(cast(flask.Flask, app), app_id="fw-django", function_ids=ids)
    _run_both(compat, counts)
