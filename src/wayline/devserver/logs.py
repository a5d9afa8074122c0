"""Log lines of ``wayline dev``: the run, function and step each line is about.

Wayline's modules pass what a line concerns as ``extra`` (``run_id``, ``function_id``,
``step_id``...): structured fields, which the AWS handlers' JSON logger prints as keys.
The plain-text formatter of the dev server appends them as ``key=value`` so a terminal
shows them too.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

CONTEXT_FIELDS = ("run_id", "function_id", "step_id", "app_id", "event_id", "item_id", "attempt")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        if not context:
            return line
        head, newline, rest = line.partition("\n")  # keep tracebacks below the context
        return f"{head} [{' '.join(context)}]{newline}{rest}"


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when logging was
    configured: the CLI can run inside another program (a test, a notebook) that swaps
    stderr, and a handler holding the old stream would write to a closed file."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(level: str) -> None:
    handler = StderrHandler()
    handler.setFormatter(ContextFormatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP request made with httpx (the CLI, the sync SDK) is noise here.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
