"""Api: the Inngest-compatible HTTP API on a Lambda Function URL.

``POST /e/{key}`` (event key), ``POST /fn/register`` and ``PUT /v1/apps/sync`` (signing
key), and the REST API: the dev server's routes and validation, served through an ASGI
adapter (``wayline.aws.api``, ``wayline.aws.function_url``). The app is rebuilt only when
the keys read from SSM change (a rotation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from wayline.aws.api import create_api
from wayline.aws.function_url import FunctionUrlAdapter
from wayline.aws.observability import NAMESPACE, SERVICE

from ._shared import LambdaHandler, Runtime, logger, runtime_from_env, tracer


def make_handler(get_runtime: Callable[[], Runtime]) -> LambdaHandler:
    apps: dict[tuple[tuple[str, ...], tuple[str, ...]], FunctionUrlAdapter] = {}

    def app_for(runtime: Runtime) -> FunctionUrlAdapter:
        keys = (runtime.signing_keys(), runtime.event_keys())
        if keys not in apps:
            apps.clear()
            apps[keys] = FunctionUrlAdapter(
                create_api(
                    runtime.service,
                    bus=runtime.bus,
                    clock=runtime.clock,
                    entropy=runtime.deps.entropy,
                    signing_keys=keys[0],
                    event_keys=keys[1],
                    allow_private_apps=runtime.settings.allow_private_app_urls,
                    realtime=runtime.realtime,
                )
            )
        return apps[keys]

    # No per-request EMF counter: Lambda's own ``Invocations`` metric of this function
    # counts requests for free, while an EMF line per request (one per checkpoint) is
    # billed as log bytes. Only a 5xx answer prints one (``ApiErrors``).
    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)  # responses carry user data
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        response = app_for(get_runtime())(event)
        if response["statusCode"] >= 500:
            _count_error()
        return response

    typed: LambdaHandler = handler  # Powertools' decorators return Any
    return typed


def _count_error() -> None:
    with single_metric(
        name="ApiErrors",
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ):
        pass


handler = make_handler(runtime_from_env)
