"""Signals (``step.waitForSignal``), pure part: names, the pause's key and its memo.

A signal wait is a pause of kind ``signal`` listening on the reserved event name
``inngest/signal:<name>`` (user events cannot use the ``inngest/`` prefix, so no event
can resolve it). ``POST /v1/signals`` resolves it; ``engine.signal_board`` keeps the
one-waiter-per-signal rule. Wire shapes follow the JS SDK (the Python SDK has no
signals): op ``WaitForSignal`` with ``opts: {signal, timeout, conflict?}``; the memo is
``{"data": {"signal": <name>, "data": <payload>}}``, or ``null`` on timeout.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ValidationError
from .model import JSON, Memo, StepStatus

EVENT_PREFIX = "inngest/signal:"
MAX_SIGNAL_LENGTH = 256
CONFLICT_ERROR = "SignalConflictError"


def signal_event(name: str) -> str:
    return EVENT_PREFIX + name


def check_name(value: JSON, *, field: str = "signal") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} is required and must be a non-empty string", field=field)
    if len(value) > MAX_SIGNAL_LENGTH:
        raise ValidationError(
            f"{field} is {len(value)} characters; the limit is {MAX_SIGNAL_LENGTH}", field=field
        )
    return value


def resolution(name: str, data: JSON) -> dict[str, JSON]:
    """What a sent signal resolves its wait with."""
    return {"signal": name, "data": data}


def conflict(name: str, holder_run_id: str) -> dict[str, JSON]:
    """What a second waiter's step fails with."""
    return {
        "error": {
            "name": CONFLICT_ERROR,
            "message": (
                f"signal {name!r} is already awaited by run {holder_run_id}: two runs may "
                "not wait on the same signal at once"
            ),
        }
    }


def memo(resolved: Mapping[str, JSON] | None) -> tuple[Memo, StepStatus]:
    if resolved is None:
        return None, StepStatus.COMPLETED  # timed out
    if "error" in resolved:
        return {"error": resolved["error"]}, StepStatus.FAILED
    return {"data": dict(resolved)}, StepStatus.COMPLETED
