"""JSON in and out of user code: pydantic models, dataclasses, TypedDicts and plain JSON.

User code only ever sees a step's result as the server memoized it (a step that runs ends
the request; the next request replays its memo), so what comes back must be rebuilt into the
type the code expects. That type is the step callable's return annotation. A value that is
not plain JSON (a model, a dataclass, a datetime, a set ...) therefore needs an annotation
that can rebuild it; without one the step fails at once, on its first run, naming the step
and the type, instead of handing user code a ``dict`` where it expects a model next time.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import typing
import weakref
from collections.abc import Callable
from typing import Any

import pydantic
import pydantic_core

from wayline.errors import SerializationError

_UNTYPED: frozenset[object] = frozenset({Any, object, inspect.Signature.empty})


def type_name(value: object) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def to_json(value: object, *, what: str) -> Any:
    """Plain JSON (dicts, lists, str, int, float, bool, None) for ``value``.

    Raises:
        SerializationError: ``value`` (or something inside it) has no JSON form; the message
            names ``what`` (e.g. ``step "send"``) and the offending type.
    """
    if _is_plain(value):
        return value
    try:
        plain = pydantic_core.to_jsonable_python(value)
    except (pydantic_core.PydanticSerializationError, TypeError, ValueError) as exc:
        raise SerializationError(
            f"{what} returned a {type_name(value)}, which cannot be serialized to JSON ({exc}); "
            "return JSON values, pydantic models or dataclasses"
        ) from None
    if not _is_plain(plain):
        raise SerializationError(f"{what} returned a {type_name(value)} containing NaN or infinity")
    return plain


def is_plain(value: object) -> bool:
    """True for JSON values that come back from a memo exactly as they went in.

    Tuples count (they come back as lists, as with the official SDK); NaN and infinity do
    not (JSON has no such numbers).
    """
    return _is_plain(value)


def _is_plain(value: object) -> bool:
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return False


def return_type(fn: Callable[..., object]) -> object | None:
    """The type ``fn`` is annotated to return, or None when it cannot be known.

    Handles plain and async functions, bound methods, ``functools.partial``, classes (a
    pydantic model used as the step callable returns itself) and callable objects.

    Resolved once per function (``typing.get_type_hints`` was ~2 % of an app's CPU when it
    ran on every step) and again when the function's ``__annotations__`` is replaced; a
    function defined anew (a redefinition, a lambda) is a new key.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.isclass(fn):
        return fn
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", fn)  # noqa: B004
    key = getattr(target, "__func__", target)  # a bound method is made anew on every access
    annotations = getattr(key, "__annotations__", None)
    try:
        cached = _RETURN_TYPES.get(key)
    except TypeError:  # not weakly referenceable (a builtin): resolve every time
        return _resolve_return_type(target)
    if cached is not None and cached[0] is annotations:
        return cached[1]
    hint = _resolve_return_type(target)
    _RETURN_TYPES[key] = (annotations, hint)
    return hint


_RETURN_TYPES: weakref.WeakKeyDictionary[object, tuple[object, object | None]] = (
    weakref.WeakKeyDictionary()
)
"""Resolved return types by function, with the annotations dict they were resolved from."""


def _resolve_return_type(target: object) -> object | None:
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        return None
    hint: object = hints.get("return")
    if hint is None or hint in _UNTYPED or isinstance(hint, typing.TypeVar):
        return None
    return hint if _buildable(hint) else None


def _buildable(annotated: object) -> bool:
    """Whether pydantic can validate into ``annotated`` (not every annotation is a schema)."""
    try:
        _adapter(annotated)
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError, TypeError):
        return False
    return True


def requires_type(value: object, annotated: object | None, *, what: str) -> None:
    """Refuse a non-JSON result whose type cannot be rebuilt from a memo on replay."""
    if annotated is None and not _is_plain(value):
        raise SerializationError(
            f"{what} returned a {type_name(value)} but its callable has no usable return "
            "annotation, so the memoized JSON could not be turned back into a "
            f"{type_name(value)} when the function replays: annotate the callable's return type"
        )


def from_json(data: Any, annotated: object | None, *, what: str) -> Any:
    """Rebuild a memoized JSON value into ``annotated`` (returned as is when None)."""
    if annotated is None:
        return data
    try:
        return _adapter(annotated).validate_python(data)
    except pydantic.ValidationError as exc:
        raise SerializationError(
            f"the memoized result of {what} does not match its type {_type_label(annotated)}: {exc}"
        ) from None


def validate(data: Any, model: object, *, what: str) -> Any:
    """Validate incoming data (an event's ``data``) against ``model``; ValueError on mismatch."""
    try:
        return _adapter(model).validate_python(data)
    except pydantic.ValidationError as exc:
        raise ValueError(f"{what} does not match {_type_label(model)}: {exc}") from None


def dumps(value: Any) -> bytes:
    """Compact JSON bytes; refuses NaN and infinity, which JSON does not have."""
    return _ENCODER.encode(value).encode("utf-8")


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
"""What ``json.dumps(value, separators=..., allow_nan=False)`` builds on every call (a third
of its time for a small value); ``encode`` keeps no state between calls."""


def _type_label(annotated: object) -> str:
    return getattr(annotated, "__qualname__", None) or repr(annotated)


@functools.lru_cache(maxsize=512)
def _cached_adapter(annotated: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(annotated)


def _adapter(annotated: Any) -> pydantic.TypeAdapter[Any]:
    try:
        return _cached_adapter(annotated)
    except TypeError:  # an unhashable annotation: build it every time
        return pydantic.TypeAdapter(annotated)
