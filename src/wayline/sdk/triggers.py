"""What starts a function: an event (optionally typed and filtered) or a cron schedule."""

from __future__ import annotations

from typing import Any, Generic, overload

from typing_extensions import TypeVar

from wayline.errors import ConfigError

TriggerData = TypeVar("TriggerData", default=dict[str, Any])

MAX_TRIGGERS = 10


def _text(value: object) -> bool:
    """A non-blank string (checked at runtime too: callers may not be type-checked)."""
    return isinstance(value, str) and bool(value.strip())


class TriggerEvent(Generic[TriggerData]):
    """Run the function for every event named ``event`` (``*`` wildcards allowed).

    Args:
        event: The event name, e.g. ``"user/signed-up"`` or ``"billing/*"``.
        expression: An optional CEL filter on ``event``, e.g. ``"event.data.plan == 'pro'"``.
        model: An optional type for ``event.data`` (a pydantic model, dataclass or
            TypedDict). Incoming data is validated into it, and the function's context is
            typed by it: ``wayline.Context[model]``.

    Example::

        class SignedUp(pydantic.BaseModel):
            email: str

        @client.function(id="welcome", trigger=wayline.TriggerEvent(event="user/signed-up",
                                                                    model=SignedUp))
        async def welcome(ctx: wayline.Context[SignedUp]) -> None:
            print(ctx.event.data.email)
    """

    __slots__ = ("event", "expression", "model")

    event: str
    expression: str | None
    model: type[TriggerData] | None

    @overload
    def __init__(
        self: TriggerEvent[dict[str, Any]], *, event: str, expression: str | None = None
    ) -> None: ...

    @overload
    def __init__(
        self, *, event: str, expression: str | None = None, model: type[TriggerData]
    ) -> None: ...

    def __init__(
        self, *, event: str, expression: str | None = None, model: type[Any] | None = None
    ) -> None:
        if not _text(event):
            raise ConfigError("TriggerEvent needs a non-empty event name")
        self.event = event
        self.expression = expression or None
        self.model = model

    def to_config(self) -> dict[str, Any]:
        """The trigger as FunctionConfig JSON."""
        config: dict[str, Any] = {"event": self.event}
        if self.expression:
            config["expression"] = self.expression
        return config

    def __repr__(self) -> str:
        model = "" if self.model is None else f", model={self.model.__qualname__}"
        return f"TriggerEvent(event={self.event!r}, expression={self.expression!r}{model})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TriggerEvent):
            return NotImplemented
        return (self.event, self.expression, self.model) == (
            other.event,
            other.expression,
            other.model,
        )

    def __hash__(self) -> int:
        return hash((self.event, self.expression, self.model))


class TriggerCron:
    """Run the function on a cron schedule (5 fields, optional ``TZ=<IANA name>`` prefix).

    Args:
        cron: e.g. ``"0 9 * * *"`` or ``"TZ=Europe/Paris 0 9 * * *"``.
        jitter: An optional random delay up to this duration (``"30s"``), 1 s to 5 min.

    Example::

        @client.function(id="digest", trigger=wayline.TriggerCron(cron="TZ=Europe/Paris 0 9 * * *"))
        def digest(ctx: wayline.SyncContext) -> None: ...
    """

    __slots__ = ("cron", "jitter")

    def __init__(self, *, cron: str, jitter: str | None = None) -> None:
        if not _text(cron) or len(cron.split()) < 5:
            raise ConfigError(f"TriggerCron needs a cron expression with 5 fields, got {cron!r}")
        self.cron = cron
        self.jitter = jitter

    def to_config(self) -> dict[str, Any]:
        """The trigger as FunctionConfig JSON."""
        config: dict[str, Any] = {"cron": self.cron}
        if self.jitter:
            config["jitter"] = self.jitter
        return config

    def __repr__(self) -> str:
        return f"TriggerCron(cron={self.cron!r}, jitter={self.jitter!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TriggerCron):
            return NotImplemented
        return (self.cron, self.jitter) == (other.cron, other.jitter)

    def __hash__(self) -> int:
        return hash((self.cron, self.jitter))


Trigger = TriggerEvent[Any] | TriggerCron


def event_model(triggers: list[Trigger]) -> object | None:
    """The data model every event of the function is validated into, if any.

    A typed function's context promises ``event.data`` of its model for every run, so all
    its triggers must be event triggers with that same model: a cron tick or an untyped
    event could not keep the promise. (``step.invoke`` data is validated into it too.)
    """
    models = {t.model if isinstance(t, TriggerEvent) else None for t in triggers}
    if models == {None}:
        return None
    if len(models) > 1:
        names = sorted("no model" if m is None else getattr(m, "__name__", repr(m)) for m in models)
        raise ConfigError(
            "the triggers of a typed function must all be TriggerEvents with the same model, "
            f"got: {', '.join(names)}"
        )
    return next(iter(models))
