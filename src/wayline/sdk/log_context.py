"""The logging-context middleware: run id, function id and step id on every log record.

While a function (or one of its step bodies) runs, every log record that passes through a
:class:`ContextFilter` carries ``wayline_run_id``, ``wayline_function_id``,
``wayline_step_id`` (None outside a step body) and ``wayline_attempt``, so a format string
such as ``"%(wayline_run_id)s %(message)s"`` or a JSON formatter shows where a line came
from. The values live in contextvars: concurrent runs on threads or asyncio tasks never see
each other's ids.

Example::

    handler = logging.StreamHandler()
    handler.addFilter(wayline.middleware.ContextFilter())
    client = wayline.Wayline(app_id="shop", middleware=[wayline.middleware.LoggingContext()])
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from .execution import CallResult
from .middleware import CallInfo, Middleware, StepInfo


@dataclass(frozen=True, slots=True)
class _Ids:
    run_id: str
    function_id: str
    attempt: int
    step_id: str | None = None


_CURRENT: contextvars.ContextVar[_Ids | None] = contextvars.ContextVar(
    "wayline_log_context", default=None
)

FIELDS = ("wayline_run_id", "wayline_function_id", "wayline_step_id", "wayline_attempt")


class ContextFilter(logging.Filter):
    """Adds the current run's ids to each record (None outside a run); never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _CURRENT.get()
        record.wayline_run_id = ids.run_id if ids else None
        record.wayline_function_id = ids.function_id if ids else None
        record.wayline_step_id = ids.step_id if ids else None
        record.wayline_attempt = ids.attempt if ids else None
        return True


class LoggingContext(Middleware):
    """Puts the run id, function id, step id and attempt in log records (see module doc).

    Args:
        loggers: Loggers to add a :class:`ContextFilter` to (default: the SDK's ``wayline``
            logger, which ``ctx.logger`` logs to). A logger's filters see only records
            logged on it; to cover every logger, add a ``ContextFilter`` to your handlers.
    """

    def __init__(self, loggers: Iterable[logging.Logger | str] = ("wayline",)) -> None:
        self._filter = ContextFilter()
        for item in loggers:
            logger = logging.getLogger(item) if isinstance(item, str) else item
            if not any(isinstance(f, ContextFilter) for f in logger.filters):
                logger.addFilter(self._filter)

    def before_function(self, call: CallInfo) -> None:
        _CURRENT.set(_Ids(call.run_id, call.fn_id, call.attempt))

    def before_step(self, call: CallInfo, step: StepInfo) -> None:
        _CURRENT.set(_Ids(call.run_id, call.fn_id, call.attempt, step.step_id))

    def after_step(self, call: CallInfo, step: StepInfo, error: Exception | None) -> None:
        _CURRENT.set(_Ids(call.run_id, call.fn_id, call.attempt))

    def after_function(self, call: CallInfo, result: CallResult) -> None:
        _CURRENT.set(None)


def current_ids() -> dict[str, object]:
    """The ids a record would get now (for structured loggers that skip ``logging``)."""
    record = logging.LogRecord("wayline", logging.INFO, "", 0, "", None, None)
    ContextFilter().filter(record)
    return {name: getattr(record, name) for name in FIELDS}
