"""JSON in and out of user code: typed events, pydantic and dataclass step outputs, and clear
failures for what cannot round-trip (naming the step and the type)."""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime
from typing import Any
from typing import TypedDict as PlainTypedDict

import pydantic
import pytest
from typing_extensions import TypedDict

import wayline
import wayline.testing
from wayline.errors import SerializationError
from wayline.sdk import serialize


class SignedUp(pydantic.BaseModel):
    email: str
    age: int


@dataclasses.dataclass(frozen=True)
class Order:
    id: int
    items: list[str]


class Shipment(TypedDict):
    carrier: str
    eta: datetime


client = wayline.Wayline(app_id="ser", is_dev=True, environ={})


def make_order(order_id: int, *, items: list[str]) -> Order:
    return Order(id=order_id, items=items)


async def receipt_for(user: SignedUp) -> SignedUp:
    return user


def ship() -> Shipment:
    return {"carrier": "ups", "eta": datetime(2030, 1, 1, tzinfo=UTC)}


@client.function(id="typed", trigger=wayline.TriggerEvent(event="user/signed-up", model=SignedUp))
async def typed(ctx: wayline.Context[SignedUp]) -> dict[str, Any]:
    user: SignedUp = ctx.event.data
    order = await ctx.step.run("order", make_order, 7, items=["book"])
    echoed = await ctx.step.run("echo", receipt_for, user)
    shipment = await ctx.step.run("ship", ship)
    return {
        "user_is_model": isinstance(user, SignedUp),
        "order_is_dataclass": isinstance(order, Order),
        "echo_is_model": isinstance(echoed, SignedUp),
        "eta_is_datetime": isinstance(shipment["eta"], datetime),
        "order": order,
    }


def test_models_dataclasses_and_typed_dicts_round_trip() -> None:
    event = wayline.Event(name="user/signed-up", data=SignedUp(email="a@b.c", age=30))
    result = wayline.testing.run(typed, event)
    assert result.status == "completed", result.error
    assert result.output == {
        "user_is_model": True,
        "order_is_dataclass": True,
        "echo_is_model": True,
        "eta_is_datetime": True,
        "order": {"id": 7, "items": ["book"]},
    }
    assert result.step_calls[0].args == (7,) and result.step_calls[0].kwargs == {"items": ["book"]}


def test_event_data_that_does_not_match_the_model_fails_without_retries() -> None:
    result = wayline.testing.run(typed, wayline.Event(name="user/signed-up", data={"email": 1}))
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["code"] == "non_retriable_error"
    assert "SignedUp" in result.error["message"] and "age" in result.error["message"]
    assert result.requests == 1


@client.function(id="dataclass-event", trigger=wayline.TriggerEvent(event="o", model=Order))
def dataclass_event(ctx: wayline.SyncContext[Order]) -> int:
    return len(ctx.event.data.items)


def test_dataclass_event_model() -> None:
    event = wayline.Event(name="o", data={"id": 1, "items": ["a", "b"]})
    assert wayline.testing.run(dataclass_event, event).output == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (lambda: object(), 'step "bad" returned a object'),
        (lambda: {"when": {1, 2}, "x": float("nan")}, 'step "bad" returned a dict'),
        (lambda: float("inf"), "NaN or infinity"),
        # a model from a callable with no return annotation could not be rebuilt on replay
        (lambda: SignedUp(email="a", age=1), "SignedUp but its callable has no usable return"),
    ],
)
def test_unserializable_step_outputs_fail_clearly(body: Any, fragment: str) -> None:
    @client.function(id="bad", trigger=wayline.TriggerEvent(event="x"), retries=3)
    def bad(ctx: wayline.SyncContext) -> None:
        ctx.step.run("bad", body)

    result = wayline.testing.run(bad)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["code"] == "output_unserializable"
    assert fragment in result.error["message"]
    assert result.requests == 1  # never retried: the same code returns the same thing


def test_unserializable_function_output_names_the_function() -> None:
    @client.function(id="bad-output", trigger=wayline.TriggerEvent(event="x"))
    async def bad_output(ctx: wayline.Context) -> object:
        return object()

    result = wayline.testing.run(bad_output)
    assert result.status == "failed" and result.error is not None
    assert 'function "ser-bad-output" returned a object' in result.error["message"]


