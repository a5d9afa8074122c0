"""A durable function: its handler, triggers and options, and its FunctionConfig JSON."""

from __future__ import annotations

import inspect
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, overload

from typing_extensions import TypeVar

from . import serialize
from .context import Context, SyncContext
from .middleware import Middleware
from .options import Checkpointing, FunctionOptions
from .triggers import Trigger, event_model

FnData = TypeVar("FnData", default=dict[str, Any])
FnOut = TypeVar("FnOut", default=Any)
R = TypeVar("R")

DEFAULT_RETRIES = 4
"""The server's default when a function sets none: 4 retries, 5 attempts."""
FAILURE_EVENT = "inngest/function.failed"


def is_async_callable(fn: Callable[..., object]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


@dataclass(frozen=True, slots=True)
class Handler:
    """One callable the server can call by composite id (a function or its failure handler)."""

    fn_id: str
    fn: Callable[[Any], Any]
    is_async: bool
    model: object | None
    max_attempts: int
    middleware: tuple[Middleware, ...] = ()
    """The function's own middleware (the client's run first)."""
    checkpointing: Checkpointing | None = None
    """The function's checkpointing settings; None means the client's."""


class Function(Generic[FnData, FnOut]):
    """A function made by ``@client.function``: pass it to ``serve()``, ``step.invoke`` or
    ``wayline.testing.run``. ``FnData`` is its event data type, ``FnOut`` its result type.

    Example::

        wayline.fastapi.serve(app, client, [send_welcome])
        report = await ctx.step.invoke("report", function=build_report)  # typed as its output
    """

    def __init__(
        self,
        *,
        app_id: str,
        local_id: str,
        name: str | None,
        handler: Callable[[Any], Any],
        triggers: list[Trigger],
        options: FunctionOptions,
        on_failure: Callable[[Any], Any] | None,
        middleware: tuple[Middleware, ...] = (),
        client_middleware: tuple[Middleware, ...] = (),
        check_events: Callable[[list[Any]], list[Any]] | None = None,
        checkpointing: Checkpointing | None = None,
    ) -> None:
        self.app_id = app_id
        self.local_id = local_id
        self.id = f"{app_id}-{local_id}"
        self.name = name or local_id
        self.handler = handler
        self.triggers = triggers
        self.options = options
        self.on_failure = on_failure
        self.middleware = middleware
        self.client_middleware = client_middleware
        """The client's middleware (``serve()`` runs it first; ``wayline.testing`` too)."""
        self.check_events = check_events
        """The client's event type checks, for the test runner's ``send_event``."""
        self.checkpointing = checkpointing
        """Checkpointing settings of this function; None means the client's."""
        self.model = event_model(triggers)
        self.is_async = is_async_callable(handler)

    @property
    def on_failure_id(self) -> str | None:
        """The composite id of the failure handler, when there is one."""
        return None if self.on_failure is None else f"{self.id}-failure"

    @property
    def output_type(self) -> object | None:
        """The handler's return annotation, used to rebuild an ``invoke`` result."""
        return serialize.return_type(self.handler)

    def handlers(self) -> list[Handler]:
        retries = DEFAULT_RETRIES if self.options.retries is None else self.options.retries
        found = [
            Handler(
                self.id,
                self.handler,
                self.is_async,
                self.model,
                retries + 1,
                self.middleware,
                self.checkpointing,
            )
        ]
        if self.on_failure is not None and self.on_failure_id is not None:
            found.append(
                Handler(
                    self.on_failure_id,
                    self.on_failure,
                    is_async_callable(self.on_failure),
                    None,
                    1,
                    self.middleware,
                    self.checkpointing,
                )
            )
        return found

    def configs(self, app_url: str) -> list[dict[str, Any]]:
        """FunctionConfig JSON for this function (and its failure handler), as the official
        Python SDK's ``get_config`` produces it after ``deep_strip_none``."""
        step: dict[str, Any] = {"id": "step", "name": "step", "runtime": _runtime(app_url, self.id)}
        if self.options.retries is not None:
            step["retries"] = {"attempts": self.options.retries}
        main = {
            "id": self.id,
            "name": self.name,
            "triggers": [t.to_config() for t in self.triggers],
            "steps": {"step": step},
            **self.options.to_config(),
        }
        if self.on_failure_id is None:
            return [main]
        failure = {
            "id": self.on_failure_id,
            "name": f"{self.name} (failure)",
            "triggers": [
                {"event": FAILURE_EVENT, "expression": f"event.data.function_id == '{self.id}'"}
            ],
            "steps": {
                "step": {
                    "id": "step",
                    "name": "step",
                    "runtime": _runtime(app_url, self.on_failure_id),
                    "retries": {"attempts": 0},
                }
            },
            # The official SDK sends these two as empty lists (not stripped as nulls are).
            "cancel": [],
            "concurrency": [],
        }
        return [main, failure]

    def __repr__(self) -> str:
        return f"<wayline.Function {self.id}>"


def _runtime(app_url: str, fn_id: str) -> dict[str, str]:
    url = app_url + "?" + urllib.parse.urlencode({"fnId": fn_id, "stepId": "step"})
    return {"type": "ws" if url.startswith("wss://") else "http", "url": url}


class FunctionDecorator(Generic[FnData]):
    """Returned by ``client.function(...)``: applied to an ``async def`` taking a
    ``Context`` or a ``def`` taking a ``SyncContext``.

    Example::

        @client.function(id="nightly", trigger=wayline.TriggerCron(cron="0 3 * * *"))
        def nightly(ctx: wayline.SyncContext) -> None: ...
    """

    def __init__(self, build: Callable[[Callable[[Any], Any]], Function[Any, Any]]) -> None:
        self._build = build

    @overload
    def __call__(
        self, handler: Callable[[Context[FnData]], Awaitable[R]]
    ) -> Function[FnData, R]: ...

    @overload
    def __call__(self, handler: Callable[[SyncContext[FnData]], R]) -> Function[FnData, R]: ...

    def __call__(self, handler: Callable[[Any], Any]) -> Function[Any, Any]:
        return self._build(handler)
