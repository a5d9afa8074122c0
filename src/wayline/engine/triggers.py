"""Which functions an event starts: trigger names (with ``*`` wildcards) and ``if`` filters."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

from . import expr
from .model import JSON, FunctionDef, Trigger


def name_matches(pattern: str, name: str) -> bool:
    """Exact match, or a glob such as ``app/*`` (Inngest's wildcard triggers)."""
    if "*" not in pattern:
        return pattern == name
    return fnmatch.fnmatchcase(name, pattern)


def trigger_matches(trigger: Trigger, event: Mapping[str, JSON], *, now_ms: int) -> bool:
    if trigger.event is None or not name_matches(trigger.event, str(event.get("name", ""))):
        return False
    return expr.matches(trigger.expression, event=event, now_ms=now_ms)


def functions_for_event(
    functions: Iterable[FunctionDef], event: Mapping[str, JSON], *, now_ms: int
) -> list[FunctionDef]:
    """Every function with at least one trigger matching ``event`` (one run each)."""
    return [
        fn for fn in functions if any(trigger_matches(t, event, now_ms=now_ms) for t in fn.triggers)
    ]
