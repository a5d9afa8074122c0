"""Validation of ``POST /fn/register`` payloads into an ``App`` and its ``FunctionDef``s.

Both official SDKs are accepted as they really serialize (``appName`` or ``appname``,
``steps.step.retries.attempts`` meaning *retries*, a top-level ``retries`` fallback).
Every rejection names the function and field; nothing is stored on error.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ValidationError
from . import cron, expr
from .backoff import parse_policy
from .events import check_name
from .flow.config import parse_flow
from .model import JSON, App, FunctionDef, Trigger
from .retry import DEFAULT_RETRIES, MAX_RETRIES
from .urls import check_app_url

MAX_TRIGGERS = 10
MAX_FUNCTIONS = 1000


def _err(message: str, field: str) -> ValidationError:
    return ValidationError(message, field=field)


def parse_register(body: JSON, *, now: int, allow_private: bool) -> tuple[App, list[FunctionDef]]:
    """``allow_private`` admits loopback/private app URLs (the dev server's apps live there);
    cloud metadata and link-local URLs are refused either way."""
    if not isinstance(body, Mapping):
        raise _err("register body must be a JSON object", "body")
    url = _url(body.get("url"), "url", allow_private)
    app_id = body.get("appName") or body.get("appname") or body.get("app_name")
    if not isinstance(app_id, str) or not app_id.strip():
        raise _err("appName is required", "appName")
    raw_functions = body.get("functions")
    if not isinstance(raw_functions, list) or not raw_functions:
        raise _err("functions must be a non-empty array", "functions")
    if len(raw_functions) > MAX_FUNCTIONS:
        raise _err(f"{len(raw_functions)} functions; the limit is {MAX_FUNCTIONS}", "functions")
    functions = [
        _function(raw, i, app_id, url, allow_private) for i, raw in enumerate(raw_functions)
    ]
    ids = [f.id for f in functions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise _err(f"duplicate function ids: {', '.join(duplicates)}", "functions")
    app = App(
        id=app_id,
        url=url,
        sdk=str(body.get("sdk") or ""),
        framework=str(body.get("framework") or ""),
        synced_at=now,
    )
    return app, functions


def _url(value: JSON, field: str, allow_private: bool) -> str:
    if not isinstance(value, str) or not value:
        raise _err(f"{field} is required", field)
    return check_app_url(value, field=field, allow_private=allow_private)


def _function(raw: JSON, index: int, app_id: str, app_url: str, allow_private: bool) -> FunctionDef:
    where = f"functions[{index}]"
    if not isinstance(raw, Mapping):
        raise _err(f"{where} must be an object", where)
    fn_id = raw.get("id") or raw.get("slug")
    if not isinstance(fn_id, str) or not fn_id:
        raise _err(f"{where}.id is required", f"{where}.id")
    where = f"function {fn_id!r}"
    triggers = _triggers(raw.get("triggers"), where)
    parse_flow(raw, where=where)  # every flow-control option is checked at sync
    parse_policy(raw, where=where)  # and the declared retry backoff
    step = _mapping(_mapping(raw.get("steps")).get("step"))
    runtime = _mapping(step.get("runtime"))
    url = runtime.get("url") or f"{app_url}?fnId={fn_id}&stepId=step"
    return FunctionDef(
        id=fn_id,
        app_id=app_id,
        name=str(raw.get("name") or fn_id),
        url=_url(url, f"{where}.steps.step.runtime.url", allow_private),
        triggers=triggers,
        retries=_retries(step, raw, where),
        config=dict(raw),
    )


def _mapping(value: JSON) -> Mapping[str, JSON]:
    return value if isinstance(value, Mapping) else {}


def _triggers(value: JSON, where: str) -> tuple[Trigger, ...]:
    if not isinstance(value, list) or not value:
        raise _err(f"{where}: triggers must be a non-empty array", f"{where}.triggers")
    if len(value) > MAX_TRIGGERS:
        raise _err(
            f"{where}: {len(value)} triggers; the limit is {MAX_TRIGGERS}", f"{where}.triggers"
        )
    return tuple(_trigger(t, f"{where}.triggers[{i}]") for i, t in enumerate(value))


def _trigger(raw: JSON, field: str) -> Trigger:
    if not isinstance(raw, Mapping):
        raise _err(f"{field} must be an object", field)
    event, cron_expr = raw.get("event"), raw.get("cron")
    if isinstance(cron_expr, str) and cron_expr:
        cron.parse_cron(cron_expr, field=f"{field}.cron")
        return Trigger(cron=cron_expr)
    if cron_expr is not None and not isinstance(cron_expr, str):
        raise _err(f"{field}.cron must be a string", f"{field}.cron")
    if not isinstance(event, str) or not event:
        raise _err(f"{field} needs an event name or a cron expression", field)
    check_name(event, f"{field}.event")
    expression = raw.get("expression")
    if expression is not None and not isinstance(expression, str):
        raise _err(f"{field}.expression must be a string", f"{field}.expression")
    if expression is not None and not expression.strip():
        raise _err(
            f"{field}.expression is empty; leave it out to match every {event!r} event",
            f"{field}.expression",
        )
    if expression:
        expr.validate(expression, field=f"{field}.expression")
    return Trigger(event=event, expression=expression or None)


def _retries(step: Mapping[str, JSON], raw: Mapping[str, JSON], where: str) -> int:
    value = _mapping(step.get("retries")).get("attempts")
    if value is None:
        value = raw.get("retries")
    if value is None:
        return DEFAULT_RETRIES
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise _err(
            f"{where}: retries must be an integer from 0 to {MAX_RETRIES}, got {value!r}",
            f"{where}.retries",
        )
    return value
