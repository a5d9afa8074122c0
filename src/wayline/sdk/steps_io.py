"""The step tools that reach outside the run: ``step.fetch`` and ``step.publish``.

Mixins of ``Steps`` and ``SyncSteps`` (``steps.py``), kept apart so each module stays one
idea: these two hand work to the server (a request it makes, a message it forwards).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from . import fetch
from .execution import StepCore
from .fetch import FetchResponse


class AsyncStepsIO:
    __slots__ = ()
    _core: StepCore

    async def fetch(
        self,
        step_id: str,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        json: object = None,
        timeout: float | timedelta | None = None,
        retry_5xx: bool = True,
    ) -> FetchResponse:
        """An HTTP request made by the server, once, memoized (the app may be down meanwhile).

        A failed request (and a 5xx answer, unless ``retry_5xx=False``) is retried with the
        function's retry policy; then the step raises ``StepError`` (``GatewayError``).
        URLs the server's SSRF rules refuse, and answers over 4 MiB, fail without retry
        (``InvalidGateway``). Any other answer is returned, whatever its status.

        Example::

            res = await ctx.step.fetch("rates", "https://api.example.com/rates",
                                       headers={"authorization": f"Bearer {token}"})
            rates = res.json()
        """
        intent = fetch.intent(
            step_id,
            url,
            method=method,
            headers=headers,
            body=body,
            json_body=json,
            timeout=timeout,
            retry_5xx=retry_5xx,
        )
        return fetch.response(self._core.replay(self._core.plan_deferred(intent), None))

    async def publish(self, step_id: str, channel: str, topic: str, data: Any) -> None:
        """Publish a realtime message as a step: memoized, so sent once even when the
        function retries or replays (Inngest's ``step.realtime.publish``). ``ctx.publish``
        is the cheaper, non-durable way (no step; sent again if a step retries).

        Example::

            await ctx.step.publish("announce-done", f"run:{ctx.run_id}", "status", {"done": True})
        """
        core = self._core
        run_id = core.middleware.call.run_id

        async def send() -> None:
            await core.hooks.publish_async(channel, topic, data, run_id)

        await self.run(step_id, send)  # type: ignore[attr-defined]


class SyncStepsIO:
    __slots__ = ()
    _core: StepCore

    def fetch(
        self,
        step_id: str,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        json: object = None,
        timeout: float | timedelta | None = None,
        retry_5xx: bool = True,
    ) -> FetchResponse:
        """A durable HTTP request made by the server. See ``Steps.fetch``.

        Example::

            res = ctx.step.fetch("rates", "https://api.example.com/rates")
        """
        intent = fetch.intent(
            step_id,
            url,
            method=method,
            headers=headers,
            body=body,
            json_body=json,
            timeout=timeout,
            retry_5xx=retry_5xx,
        )
        return fetch.response(self._core.replay(self._core.plan_deferred(intent), None))

    def publish(self, step_id: str, channel: str, topic: str, data: Any) -> None:
        """A durable realtime publish. See ``Steps.publish``.

        Example::

            ctx.step.publish("announce-done", f"run:{ctx.run_id}", "status", {"done": True})
        """
        core = self._core
        run_id = core.middleware.call.run_id

        def send() -> None:
            core.hooks.publish(channel, topic, data, run_id)

        self.run(step_id, send)  # type: ignore[attr-defined]
