"""Dev server log lines name the run, function and step they are about."""

from __future__ import annotations

import logging
import sys

from wayline.devserver.invoker import call_context
from wayline.devserver.logs import ContextFormatter
from wayline.engine import lifecycle
from wayline.engine.model import FunctionDef, Trigger, WorkItem, WorkKind
from wayline.engine.protocol import build_request
from wayline.engine.service import PreparedCall

FN = FunctionDef("app-fn", "app", "fn", "http://127.0.0.1:1/api", (Trigger(event="e"),), 0)


def prepared(step_id: str | None) -> PreparedCall:
    run = lifecycle.start_run(
        run_id="run1", fn=FN, events=[{"name": "e", "data": {}}], event_ids=["ev1"], now=0
    ).run
    item = WorkItem("1", run.id, WorkKind.CALL, 0, step_id=step_id)
    return PreparedCall(
        url=FN.url,
        body=build_request(run, FN, item, disable_immediate_execution=False),
        run=run,
        fn=FN,
    )


def test_a_call_names_its_run_function_and_step() -> None:
    assert call_context(prepared("abc123")) == {
        "run_id": "run1",
        "function_id": "app-fn",
        "step_id": "abc123",
    }
    assert call_context(prepared(None))["step_id"] is None  # discovery: no step yet


def test_the_formatter_appends_the_context_and_keeps_tracebacks_below() -> None:
    formatter = ContextFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "run %s", ("started",), None)
    record.run_id, record.function_id, record.step_id = "r1", "app-fn", None
    assert formatter.format(record) == "INFO run started [run_id=r1 function_id=app-fn]"
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    lines = formatter.format(record).splitlines()
    assert lines[0] == "INFO run started [run_id=r1 function_id=app-fn]"
    assert lines[-1] == "ValueError: boom"
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "listening", (), None)
    assert formatter.format(plain) == "INFO listening"
