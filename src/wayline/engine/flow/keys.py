"""Flow-control keys: which virtual queue, limit or lock an event belongs to.

A key is the function (or the env/account scope) plus the value of the option's CEL
``key`` over the triggering event. Values are hashed so that a long or odd key value
stays a short, safe storage key; the hash is stable across processes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from .. import expr
from ..model import JSON
from .config import Concurrency


def key_value(expression: str | None, event: Mapping[str, JSON], *, now_ms: int) -> str:
    """The evaluated key as canonical JSON ("" when there is no key expression).

    A key that fails to evaluate counts as ``null``: every such event shares one queue,
    rather than escaping the limit.
    """
    if not expression:
        return ""
    try:
        value = expr.evaluate(expression, event=event, now_ms=now_ms)
    except expr.ExpressionEvalError:
        value = None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def flow_key(kind: str, scope: str, value: str) -> str:
    digest = hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()[:20]
    return f"{kind}:{scope}:{digest}"


def fn_key(
    kind: str, fn_id: str, expression: str | None, event: Mapping[str, JSON], *, now_ms: int
) -> str:
    return flow_key(kind, fn_id, key_value(expression, event, now_ms=now_ms))


def concurrency_key(
    limit: Concurrency, fn_id: str, event: Mapping[str, JSON], *, now_ms: int
) -> str:
    """``fn`` scope is per function; ``env`` and ``account`` share the key across functions
    (one environment and one account in the dev server)."""
    scope = fn_id if limit.scope == "fn" else limit.scope
    return flow_key("concurrency", scope, key_value(limit.key, event, now_ms=now_ms))
