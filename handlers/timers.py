"""Timers: the target of EventBridge Scheduler's recurring schedules.

* a ``cron()`` schedule made at app sync fires one cron tick; its input carries the tick's
  intended time (``<aws.scheduler.scheduled-time>``), so a retried delivery of the same
  tick starts no second run;
* the stack's sweep schedule re-enqueues work items whose wake-up was lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from wayline.aws.processing import handle_timer

from ._shared import LambdaHandler, Runtime, count, logger, metrics, runtime_from_env, tracer

METRICS = {
    "cron": "CronTicks",
    "sweep": "Sweeps",
    "sweep_incomplete": "SweepsIncomplete",
    "rejected": "TimerPayloadsRejected",
}


def make_handler(get_runtime: Callable[[], Runtime]) -> LambdaHandler:
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    @tracer.capture_lambda_handler(capture_response=False)  # responses carry user data
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
        runtime = get_runtime()
        with logger.append_context_keys(function_id=event.get("function_id")):
            done = handle_timer(
                runtime.service, event, now=runtime.clock.now_ms(), backoff=runtime.backoff
            )
        count(METRICS[done])
        return {"done": done}

    return handler


handler = make_handler(runtime_from_env)
