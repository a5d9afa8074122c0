"""What every handler shares: Powertools (logs, EMF metrics, traces) and the runtime cache."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from wayline.aws.observability import Recorder, RunMetrics
from wayline.aws.runtime import Deps, Runtime, build_runtime

__all__ = ["LambdaHandler", "Runtime", "count", "logger", "metrics", "runtime_from_env", "tracer"]

LambdaHandler = Callable[[dict[str, Any], LambdaContext], Any]

logger = Logger(service="wayline")
metrics = Metrics(namespace="Wayline", service="wayline")
tracer = Tracer(service="wayline")
# The engine logs through stdlib loggers ("wayline.*", with run_id/function_id extras):
# their parent gets the same JSON formatter, so every line is structured.
logging.getLogger("wayline")
copy_config_to_registered_loggers(source_logger=logger, include={"wayline"})

_runtime: list[Runtime] = []


def runtime_from_env() -> Runtime:
    """The container's runtime, built from the environment on first use (cold start)."""
    if not _runtime:
        # Powertools' provider is aws_xray_sdk's recorder (typed as its base class)
        recorder = None if tracer.disabled else cast(Recorder, tracer.provider)
        _runtime.append(build_runtime(Deps(observer=RunMetrics(tracer, recorder))))
    return _runtime[0]


def count(name: str, value: float = 1) -> None:
    """Add to an EMF counter (published when the invocation ends)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