def test_a_memo_that_no_longer_matches_the_annotation_fails_the_run() -> None:
    from wayline.sdk.call import PreparedCall
    from wayline.sdk.execution import Hooks
    from wayline.sdk.protocol import CallRequest

    event = {"name": "o", "data": {"id": 1, "items": []}}
    memo = {serialize_hash("order"): {"data": {"id": "not-a-number"}}}

    @client.function(id="drift", trigger=wayline.TriggerEvent(event="o"))
    def drift(ctx: wayline.SyncContext) -> None:
        ctx.step.run("order", make_order, 1, items=[])

    request = CallRequest(event, [event], memo, "r", 0, 1, False, False)
    result = PreparedCall(drift.handlers()[0], request, None, Hooks(), client.logger).run_sync()
    assert result.status == 500 and result.no_retry
    assert "does not match its type Order" in result.body["message"]


def serialize_hash(step_id: str) -> str:
    from wayline.engine.ids import hash_step_id

    return hash_step_id(step_id)


class Legacy(PlainTypedDict):
    n: int


def legacy() -> Legacy:
    return {"n": 1}


class Opaque:
    pass


def opaque() -> Opaque:
    return Opaque()


def test_annotations_pydantic_cannot_build_count_as_untyped() -> None:
    # typing.TypedDict before 3.12 and arbitrary classes are not pydantic schemas
    assert serialize.return_type(legacy) is None
    assert serialize.return_type(opaque) is None


class Greeter:
    def __call__(self, name: str) -> SignedUp:
        return SignedUp(email=name, age=1)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (make_order, Order),
        (receipt_for, SignedUp),
        (functools.partial(make_order, 1), Order),
        (SignedUp, SignedUp),
        (Greeter(), SignedUp),
        (lambda: 1, None),
        (print, None),
    ],
)
def test_return_type(fn: Any, expected: object) -> None:
    assert serialize.return_type(fn) == expected


def test_an_unresolvable_annotation_means_untyped() -> None:
    def later() -> NotDefinedAnywhere:  # type: ignore[name-defined]  # noqa: F821
        raise AssertionError

    assert serialize.return_type(later) is None


def test_return_types_are_cached_per_function_and_follow_redefinitions() -> None:
    def step() -> Order:
        raise AssertionError

    assert serialize.return_type(step) is Order
    assert serialize.return_type(step) is Order  # cached

    def step() -> SignedUp:  # type: ignore[no-redef]  # a redefinition is a new function
        raise AssertionError

    assert serialize.return_type(step) is SignedUp
    step.__annotations__ = {"return": Order}  # replaced annotations are read again
    assert serialize.return_type(step) is Order
    greeter = Greeter()
    assert serialize.return_type(greeter.__call__) is SignedUp  # a new bound method each time
    assert serialize.return_type(greeter.__call__) is SignedUp


def test_to_json_and_back() -> None:
    order = Order(id=1, items=["x"])
    plain = serialize.to_json(order, what="step")
    assert plain == {"id": 1, "items": ["x"]}
    assert serialize.from_json(plain, Order, what="step") == order
    assert serialize.to_json((1, "a"), what="step") == (1, "a")  # tuples go out as lists
    with pytest.raises(SerializationError, match=r'step "s" returned a .*Greeter'):
        serialize.to_json(Greeter(), what='step "s"')


def test_invoking_a_typed_function_validates_the_data_into_its_model() -> None:
    @client.function(id="typed-child", trigger=wayline.TriggerEvent(event="never", model=SignedUp))
    async def typed_child(ctx: wayline.Context[SignedUp]) -> str:
        return f"{type(ctx.event.data).__name__}:{ctx.event.data.email}"

    @client.function(id="typed-parent", trigger=wayline.TriggerEvent(event="go"))
    async def typed_parent(ctx: wayline.Context) -> str:
        data = {"email": "a@b.c", "age": 3, "_inngest": {"fn_id": "ser-typed-child"}}
        return await ctx.step.invoke("child", function=typed_child, data=data)

    assert wayline.testing.run(typed_parent).output == "SignedUp:a@b.c"
